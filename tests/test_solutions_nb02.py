"""The reference solutions of 02_cameras_and_reprojection's exercises equal deltaz.core.geometry."""

from __future__ import annotations

import torch

from deltaz.core import geometry
from deltaz.course import exercises


def test_pixel_rays_is_get_ray_dirs_mask():
    for (K, H, W), _ in exercises.exercise("pixel_rays").cases():
        rays, ok = geometry.get_ray_dirs_mask(K, H, W)
        assert ok.all()
        torch.testing.assert_close(exercises.exercise("pixel_rays").reference(K, H, W), rays)


def test_pixel_rays_with_skew_is_the_inverse_of_K():
    K = torch.tensor([[40.0, 3.0, 5.0], [0.0, 30.0, 4.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    u, v = geometry.pixel_grid(5, 7, dtype=torch.float64)
    want = torch.einsum("ij,hwj->hwi", torch.linalg.inv(K), torch.stack([u, v, torch.ones_like(u)], -1))
    torch.testing.assert_close(exercises.exercise("pixel_rays").reference(K, 5, 7), want)


def test_project_to_view_is_world_to_camera_then_project_points():
    for (points, K, E), _ in exercises.exercise("project_to_view").cases():
        uv, z = geometry.project_points(geometry.world_to_camera(points, E), K)
        got_uv, got_z = exercises.exercise("project_to_view").reference(points, K, E)
        assert (z > 0).all()
        torch.testing.assert_close(got_uv, uv)
        torch.testing.assert_close(got_z, z)
