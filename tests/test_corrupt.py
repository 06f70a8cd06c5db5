"""The initial-depth model: each effect does what its docstring says; presets are seeded and safe."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from deltaz.ops.corrupt import (
    PRESETS,
    depth_noise,
    downsample_upsample,
    edge_holes,
    edge_mask,
    fatten_edges,
    low_frequency_bias,
    mde_distortion,
    outliers,
    quantize,
    sample_seed,
    shift_edges,
    simulate_initial_depth,
)
from deltaz.core.errors import ConfigError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def scene_depths() -> torch.Tensor:
    """Ground truth of a few views of two synthetic DTU-like scenes, (6, 128, 160) mm."""
    from deltaz.io.synthetic import dataset_cameras, make_scan_scene, render_depth

    K, E, _ = dataset_cameras(49)
    maps = [render_depth(make_scan_scene(0, scan), K[v], E[v], 128, 160) for scan in (1, 2) for v in (0, 20, 45)]
    return torch.as_tensor(np.stack(maps))


def _step(fg: float = 500.0, bg: float = 700.0, hw=(64, 64)) -> torch.Tensor:
    """Left half foreground, right half background, one invalid row at the top."""
    depth = torch.full(hw, bg)
    depth[:, : hw[1] // 2] = fg
    depth[0] = 0
    return depth


def test_quantize_snaps_to_planes_2_65_mm_apart():
    depth = 425.0 + torch.rand(200, 200, generator=gen()) * 500
    depth[:10] = 0
    out = quantize(depth)
    k = (out[10:] - 425.0) / 2.65
    assert torch.allclose(k, k.round(), atol=1e-3)
    assert (out[10:] - depth[10:]).abs().max() <= 2.65 / 2 + 1e-3
    assert (out[:10] == 0).all()
    assert (out[10:] - depth[10:]).abs().mean() == pytest.approx(2.65 / 4, rel=0.05)
    assert torch.unique(out[10:]).numel() <= 500 / 2.65 + 2


def test_depth_noise_grows_with_depth():
    near, far = torch.full((300, 300), 500.0), torch.full((300, 300), 900.0)
    e_near = depth_noise(near, gen(1)) - near
    e_far = depth_noise(far, gen(2)) - far
    assert e_near.std().item() == pytest.approx(0.5 + 1.2 * 0.25, rel=0.05)
    assert e_far.std().item() == pytest.approx(0.5 + 1.2 * 0.81, rel=0.05)
    assert abs(e_far.mean().item()) < 0.05
    flat = depth_noise(far, gen(3), sigma0_mm=2.0, sigma_quad_mm=0.0) - far
    assert flat.std().item() == pytest.approx(2.0, rel=0.05)
    holes = near.clone()
    holes[:5] = 0
    assert (depth_noise(holes, gen())[:5] == 0).all()


def test_fatten_edges_pulls_background_towards_the_foreground():
    depth = _step()
    out = fatten_edges(depth, gen(), fatten_width_px=2, jump_mm=10.0, fatten_prob=1.0)
    band = out[1:, 32:34]  # the two background columns next to the edge
    assert (band < 700).all() and (band >= 500).all()
    assert (band - 500).median() < 0.5 * 200  # mostly foreground: α = U² has median 0.25
    assert torch.equal(out[1:, :32], depth[1:, :32])  # the foreground is untouched
    assert torch.equal(out[1:, 34:], depth[1:, 34:])  # beyond the width nothing changes
    assert (out[0] == 0).all()
    some = fatten_edges(depth, gen(), fatten_prob=0.5)
    changed = (some[1:, 32:34] != 700).float().mean()
    assert 0.4 < changed < 0.6


def test_shift_edges_moves_each_map_s_edges_one_way_by_the_width():
    depth = _step()
    fattened, eroded = depth.clone(), depth.clone()
    fattened[1:, 32:34] = 500.0  # the foreground grows by 2 columns ...
    eroded[1:, 30:32] = 700.0  # ... or shrinks by 2
    batch = shift_edges(depth.expand(16, -1, -1), gen(), shift_width_px=2, jump_mm=10.0)
    kinds = [("out" if torch.equal(m, fattened) else "in" if torch.equal(m, eroded) else "?") for m in batch]
    assert "?" not in kinds and {"out", "in"} == set(kinds)  # a coin per map, each way exactly
    assert torch.equal(shift_edges(depth, gen(), shift_width_px=0), depth)
    with pytest.raises(ConfigError, match="shift_width_px"):
        shift_edges(depth, gen(), shift_width_px=-1)


def test_edge_holes_are_zeros_clustered_at_edges(scene_depths):
    depth = scene_depths
    out = edge_holes(depth, gen(), hole_width_px=2, hole_prob_edge=0.3, hole_prob_base=0.003, hole_blob_px=2)
    valid = depth > 0
    holes = valid & (out == 0)
    assert torch.equal(out[valid & ~holes], depth[valid & ~holes])
    assert (out[~valid] == 0).all()
    edges = edge_mask(depth).float()
    band = torch.nn.functional.max_pool2d(edges[:, None], 5, 1, 2)[:, 0] > 0
    rate_band = holes[band & valid].float().mean().item()
    rate_far = holes[valid & ~band].float().mean().item()
    assert rate_band == pytest.approx(0.3, abs=0.03)
    assert rate_far < 0.01
    assert rate_band > 20 * rate_far
    # blobs: a hole's right neighbour is a hole far more often than the hole rate (2x2 blocks)
    flat = torch.full((1, 200, 200), 600.0)
    h = edge_holes(flat, gen(5), hole_prob_base=0.5, hole_blob_px=2)[0] == 0
    right = (h[:, :-1] & h[:, 1:]).sum() / h[:, :-1].sum()
    assert h.float().mean() == pytest.approx(0.5, abs=0.03)
    assert right > 0.7  # independent pixels would give 0.5


def test_outliers_fall_inside_the_range_at_the_given_fraction():
    depth = torch.full((400, 400), 600.0)
    depth[:40] = 0
    out = outliers(depth, gen(), outlier_fraction=0.03, depth_range_mm=(425.0, 935.0))
    changed = out != depth
    assert changed[40:].float().mean().item() == pytest.approx(0.03, abs=0.003)
    assert (out[changed] >= 425.0).all() and (out[changed] <= 935.0).all()
    assert out[changed].mean().item() == pytest.approx(680.0, abs=10)  # uniform over the range
    assert (out[:40] == 0).all()


def test_low_frequency_bias_is_smooth_with_the_given_amplitude():
    depth = torch.full((3, 128, 160), 600.0)
    bias = low_frequency_bias(depth, gen(), bias_amplitude_mm=2.0, bias_scale_px=32) - depth
    assert bias.pow(2).mean(dim=(1, 2)).sqrt().tolist() == pytest.approx([2.0] * 3, rel=1e-3)
    step = (bias[:, :, 1:] - bias[:, :, :-1]).abs().mean().item()
    assert step < 0.1 * 2.0  # neighbours differ by a few hundredths of a mm
    assert not torch.allclose(bias[0], bias[1])  # each map of a batch has its own field


def test_mde_distortion_is_affine_up_to_a_small_smooth_warp(scene_depths):
    depth = scene_depths[0]
    valid = depth > 0
    x = depth[valid].double()
    A = torch.stack([x, torch.ones_like(x)], dim=1)

    def affine_fit(out):
        y = out[valid].double()
        coef = torch.linalg.lstsq(A, y[:, None]).solution[:, 0]
        return coef, A @ coef - y

    coef, residual = affine_fit(mde_distortion(depth, gen(4), mde_warp_rel=0.0))
    assert 0.85 <= coef[0] <= 1.15 and -40 <= coef[1] <= 40
    assert residual.abs().max() < 1e-2  # without the warp: exactly a scale and a shift
    out = mde_distortion(depth, gen(4), mde_warp_rel=0.02)
    coef, residual = affine_fit(out)
    relative = residual.pow(2).mean().sqrt() / out[valid].mean()
    assert 0.01 < relative < 0.03  # the warp adds about 2 % on top of the affine map
    warp = torch.zeros_like(depth)
    warp[valid] = residual.float()
    both = valid[:, 1:] & valid[:, :-1]
    assert (warp[:, 1:] - warp[:, :-1]).abs()[both].median() < 0.5  # and it is smooth
    assert (out[~valid] == 0).all()


def test_downsample_upsample_keeps_planes_and_loses_detail():
    v, u = torch.meshgrid(torch.arange(64.0), torch.arange(80.0), indexing="ij")
    ramp = 600 + 0.7 * u - 0.4 * v
    out = downsample_upsample(ramp, 4)
    inner = (slice(2, -2), slice(2, -2))
    assert torch.allclose(out[inner], ramp[inner], atol=1e-3)  # linear surfaces survive
    spike = torch.full((64, 80), 600.0)
    spike[30, 40] = 700.0
    flat = downsample_upsample(spike, 4)
    assert flat[30, 40] < 620  # a one-pixel detail is mostly gone
    holes = ramp.clone()
    holes[10:20, 10:20] = 0
    assert (downsample_upsample(holes, 4)[10:20, 10:20] == 0).all()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_are_seeded_shape_preserving_and_keep_invalid_pixels(preset, scene_depths):
    depth = scene_depths[:2]
    a = simulate_initial_depth(depth, preset, gen(7))
    b = simulate_initial_depth(depth, preset, gen(7))
    assert torch.equal(a, b)
    assert a.shape == depth.shape and a.dtype == depth.dtype
    assert torch.isfinite(a).all() and (a >= 0).all()
    assert (a[depth == 0] == 0).all()
    single = simulate_initial_depth(depth[0], preset, gen(7))
    assert single.shape == depth[0].shape
    if preset != "none":
        assert not torch.equal(a, simulate_initial_depth(depth, preset, gen(8)))
        assert not torch.equal(a[0], simulate_initial_depth(depth[[1, 0]], preset, gen(7))[1])  # per-map randomness
    else:
        assert torch.equal(a, depth)


def test_mvs_preset_error_is_realistic(scene_depths):
    depth = scene_depths
    init = simulate_initial_depth(depth, "mvs", gen(0))
    both = (depth > 0) & (init > 0)
    err = (init - depth).abs()[both]
    mae = err.mean().item()
    print(f"mvs preset: MAE {mae:.2f} mm, median {err.median():.2f} mm, "
          f"holes {(((depth > 0) & (init == 0)).sum() / (depth > 0).sum()).item():.3f}")
    assert 3.0 <= mae <= 8.0
    assert err.median() < 2.5
    assert (init[(depth > 0) & (init > 0)] <= 935.0 + 30).all()


def test_nonfinite_input_never_leaks():
    depth = torch.full((32, 32), 600.0)
    depth[0, 0], depth[1, 1], depth[2, 2] = float("nan"), float("inf"), -5.0
    for preset in PRESETS:
        out = simulate_initial_depth(depth, preset, gen())
        assert torch.isfinite(out).all() and (out >= 0).all()
        assert out[0, 0] == 0 and out[1, 1] == 0 and out[2, 2] == 0


def test_overrides_and_errors():
    depth = torch.full((64, 64), 600.0)
    none = simulate_initial_depth(depth, "mvs", gen(), outliers=False, depth_noise=False, low_frequency_bias=False,
                                  edge_holes=False)
    assert torch.allclose((none - 425.0) / 2.65, ((none - 425.0) / 2.65).round(), atol=1e-3)  # only quantised
    many = simulate_initial_depth(depth, "mvs", gen(), outlier_fraction=0.5)
    assert ((many - depth).abs() > 20).float().mean() > 0.3
    coarse = simulate_initial_depth(depth, "mvs", gen(), step_mm=10.0, depth_noise=False, low_frequency_bias=False,
                                    outliers=False, edge_holes=False, depth_range_mm=(400.0, 900.0))
    assert torch.allclose(coarse, torch.full_like(depth, 600.0))  # 400 + 20·10
    with pytest.raises(ConfigError, match="mde, mvs, noise, none, stereo"):
        simulate_initial_depth(depth, "lidar")
    with pytest.raises(ConfigError, match="outlier_fractoin"):
        simulate_initial_depth(depth, "mvs", outlier_fractoin=0.1)
    with pytest.raises(ConfigError):
        simulate_initial_depth(depth, "noise", step_mm=1.0)  # the noise preset does not quantise


def test_sample_seed_is_stable_across_processes():
    seeds = {(scan, v): sample_seed(scan, v) for scan in ("scan1", "scan24") for v in range(5)}
    assert len(set(seeds.values())) == len(seeds)
    assert all(isinstance(s, int) and 0 <= s < 2**32 for s in seeds.values())
    assert sample_seed("scan1", 0, base_seed=1) != sample_seed("scan1", 0)
    code = "from deltaz.ops.corrupt import sample_seed; print(sample_seed('scan24', 3), sample_seed('scan1', 0, 7))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.split() == [str(sample_seed("scan24", 3)), str(sample_seed("scan1", 0, 7))]
    a = simulate_initial_depth(torch.full((16, 16), 600.0), "mvs", gen(sample_seed("scan24", 3)))
    b = simulate_initial_depth(torch.full((16, 16), 600.0), "mvs", gen(sample_seed("scan24", 3)))
    assert torch.equal(a, b)
