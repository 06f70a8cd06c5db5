"""deltaz.core.geometry: round trips, broadcasting, safety, and agreement with kornia as an oracle."""

from __future__ import annotations

import math

import pytest
import torch

from deltaz.core import geometry as g

kornia = pytest.importorskip("kornia")
from kornia.geometry.camera import PinholeCamera  # noqa: E402
from kornia.geometry.camera import project_points as kornia_project_points  # noqa: E402
from kornia.geometry.depth import depth_to_3d_v2, depth_warp  # noqa: E402


def random_rotation(generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=dtype))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_camera(generator, H=24, W=32, dtype=torch.float64, skew=0.0):
    """A DTU-like camera at ~600 mm from the origin, looking roughly at it (world-to-camera E)."""
    fx = 30 + 10 * torch.rand((), generator=generator, dtype=dtype)
    fy = fx * (0.95 + 0.1 * torch.rand((), generator=generator, dtype=dtype))
    K = torch.tensor([[fx, skew, W / 2 - 0.3], [0, fy, H / 2 + 0.2], [0, 0, 1]], dtype=dtype)
    # Small random rotation around the looking direction keeps the origin in view.
    angle = 0.3 * (torch.rand(3, generator=generator, dtype=dtype) - 0.5)
    R = rodrigues(angle)
    t = torch.tensor([0.0, 0.0, 600.0], dtype=dtype) + 20 * torch.randn(3, generator=generator, dtype=dtype)
    E = torch.cat([R, t[:, None]], dim=1)
    return K, E


def rodrigues(rvec: torch.Tensor) -> torch.Tensor:
    theta = torch.linalg.norm(rvec)
    k = rvec / theta
    Kx = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], dtype=rvec.dtype)
    return torch.eye(3, dtype=rvec.dtype) + math.sin(theta) * Kx + (1 - math.cos(theta)) * Kx @ Kx


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def test_rays_have_unit_z_and_hit_pixel_centres(gen):
    K, _ = random_camera(gen, skew=0.7)
    rays, mask = g.get_ray_dirs_mask(K, 24, 32)
    assert rays.shape == (24, 32, 3) and mask.all()
    assert torch.equal(rays[..., 2], torch.ones_like(rays[..., 2]))
    uv, z = g.project_points(rays, K)
    u, v = g.pixel_grid(24, 32, dtype=torch.float64)
    torch.testing.assert_close(uv[..., 0], u)
    torch.testing.assert_close(uv[..., 1], v)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_backproject_then_project_is_identity(gen, dtype):
    K, _ = random_camera(gen)
    K = K.to(dtype)
    depth = (425 + 500 * torch.rand(3, 24, 32, generator=gen, dtype=torch.float64)).to(dtype)
    points = g.backproject_depth(depth, K)
    assert points.shape == (3, 24, 32, 3) and points.dtype == dtype
    torch.testing.assert_close(points[..., 2], depth)  # z-depth, not distance along the ray
    uv, z = g.project_points(points, K)
    u, v = g.pixel_grid(24, 32, dtype=dtype)
    tol = 1e-3 if dtype == torch.float32 else 1e-9
    assert (uv[..., 0] - u).abs().max() < tol and (uv[..., 1] - v).abs().max() < tol
    torch.testing.assert_close(z, depth)


def test_world_camera_round_trip_and_centre(gen):
    _, E = random_camera(gen)
    points = 100 * torch.randn(5, 7, 3, generator=gen, dtype=torch.float64)
    back = g.camera_to_world(g.world_to_camera(points, E), E)
    torch.testing.assert_close(back, points)
    # 3x4 and 4x4 give the same answer; the inverse is a proper transform.
    torch.testing.assert_close(g.world_to_camera(points, g.to_4x4(E)), g.world_to_camera(points, E))
    torch.testing.assert_close(g.transform_points(points, g.invert_extrinsics(E)), g.camera_to_world(points, E))
    # The camera centre maps to the camera-frame origin.
    C = g.camera_center(E)
    torch.testing.assert_close(g.world_to_camera(C, E), torch.zeros(3, dtype=torch.float64), atol=1e-9, rtol=0)


def test_batched_points_broadcast_against_per_batch_matrices(gen):
    Ks, Es = zip(*(random_camera(gen) for _ in range(4)))
    K, E = torch.stack(Ks), torch.stack(Es)
    depth = 425 + 500 * torch.rand(4, 24, 32, generator=gen, dtype=torch.float64)
    batched = g.camera_to_world(g.backproject_depth(depth, K), E)
    for b in range(4):
        single = g.camera_to_world(g.backproject_depth(depth[b], K[b]), E[b])
        torch.testing.assert_close(batched[b], single)
    with pytest.raises(ValueError, match="last dimension of 3"):
        g.transform_points(torch.zeros(4, 5, 2, dtype=torch.float64), E)


def test_zero_depth_and_points_behind_never_give_nan(gen):
    K, E = random_camera(gen)
    depth = torch.zeros(1, 24, 32, dtype=torch.float64, requires_grad=True)
    uv, z, valid = g.reproject(depth, K[None], E[None], K[None], E[None])
    assert torch.isfinite(uv).all() and not valid.any()
    uv.sum().backward()
    assert torch.isfinite(depth.grad).all()
    behind = torch.tensor([[1.0, 2.0, -5.0], [0.0, 0.0, 0.0]], dtype=torch.float64, requires_grad=True)
    uv, z = g.project_points(behind, K)
    assert torch.isfinite(uv).all() and (z <= g.Z_EPS).all()
    uv.sum().backward()
    assert torch.isfinite(behind.grad).all()


def test_sample_pixels_reads_pixel_centres_exactly(gen):
    values = torch.rand(2, 3, 5, 7, generator=gen, dtype=torch.float64)
    u, v = g.pixel_grid(5, 7, dtype=torch.float64)
    uv = torch.stack([u, v], dim=-1).expand(2, 5, 7, 2)
    torch.testing.assert_close(g.sample_pixels(values, uv), values)
    # Half a pixel right is the mean of the two neighbours.
    half = g.sample_pixels(values, (uv + torch.tensor([0.5, 0.0], dtype=torch.float64))[:, :, :-1])
    torch.testing.assert_close(half, 0.5 * (values[..., :-1] + values[..., 1:]))


def test_warp_of_the_reference_itself_is_identity(gen):
    K, E = random_camera(gen)
    depth = 425 + 500 * torch.rand(1, 24, 32, generator=gen, dtype=torch.float64)
    image = torch.rand(1, 3, 24, 32, generator=gen, dtype=torch.float64)
    warped, valid = g.warp(image, depth, K[None], E[None], K[None], E[None])
    assert valid.all()
    torch.testing.assert_close(warped, image)


def test_agrees_with_kornia_depth_to_3d_and_projection(gen):
    K, E = random_camera(gen)
    depth = 425 + 500 * torch.rand(2, 24, 32, generator=gen, dtype=torch.float64)
    ours = g.backproject_depth(depth, K)
    theirs = depth_to_3d_v2(depth, K[None].expand(2, 3, 3))  # (B, H, W, 3)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)
    uv, _ = g.project_points(ours, K)
    torch.testing.assert_close(uv, kornia_project_points(ours, K[None, None].expand(2, 24, 32, 3, 3)), rtol=1e-4, atol=1e-6)


def test_warp_agrees_with_kornia_depth_warp(gen):
    H, W = 24, 32
    K, E_ref = random_camera(gen, H, W)
    _, E_src = random_camera(gen, H, W)
    # A smooth depth keeps bilinear sampling away from discontinuities.
    u, v = g.pixel_grid(H, W, dtype=torch.float64)
    depth_ref = (600 + 20 * torch.sin(u / 5) + 10 * torch.cos(v / 4))[None]
    image_src = torch.rand(1, 3, H, W, generator=gen, dtype=torch.float64)
    ours, valid = g.warp(image_src, depth_ref, K[None], E_ref[None], K[None], E_src[None])

    K4 = torch.eye(4, dtype=torch.float64)
    K4[:3, :3] = K

    def pinhole(E):
        return PinholeCamera(
            K4[None], g.to_4x4(E)[None], torch.tensor([H], dtype=torch.float64), torch.tensor([W], dtype=torch.float64)
        )

    # kornia's depth_warp(dst, src, depth_src, patch_dst): values of patch_dst seen from src.
    theirs = depth_warp(pinhole(E_src), pinhole(E_ref), depth_ref[:, None], image_src, H, W, align_corners=True)
    # Compare where the reprojection lands well inside the source (border handling differs).
    uv, _, _ = g.reproject(depth_ref, K[None], E_ref[None], K[None], E_src[None])
    inner = valid & (uv[..., 0] > 0) & (uv[..., 0] < W - 1) & (uv[..., 1] > 0) & (uv[..., 1] < H - 1)
    assert inner.float().mean() > 0.5, "the test cameras should overlap"
    diff = (ours - theirs).abs().permute(0, 2, 3, 1)[inner]
    assert diff.max() < 1e-4 * image_src.abs().max()


def test_reproject_marks_out_of_frame(gen):
    K, E = random_camera(gen)
    E_shift = E.clone()
    E_shift[0, 3] += 300.0  # move the source camera far sideways
    depth = torch.full((1, 24, 32), 600.0, dtype=torch.float64)
    uv, z, valid = g.reproject(depth, K[None], E[None], K[None], E_shift[None])
    inside = (uv[..., 0] >= -0.5) & (uv[..., 0] <= 31.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= 23.5)
    assert torch.equal(valid, inside & (z > g.Z_EPS))
    assert not valid.all()
