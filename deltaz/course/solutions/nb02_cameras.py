"""Exercises of ``02_cameras_and_reprojection``: pixel → ray, camera → world, world → another view's pixels.

Each reference equals a package function of :mod:`deltaz.core.geometry` (``tests/test_exercises.py`` and
``tests/test_solutions_nb02.py`` check it): :func:`pixel_rays` = ``get_ray_dirs_mask(K, H, W)[0]``,
:func:`camera_to_world` = ``camera_to_world`` and :func:`project_to_view` = ``project_points`` after
``world_to_camera``.
"""

from __future__ import annotations

import torch

from deltaz.course.solutions.base import Case, Exercise

__all__ = ["EXERCISES", "camera_to_world", "pixel_rays", "project_to_view"]


def pixel_rays(K: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Rays ``K⁻¹·[u, v, 1]ᵀ`` through every pixel centre of an ``H×W`` image: ``(H, W, 3)``, z exactly 1.

    ``u`` is the column, ``v`` the row, ``(0, 0)`` the centre of the top-left pixel; ``K`` ``(3, 3)``.
    """
    v, u = torch.meshgrid(torch.arange(H, dtype=K.dtype), torch.arange(W, dtype=K.dtype), indexing="ij")
    fx, s, cx, fy, cy = K[0, 0], K[0, 1], K[0, 2], K[1, 1], K[1, 2]
    y = (v - cy) / fy
    x = (u - cx - s * y) / fx
    return torch.stack([x, y, torch.ones_like(x)], dim=-1)


def _wrong_pixel_rays(K: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Counterexample A: unit-length rays, so ``depth · ray`` is at distance ``depth``, not z-depth ``depth``."""
    rays = pixel_rays(K, H, W)
    return rays / rays.norm(dim=-1, keepdim=True)


def _ray_cases() -> list[Case]:
    return [
        ((torch.tensor([[361.54, 0.0, 82.9], [0.0, 360.4, 66.38], [0.0, 0.0, 1.0]], dtype=torch.float64), 128, 160),
         {}),
        ((torch.tensor([[50.0, 0.0, 3.5], [0.0, 40.0, 2.5], [0.0, 0.0, 1.0]], dtype=torch.float64), 6, 8), {}),
        ((torch.tensor([[20.0, 0.0, 1.0], [0.0, 25.0, 4.0], [0.0, 0.0, 1.0]], dtype=torch.float64), 9, 3), {}),
    ]


def camera_to_world(points_cam: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """Camera-frame points ``(N, 3)`` mm → world, for world-to-camera ``E = [R | t]`` ``(3, 4)``: ``Rᵀ(X − t)``."""
    R, t = E[:, :3], E[:, 3]
    return (points_cam - t) @ R  # row vectors: (X - t) R = (Rᵀ (X - t))ᵀ


def _wrong_camera_to_world(points_cam: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """The classic bug (fix B): applying ``E`` itself, ``R·X + t``, instead of its inverse."""
    return points_cam @ E[:, :3].T + E[:, 3]


def _random_extrinsics(g: torch.Generator) -> torch.Tensor:
    """A world-to-camera ``[R | t]`` ``(3, 4)`` float64 with a random rotation and translation (mm)."""
    axis = torch.randn(3, generator=g, dtype=torch.float64)
    R = torch.linalg.matrix_exp(torch.cross(torch.eye(3, dtype=torch.float64), axis.expand(3, 3), dim=-1))
    return torch.cat([R, 300 * torch.randn(3, 1, generator=g, dtype=torch.float64)], dim=1)


def _camera_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    cases = []
    for _ in range(3):
        E = _random_extrinsics(g)
        points = 500 * torch.randn(5, 3, generator=g, dtype=torch.float64)
        cases.append(((points, E), {}))
    return cases


def project_to_view(points_world: torch.Tensor, K: torch.Tensor, E: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """World points ``(N, 3)`` mm → ``(uv (N, 2) px, z (N,) mm)`` in the camera ``K`` ``(3, 3)``, ``E`` ``(3, 4)``.

    ``X_c = R·X_w + t``; ``[x, y, z] = K·X_c``; ``u = x/z``, ``v = y/z``; ``z`` is the z-depth ``X_c.z``.
    The points lie in front of the camera (``z > 0``).
    """
    points_cam = points_world @ E[:, :3].T + E[:, 3]
    xyz = points_cam @ K.T
    z = xyz[:, 2]
    return xyz[:, :2] / z[:, None], z


def _wrong_project_to_view(points_world: torch.Tensor, K: torch.Tensor, E: torch.Tensor):
    """The typical mistake (fix A again): reporting the distance ``‖X_c‖`` as the depth instead of ``X_c.z``."""
    points_cam = points_world @ E[:, :3].T + E[:, 3]
    xyz = points_cam @ K.T
    return xyz[:, :2] / xyz[:, 2:], points_cam.norm(dim=-1)


def _projection_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    K = torch.tensor([[361.54, 0.0, 82.9], [0.0, 360.4, 66.38], [0.0, 0.0, 1.0]], dtype=torch.float64)
    cases = []
    for n in (4, 7, 1):
        E = _random_extrinsics(g)
        points_cam = torch.randn(n, 3, generator=g, dtype=torch.float64) * torch.tensor([80.0, 60.0, 100.0])
        points_cam[:, 2] += 650.0  # in front of the camera, at DTU distances
        points_world = (points_cam - E[:, 3]) @ E[:, :3]
        cases.append(((points_world, K, E), {}))
    return cases


EXERCISES = (
    Exercise(
        name="pixel_rays",
        notebook="02_cameras_and_reprojection",
        reference=pixel_rays,
        cases=_ray_cases,
        mistake=_wrong_pixel_rays,
        hint="build u (columns) and v (rows) with torch.meshgrid(..., indexing='ij'); the ray is "
        "((u − cx)/fx, (v − cy)/fy, 1): do NOT normalise it, its z must stay 1 (fix A).",
        rtol=1e-6,
        atol=1e-9,
    ),
    Exercise(
        name="camera_to_world",
        notebook="02_cameras_and_reprojection",
        reference=camera_to_world,
        cases=_camera_cases,
        mistake=_wrong_camera_to_world,
        hint="E maps world to camera (X_cam = R·X_world + t); invert it: X_world = Rᵀ·(X_cam − t).",
    ),
    Exercise(
        name="project_to_view",
        notebook="02_cameras_and_reprojection",
        reference=project_to_view,
        cases=_projection_cases,
        mistake=_wrong_project_to_view,
        hint="go to the camera first (X_c = R·X_w + t, rows: X_w @ R.T + t), then K·X_c; divide x and y by z; "
        "the depth to return is z (= X_c.z), not the length of X_c.",
    ),
)
