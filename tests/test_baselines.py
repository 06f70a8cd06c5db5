"""deltaz.ops.baselines: each classical baseline moves depth the expected way on a constructed case."""

from __future__ import annotations

import math

import kornia.filters as KF
import pytest
import torch

from deltaz.core import geometry as g
from deltaz.ops.baselines import (
    BASELINES,
    PARAM_GRIDS,
    GeometricAveraging,
    baseline_inputs_from_batch,
    bilateral,
    geometric_averaging,
    guided,
    identity,
    joint_bilateral,
    masked_median,
    median,
    tune_baseline,
)
from deltaz.core.errors import ConfigError, DataError


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(7)


def step_scene(gen, H=16, W=16, noise_mm=1.0):
    """A depth step (500 mm left of column 8, 600 mm right) with Gaussian noise, and a matching image edge."""
    depth_gt = torch.full((1, H, W), 500.0)
    depth_gt[..., W // 2:] = 600.0
    depth = depth_gt + noise_mm * torch.randn(1, H, W, generator=gen)
    image = torch.zeros(1, 3, H, W)
    image[..., W // 2:] = 1.0
    return depth, depth_gt, image


def test_identity_is_exact_and_a_copy(gen):
    depth = 500 + torch.rand(2, 6, 7, generator=gen)
    depth[0, 1, 1] = 0.0
    out = identity(depth, None, {}, None)
    assert torch.equal(out, depth) and out.data_ptr() != depth.data_ptr()


def test_median_removes_salt_and_matches_kornia_without_holes(gen):
    depth = torch.full((1, 9, 9), 500.0) + 0.1 * torch.rand(1, 9, 9, generator=gen)
    depth[0, 4, 4] = 900.0  # salt outlier
    out = median(depth, None, {"kernel_size": 3}, None)
    assert abs(out[0, 4, 4].item() - 500.0) < 0.2
    assert torch.equal(out, KF.median_blur(depth[:, None], 3)[:, 0])


def test_median_ignores_and_fills_holes():
    depth = torch.full((1, 9, 9), 500.0)
    depth[0, 4, 3:6] = 0.0  # a short line of holes inside the plane
    out = median(depth, None, {"kernel_size": 3}, None)
    assert torch.equal(out, torch.full_like(out, 500.0))  # holes filled, no 0 pulled into any window
    empty = torch.zeros(1, 9, 9)
    empty[0, 0, 0] = 500.0
    out = median(empty, None, {"kernel_size": 3}, None)
    assert torch.isfinite(out).all() and out[0, 8, 8] == 0.0 and out[0, 1, 1] == 500.0  # far holes stay 0
    assert torch.equal(masked_median(torch.zeros(1, 4, 4), 5), torch.zeros(1, 4, 4))


def test_bilateral_smooths_plane_noise_but_keeps_step_sharper_than_box(gen):
    depth, depth_gt, _ = step_scene(gen)
    params = {"kernel_size": 5, "sigma_color_mm": 5.0, "sigma_space": 2.0}
    out = bilateral(depth, None, params, None)
    box = KF.box_blur(depth[:, None], 5)[:, 0]
    interior = (slice(None), slice(2, -2), slice(2, 5))  # away from the step and the border
    noise_before = (depth - depth_gt)[interior].abs().mean()
    assert (out - depth_gt)[interior].abs().mean() < 0.6 * noise_before
    edge = (slice(None), slice(None), slice(6, 10))  # two columns either side of the step
    assert (out - depth_gt)[edge].abs().max() < 5.0  # the 100 mm step survives
    assert (box - depth_gt)[edge].abs().max() > 30.0  # a box filter smears it


def test_bilateral_fills_holes_without_nan(gen):
    depth, depth_gt, _ = step_scene(gen, noise_mm=0.0)
    depth[0, 5, 3] = 0.0
    depth[0, 0:2, 12:16] = 0.0  # every hole has a valid pixel within 2 px
    out = bilateral(depth, None, {"kernel_size": 5, "sigma_color_mm": 5.0, "sigma_space": 2.0}, None)
    assert torch.isfinite(out).all() and (out > 0).all()
    assert abs(out[0, 5, 3].item() - 500.0) < 1e-3
    assert (out[0, 0:2, 12:16] - 600.0).abs().max() < 1e-3
    far = torch.zeros(1, 12, 12)
    far[0, 0, 0] = 500.0
    out = bilateral(far, None, {"kernel_size": 3}, None)
    assert torch.isfinite(out).all() and out[0, 11, 11] == 0.0


@pytest.mark.parametrize("fn, params", [
    (joint_bilateral, {"kernel_size": 5, "sigma_color": 0.1, "sigma_space": 2.0}),
    (guided, {"kernel_size": 5, "eps": 1e-4}),
])
def test_image_guided_filters_keep_the_image_edge(gen, fn, params):
    depth, depth_gt, image = step_scene(gen)
    out = fn(depth, image, params, None)
    box = KF.box_blur(depth[:, None], 5)[:, 0]
    interior = (slice(None), slice(2, -2), slice(2, 5))
    assert (out - depth_gt)[interior].abs().mean() < 0.6 * (depth - depth_gt)[interior].abs().mean()
    edge = (slice(None), slice(None), slice(6, 10))
    assert (out - depth_gt)[edge].abs().max() < 5.0 < 30.0 < (box - depth_gt)[edge].abs().max()
    # A hole right next to the edge is filled from the side the image says it belongs to.
    holed = depth.clone()
    holed[0, 6:9, 7] = 0.0  # column 7 is the last 500 mm column
    out = fn(holed, image, params, None)
    assert torch.isfinite(out).all()
    assert (out[0, 6:9, 7] - 500.0).abs().max() < 5.0


def test_guided_keeps_unreachable_holes_and_needs_an_image():
    depth = torch.zeros(1, 12, 12)
    depth[0, :2, :2] = 500.0
    out = guided(depth, torch.rand(1, 3, 12, 12), {"kernel_size": 3, "eps": 1e-3}, None)
    assert torch.isfinite(out).all() and out[0, 11, 11] == 0.0 and out[0, 0, 0] > 0
    assert torch.equal(guided(torch.zeros(1, 4, 4), torch.rand(1, 3, 4, 4), {}, None), torch.zeros(1, 4, 4))
    with pytest.raises(ConfigError, match="needs an RGB image"):
        guided(depth, None, {}, None)
    with pytest.raises(ConfigError, match="unknown parameter"):
        median(depth, None, {"kernal_size": 3}, None)


# ---------------------------------------------------------------- geometric averaging on an analytic plane


def rot_y(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)


def render_plane(K, E, H, W, normal, offset):
    """z-depth of the plane ``normal·X = offset`` (world, mm): along a ray X = C + λ·Rᵀr, λ = z-depth."""
    rays, _ = g.get_ray_dirs_mask(K, H, W)
    rays_world = rays @ E[:3, :3]  # Rᵀr for each ray, as row vectors
    C = g.camera_center(E)
    return (offset - normal @ C) / (rays_world @ normal)


def plane_views(H=24, W=32):
    """Three cameras (reference + 2 sources 30 mm away, slightly rotated) on a tilted plane ~500 mm away."""
    K = torch.tensor([[40.0, 0, 15.5], [0, 40.0, 11.5], [0, 0, 1]], dtype=torch.float64)
    normal = torch.tensor([0.2, 0.1, 1.0], dtype=torch.float64)
    normal = normal / normal.norm()
    offset = 500.0 * normal[2].item()
    cams = []
    for centre, angle in [((0.0, 0, 0), 0.0), ((30.0, 0, 0), -0.04), ((0.0, 30.0, 0), 0.02)]:
        R = rot_y(angle)
        t = -(R @ torch.tensor(centre, dtype=torch.float64))
        cams.append(torch.cat([R, t[:, None]], 1))
    E = torch.stack(cams)
    Ks = K.expand(3, 3, 3).clone()
    depth = torch.stack([render_plane(K, E[i], H, W, normal, offset) for i in range(3)])
    return depth, Ks, E


def multiview_of(depth_src, Ks, E):
    return {"K_ref": Ks[None, 0], "E_ref": E[None, 0], "depth_src": depth_src[None],
            "K_src": Ks[None, 1:], "E_src": E[None, 1:]}


def test_geometric_averaging_fixes_a_perturbed_pixel_when_sources_agree():
    depth, Ks, E = plane_views()
    assert depth.min() > 400 and depth.max() < 600
    depth_gt = depth[0:1]
    depth_init = depth_gt.clone()
    depth_init[0, 12, 16] += 3.0  # 0.6 %: within the 1 % check, so both sources vote for the truth
    depth_init[0, 5, 20] += 30.0  # 6 %: inconsistent with every source
    mv = multiview_of(depth[1:], Ks, E)
    out = geometric_averaging(depth_init, None, {}, mv)
    assert abs(out[0, 12, 16].item() - depth_gt[0, 12, 16].item()) == pytest.approx(1.0, abs=0.1)  # (3+0+0)/3
    assert out[0, 5, 20] == depth_init[0, 5, 20]  # inconsistent: kept by default
    others = torch.ones_like(out, dtype=torch.bool)
    others[0, 12, 16] = others[0, 5, 20] = False
    assert (out - depth_gt)[others].abs().max() < 0.05  # consistent pixels stay on the plane
    dropped = geometric_averaging(depth_init, None, {"inconsistent": "drop"}, mv)
    assert dropped[0, 5, 20] == 0.0 and torch.isfinite(dropped).all()
    # min_views=2 needs both sources: out-of-frame pixels of one source become inconsistent
    strict = GeometricAveraging(min_views=2, inconsistent="drop").refine(depth_init, mv)
    assert (strict > 0).sum() < (dropped > 0).sum()


def test_geometric_averaging_confidence_filter_and_holes():
    depth, Ks, E = plane_views()
    depth_init = depth[0:1].clone()
    depth_init[0, 12, 16] += 3.0
    depth_init[0, 3, 3] = 0.0
    mv = multiview_of(depth[1:], Ks, E)
    conf_ref = torch.ones(1, 24, 32)
    conf_ref[0, 12, 16] = 0.1  # not trusted: left out of the averaging, kept as it was
    mv_conf = {**mv, "confidence_ref": conf_ref, "confidence_src": torch.ones(1, 2, 24, 32)}
    out = geometric_averaging(depth_init, None, {"conf_thresh": 0.5}, mv_conf)
    assert out[0, 12, 16] == depth_init[0, 12, 16]
    assert out[0, 3, 3] == 0.0 and torch.isfinite(out).all()  # reference holes stay holes
    with pytest.raises(ConfigError, match="confidence"):
        geometric_averaging(depth_init, None, {"conf_thresh": 0.5}, mv)
    with pytest.raises(ConfigError, match="multiview"):
        geometric_averaging(depth_init, None, {}, None)


def test_tune_by_covered_mae_can_choose_another_window_than_with_holes_counted():
    """A 2-px stripe nearer than its plane and an 8×8 hole: a 9×9 median fills the hole (best with holes counted)
    and erases the stripe; a 3×3 one keeps the stripe (best on the covered pixels) and leaves most of the hole."""
    gt = torch.full((1, 32, 32), 600.0)
    gt[0, :, 6:8] = 500.0
    depth_init = gt.clone()
    depth_init[0, 20:28, 20:28] = 0.0
    samples = [{"depth_init": depth_init, "depth": gt}]
    grid = [{"kernel_size": 3}, {"kernel_size": 9}]
    assert tune_baseline("median", samples, grid)[0] == {"kernel_size": 9}
    params, score = tune_baseline("median", samples, grid, covered=True)
    assert params == {"kernel_size": 3} and score == 0.0


def test_tune_picks_keep_for_geometric_averaging_and_beats_identity(gen):
    depth, Ks, E = plane_views()
    samples = []
    for _ in range(2):
        noisy = depth + 2.0 * torch.randn(depth.shape, generator=gen, dtype=torch.float64)
        noisy[:, ::5, ::7] += 40.0  # sparse outliers no source agrees with
        batch = {"depth": depth[None], "depth_init": noisy[None], "intrinsics": Ks[None], "extrinsics": E[None]}
        samples.append(baseline_inputs_from_batch(batch))
    params, score = tune_baseline("geometric_averaging", iter(samples))
    assert params["inconsistent"] == "keep"
    _, identity_score = tune_baseline("identity", iter(samples))
    assert score < identity_score
    with pytest.raises(ConfigError, match="unknown baseline"):
        tune_baseline("nope", iter(samples))


def test_every_registered_baseline_runs_on_holes_without_nan(gen):
    depth, Ks, E = plane_views()
    depth_init = depth.clone().float()
    depth_init[0, 10:13, 10:13] = 0.0
    image = torch.rand(1, 3, 24, 32, generator=gen)
    mv = multiview_of(depth_init[1:], Ks.float(), E.float())
    assert set(PARAM_GRIDS) == set(BASELINES)
    for name, fn in BASELINES.items():
        for params in PARAM_GRIDS[name][:2]:
            out = fn(depth_init[0:1], image, params, mv)
            assert out.shape == (1, 24, 32) and torch.isfinite(out).all() and (out >= 0).all(), name
    with pytest.raises(DataError, match=r"\(B, H, W\)"):
        identity(depth_init[0], None, {}, None)
