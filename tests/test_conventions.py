"""One test per prototype fix of DESIGN.md §1 (A–E). Each also computes the *wrong* version and shows it
fails, so reverting a fix breaks its test."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from deltaz.core.geometry import (
    backproject_depth,
    camera_center,
    camera_to_world,
    get_ray_dirs_mask,
    pixel_to_grid,
    project_points,
    sample_pixels,
    world_to_camera,
)
from deltaz.core.gradients import image_gradients
from deltaz.ops.losses import depth_loss
from deltaz.model import DeltaZUnet, refine

F64 = torch.float64
K = torch.tensor([[40.0, 0.0, 15.5], [0.0, 42.0, 11.5], [0.0, 0.0, 1.0]], dtype=F64)
H, W = 24, 32


def rotation(ax: float, ay: float, az: float) -> torch.Tensor:
    cx, sx, cy, sy, cz, sz = math.cos(ax), math.sin(ax), math.cos(ay), math.sin(ay), math.cos(az), math.sin(az)
    Rx = torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]], dtype=F64)
    Ry = torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], dtype=F64)
    Rz = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]], dtype=F64)
    return Rz @ Ry @ Rx


def test_fix_A_rays_have_unit_z_so_depth_is_z_depth():
    depth = 500 + 300 * torch.rand(H, W, dtype=F64)
    rays, mask = get_ray_dirs_mask(K, H, W)
    assert mask.all() and torch.equal(rays[..., 2], torch.ones(H, W, dtype=F64))
    points = backproject_depth(depth, K)
    uv, z = project_points(points, K)
    u, v = torch.meshgrid(torch.arange(W, dtype=F64), torch.arange(H, dtype=F64), indexing="xy")
    assert torch.allclose(z, depth) and torch.allclose(uv, torch.stack([u, v], -1))
    # wrong: unit-length rays make `depth` a distance along the ray, so z != depth off the optical axis
    unit = rays / rays.norm(dim=-1, keepdim=True)
    _, z_wrong = project_points(depth.unsqueeze(-1) * unit, K)
    assert (z_wrong - depth).abs().max() > 50  # mm, at the image corners
    assert (z_wrong <= depth + 1e-9).all()


def test_fix_B_camera_to_world_is_R_transpose_of_X_minus_t():
    R = rotation(0.3, -0.5, 0.9)
    t = torch.tensor([120.0, -40.0, 650.0], dtype=F64)
    E = torch.cat([R, t[:, None]], 1)  # world-to-camera
    points_cam = torch.randn(10, 3, dtype=F64) * 100 + torch.tensor([0, 0, 700.0], dtype=F64)
    points_world = camera_to_world(points_cam, E)
    assert torch.allclose(world_to_camera(points_world, E), points_cam)
    assert torch.allclose(points_world, (points_cam - t) @ R)  # Rᵀ(X − t), row-vector form
    assert torch.allclose(camera_to_world(torch.zeros(3, dtype=F64), E), camera_center(E))
    # wrong: applying the world-to-camera transform R·X + t "to go back" breaks the round trip
    wrong_world = points_cam @ R.T + t
    assert (world_to_camera(wrong_world, E) - points_cam).abs().max() > 100


def test_fix_C_grid_sample_uses_pixel_centres_with_align_corners_true():
    values = torch.rand(1, 1, 5, 7, dtype=F64)
    v, u = torch.meshgrid(torch.arange(5, dtype=F64), torch.arange(7, dtype=F64), indexing="ij")
    uv = torch.stack([u, v], -1)[None]
    assert torch.allclose(sample_pixels(values, uv), values, atol=1e-12)  # integer pixels: the stored values
    half = uv[:, :, :-1] + torch.tensor([0.5, 0.0], dtype=F64)
    mid = (values[..., :-1] + values[..., 1:]) / 2
    assert torch.allclose(sample_pixels(values, half), mid)
    grid = pixel_to_grid(uv, 5, 7)
    assert torch.allclose(grid[0, 0, 0], torch.tensor([-1.0, -1.0], dtype=F64))
    assert torch.allclose(grid[0, -1, -1], torch.tensor([1.0, 1.0], dtype=F64))
    # wrong 1: the same normalisation with align_corners=False shifts every sample by half a pixel
    wrong = F.grid_sample(values, grid, mode="bilinear", padding_mode="border", align_corners=False)
    assert (wrong - values).abs().max() > 0.05
    # wrong 2: the align_corners=False normalisation (2u + 1)/W − 1 with align_corners=True also shifts
    wrong_grid = (2 * uv + 1) / torch.tensor([7.0, 5.0], dtype=F64) - 1
    wrong = F.grid_sample(values, wrong_grid, mode="bilinear", padding_mode="border", align_corners=True)
    assert (wrong - values).abs().max() > 0.05


def test_fix_D_depth_and_image_gradients_are_paired():
    depth = torch.full((1, 1, 8, 10), 500.0)
    depth[..., 5:] = 800.0  # a depth edge between columns 4 and 5 ...
    image = torch.zeros(1, 3, 8, 10)
    image[..., 5:] = 1.0  # ... exactly where the image has its edge
    d_x, d_y = image_gradients(depth)
    i_x, i_y = image_gradients(image)
    assert d_x.shape == (1, 1, 8, 9) and d_y.shape == (1, 1, 7, 10)
    assert i_x.shape[-2:] == d_x.shape[-2:] and i_y.shape[-2:] == d_y.shape[-2:]
    weight_x = torch.exp(-i_x.abs().mean(1, keepdim=True))
    paired = (d_x.abs() * weight_x).sum()
    # the depth edge is down-weighted by the image edge at the same position
    assert paired < 0.5 * d_x.abs().sum()
    # wrong 1: pairing an x-gradient with a y-gradient does not line up (and fails loudly here)
    try:
        d_x * torch.exp(-i_y.abs().mean(1, keepdim=True))
        raise AssertionError("x/y gradients of different shapes must not broadcast")
    except RuntimeError:
        pass
    # wrong 2: a padded image gradient cropped on the other side puts the edge weight one column off
    i_x_padded = torch.diff(image, dim=-1, prepend=image[..., :1])  # (…, H, W): edge lands in column 5
    weight_wrong = torch.exp(-i_x_padded[..., :-1].abs().mean(1, keepdim=True))  # columns 0..8 of it
    wrong = (d_x.abs() * weight_wrong).sum()
    assert wrong > 1.5 * paired


def test_fix_E_initial_depth_is_detached():
    torch.manual_seed(0)
    model = DeltaZUnet(in_channels=1, base_channel=4, depth=2)
    with torch.no_grad():
        model.head.weight.normal_(0, 0.1)
    # depth_init produced by something with parameters (an MVS network, a learnable offset)
    offset = torch.tensor(10.0, requires_grad=True)
    depth_gt = 600 + 50 * torch.rand(1, 12, 14)
    depth_init = depth_gt + offset
    out = refine(model, depth_init)
    depth_loss(out["depth_refined"], depth_gt, depth_gt > 0).backward()
    assert offset.grad is None  # nothing flows back into the initial depth ...
    assert model.head.weight.grad.abs().sum() > 0  # ... while the refiner learns
    # wrong: adding the residual to the un-detached input lets the loss "fix" the input instead
    model.zero_grad()
    wrong = depth_init + model(depth_init)[:, 0]
    depth_loss(wrong, depth_gt, depth_gt > 0).backward()
    assert offset.grad is not None and offset.grad.abs() > 0.5
