"""The surface smoothing (deltaz.ops.smooth): it averages noise on a surface, keeps depth edges and holes, does not
depend on the scene's scale, and every inference path takes it (training does not)."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import torch

from deltaz.apps.cli import main as cli_main
from deltaz.engine.checkpoint import save_checkpoint
from deltaz.engine.evaluate import methods
from deltaz.model import build_model, model_config, refine
from deltaz.ops.smooth import (CAP_REL, NOISE_FACTOR, SURFACE_SMOOTHING, add_smooth_flags, noise_sigma, range_sigma,
                               smooth_surfaces)


def _slanted_plane(H: int = 48, W: int = 64) -> torch.Tensor:
    """``(H, W)`` mm: a plane at 600 mm rising 0.5 mm per column and 0.3 mm per row."""
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    return 600.0 + 0.5 * u + 0.3 * v


def _noisy(depth: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    return depth + sigma * torch.randn(depth.shape, generator=torch.Generator().manual_seed(seed))


def test_the_noise_level_is_the_noise_sigma_and_zero_on_a_plane():
    plane = _slanted_plane()
    assert noise_sigma(plane) < 1e-3
    assert noise_sigma(_noisy(plane, 2.0)) == pytest.approx(2.0, rel=0.1)
    assert noise_sigma(_noisy(plane, 0.5)) == pytest.approx(0.5, rel=0.1)
    assert noise_sigma(torch.zeros(8, 8)) == 0.0  # no valid triple
    with_holes = _noisy(plane, 2.0)
    with_holes[::3] = 0.0  # holes break the triples they are in, not the estimate
    assert noise_sigma(with_holes) == pytest.approx(2.0, rel=0.15)


def test_the_range_scale_is_capped_by_a_fraction_of_the_depth():
    plane = _slanted_plane()
    low = _noisy(plane, 0.5)
    assert range_sigma(low) == pytest.approx(NOISE_FACTOR * noise_sigma(low))
    high = _noisy(plane, 5.0)  # 1.5 x 5 mm is above the cap at ~620 mm
    assert range_sigma(high) == pytest.approx(CAP_REL * float(high.double().median()), rel=1e-3)
    assert range_sigma(torch.zeros(8, 8)) == 0.0


def test_noise_on_a_surface_is_averaged_and_a_depth_edge_is_kept():
    truth = _slanted_plane()
    truth[:, 32:] += 60.0  # a depth edge between columns 31 and 32
    noisy = _noisy(truth, 1.0)
    smoothed = smooth_surfaces(noisy[None], noisy[None])[0]
    assert (smoothed - truth).abs().mean() < 0.7 * (noisy - truth).abs().mean()
    # beside the edge a pixel keeps its own side: it moves by noise-level amounts, never towards the other side
    assert (smoothed[:, 30:34] - noisy[:, 30:34]).abs().max() < 5.0
    assert (smoothed[:, :32] - truth[:, :32]).abs().max() < 10.0 and (smoothed[:, 32:] - truth[:, 32:]).abs().max() < 10.0


def test_holes_stay_holes_a_clean_plane_stays_and_each_map_has_its_own_scale():
    plane = _slanted_plane()
    holed = _noisy(plane, 1.0)
    holed[10:14, 20:30] = 0.0
    clean = plane.clone()
    out = smooth_surfaces(torch.stack([holed, clean]), torch.stack([holed, clean]))
    assert (out[0][holed == 0] == 0).all() and (out[0][holed > 0] > 0).all()
    assert torch.allclose(out[1], clean, atol=1e-3)  # sigma ~ 0: nothing to average
    alone = smooth_surfaces(holed[None], holed[None])[0]
    assert torch.allclose(out[0], alone)  # the clean map beside it did not change its scale


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_it_does_not_depend_on_the_scene_scale(scale):
    depth = _noisy(_slanted_plane(), 1.0)
    depth[:, 40:] += 50.0
    at_one = smooth_surfaces(depth[None], depth[None])[0]
    scaled = smooth_surfaces(scale * depth[None], scale * depth[None])[0]
    assert torch.allclose(scaled, scale * at_one, rtol=1e-4, atol=1e-3 * scale)


class Still(torch.nn.Module):
    """A stand-in refiner that corrects nothing (Δz = 0): what remains is the smoothing."""

    in_channels = 1

    def forward(self, depth_init, image=None, depth_range=None):
        return torch.zeros_like(depth_init.reshape(depth_init.shape[0], 1, *depth_init.shape[-2:]))


def test_refine_smooths_only_when_told_and_delta_z_includes_it():
    depth = _noisy(_slanted_plane(), 1.0)[None]
    assert (refine(Still(), depth)["delta_z"] == 0).all()  # the default, which training uses: off
    out = refine(Still(), depth, smooth=True)
    assert torch.allclose(out["depth_refined"], smooth_surfaces(depth, depth))
    assert torch.allclose(out["depth_refined"], depth + out["delta_z"])
    four_d = refine(Still(), depth[:, None], smooth=True)["depth_refined"]
    assert four_d.shape == (1, 1, *depth.shape[-2:]) and torch.allclose(four_d[:, 0], out["depth_refined"])


def test_evaluate_rows_smooth_deltaz_and_not_the_compared_network():
    model = Still()
    rows = methods.build_methods({}, {"deltaz": (model, {}), "mvsnet_refine": (model, {})}, "cpu", smooth=True,
                                 mirror_agreement=False)
    depth = torch.stack([_noisy(_slanted_plane(), 1.0, seed) for seed in (0, 1)])

    class Views:
        depth_init = depth
        depth_range = torch.tensor([500.0, 700.0])
        image = None

    assert torch.allclose(rows["deltaz"](Views(), [0, 1]), smooth_surfaces(depth, depth))
    assert torch.equal(rows["mvsnet_refine"](Views(), [0, 1]), depth)


def test_the_flags_set_it_and_it_is_the_inference_default():
    parser = argparse.ArgumentParser()
    add_smooth_flags(parser)
    assert parser.parse_args([]).smooth is SURFACE_SMOOTHING is True
    assert parser.parse_args(["--no-smooth"]).smooth is False
    assert parser.parse_args(["--smooth"]).smooth is True


def test_deltaz_refine_smooths_by_default_and_not_with_no_smooth(tmp_path):
    torch.manual_seed(0)
    model = build_model("deltaz_unet", in_channels=1, base_channel=4, depth=2, depth_scale_mm=20.0)  # Δz = 0 untrained
    checkpoint = tmp_path / "still.pt"
    save_checkpoint(checkpoint, {"model": model.state_dict(), "model_config": model_config(model), "config": {}})
    depth = _noisy(_slanted_plane(), 1.0).numpy()
    np.save(tmp_path / "in.npy", depth)

    def run(name, *flags):
        assert cli_main(["refine", "--depth", str(tmp_path / "in.npy"), "--out", str(tmp_path / f"{name}.npy"),
                         "--checkpoint", str(checkpoint), *flags]) == 0
        return np.load(tmp_path / f"{name}.npy")

    np.testing.assert_array_equal(run("plain", "--no-smooth"), depth)
    smoothed = run("smoothed")
    expected = smooth_surfaces(torch.from_numpy(depth)[None], torch.from_numpy(depth)[None])[0].numpy()
    np.testing.assert_allclose(smoothed, expected, atol=1e-3)
    truth = _slanted_plane().numpy()
    assert np.abs(smoothed - truth).mean() < 0.7 * np.abs(depth - truth).mean() and math.isfinite(smoothed.sum())
