"""The dead zone (deltaz.ops.dead_zone): which corrections it drops, where it applies, how it is set."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from deltaz.apps.cli import main as cli_main
from deltaz.core.errors import ConfigError
from deltaz.core.options import parse_dead_zone
from deltaz.engine.checkpoint import save_checkpoint
from deltaz.model import build_model, model_config, refine
from deltaz.ops.dead_zone import DEAD_ZONE, apply_dead_zone, check_dead_zone


class FixedCorrection(torch.nn.Module):
    """A stand-in refiner whose Δz is a given map, whatever the input."""

    in_channels = 1

    def __init__(self, delta_z: torch.Tensor):
        super().__init__()
        self.delta_z = delta_z

    def forward(self, depth_init, image=None, depth_range=None):
        return self.delta_z.reshape(depth_init.shape[0], 1, *depth_init.shape[-2:])


def _moves():
    """A 1×6 input at 500 mm (one hole) and Δz that straddle the zone (0.002 → 1 mm farther, 0.01 → 5 mm
    nearer)."""
    depth = torch.tensor([[[500.0, 500.0, 500.0, 500.0, 500.0, 0.0]]])
    delta = torch.tensor([[[0.9, 1.1, -4.9, -5.1, 0.0, 3.0]]])
    return depth, delta


def test_small_corrections_are_dropped_large_ones_and_holes_kept():
    depth, delta = _moves()
    kept = apply_dead_zone(delta, depth, (0.002, 0.010))
    # 0.9 mm farther and 4.9 mm nearer are inside; 1.1 farther and 5.1 nearer are outside; a hole keeps its fill
    assert torch.equal(kept, torch.tensor([[[0.0, 1.1, 0.0, -5.1, 0.0, 3.0]]]))
    assert torch.equal(apply_dead_zone(delta, depth, None), delta)
    assert torch.equal(apply_dead_zone(delta, depth, (0.0, 0.0)), delta)


def test_the_zone_is_a_fraction_of_the_depth_so_scaling_the_scene_scales_the_result():
    depth, delta = _moves()
    for s in (0.5, 3.0):
        assert torch.allclose(apply_dead_zone(delta * s, depth * s), apply_dead_zone(delta, depth) * s)


def test_refine_applies_it_only_when_asked():
    depth, delta = _moves()
    model = FixedCorrection(delta)
    assert torch.equal(refine(model, depth)["delta_z"], delta)  # training's call: every correction, with gradient
    out = refine(model, depth, dead_zone=DEAD_ZONE)
    assert torch.equal(out["delta_z"], apply_dead_zone(delta, depth, DEAD_ZONE))
    assert torch.equal(out["depth_refined"], depth + out["delta_z"])


@pytest.mark.parametrize("bad", [(0.5,), (-0.1, 0.01), (0.01, 1.0), ("a", "b"), 0.01])
def test_impossible_zones_are_refused_by_name(bad):
    with pytest.raises(ConfigError, match="dead_zone"):
        check_dead_zone(bad)


def test_the_flag_value_parses_or_says_what_it_expected():
    assert parse_dead_zone("0.002,0.01") == (0.002, 0.01)
    assert parse_dead_zone(" 0 , 0.05 ") == (0.0, 0.05)
    assert parse_dead_zone("off") is None and parse_dead_zone("0") is None
    for bad in ("0.1", "1,2", "a,b", "-0.1,0.1"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected F,N"):
            parse_dead_zone(bad)


def _tiny_checkpoint(path):
    """A tiny depth-only U-Net whose head is perturbed, so that it moves every pixel a little."""
    torch.manual_seed(0)
    model = build_model("deltaz_unet", in_channels=1, base_channel=4, depth=2, depth_scale_mm=20.0)
    torch.nn.init.normal_(model.head.weight, std=0.05)
    torch.nn.init.constant_(model.head.bias, 0.02)
    save_checkpoint(path, {"model": model.state_dict(), "model_config": model_config(model), "config": {}})
    return path


def test_deltaz_refine_takes_the_flag(tmp_path, capsys):
    checkpoint = _tiny_checkpoint(tmp_path / "tiny.pt")
    depth = np.full((24, 32), 600.0, np.float32) + np.random.default_rng(0).normal(0, 2, (24, 32)).astype(np.float32)
    depth_file = tmp_path / "d.npy"
    np.save(depth_file, depth)
    moved = {}
    for name, flag in (("default", []), ("off", ["--dead-zone", "off"]), ("wide", ["--dead-zone", "0.5,0.5"])):
        out = tmp_path / f"{name}.npy"
        assert cli_main(["refine", "--depth", str(depth_file), "--out", str(out), "--checkpoint", str(checkpoint),
                         "--no-smooth", *flag]) == 0
        moved[name] = np.abs(np.load(out) - depth)
    assert moved["off"].max() > 0 and moved["wide"].max() == 0.0  # a zone of half the depth keeps the input
    small = (moved["off"] > 0) & (moved["off"] < 0.002 * 600)  # moves inside the zone, farther or nearer
    assert small.any() and (moved["default"][small] == 0).all()
    assert cli_main(["refine", "--depth", str(depth_file), "--out", str(tmp_path / "x.npy"),
                     "--checkpoint", str(checkpoint), "--dead-zone", "2,3"]) != 0
    assert "--dead-zone" in capsys.readouterr().err
    assert not (tmp_path / "x.npy").exists()
