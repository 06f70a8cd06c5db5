"""The mirror agreement (deltaz.ops.agreement): which corrections it keeps, and that every inference path takes it."""

from __future__ import annotations

import numpy as np
import torch

from deltaz.apps.cli import main as cli_main
from deltaz.engine.checkpoint import save_checkpoint
from deltaz.engine.evaluate import methods
from deltaz.model import build_model, model_config, refine
from deltaz.ops.agreement import mirror_agree


class ColumnRefiner(torch.nn.Module):
    """A stand-in refiner that reads where a pixel is, not what it sees: Δz = +2 mm on the left half of whatever it
    is given, −2 mm on the right half, and ``scale·(depth − 600)`` everywhere (a mirror-symmetric part)."""

    in_channels = 1

    def __init__(self, column_mm: float = 2.0, scale: float = 0.0):
        super().__init__()
        self.column_mm, self.scale = column_mm, scale

    def forward(self, depth_init, image=None, depth_range=None):
        depth = depth_init.reshape(depth_init.shape[0], 1, *depth_init.shape[-2:])
        W = depth.shape[-1]
        side = torch.where(torch.arange(W) < W // 2, 1.0, -1.0) * self.column_mm
        return side.expand_as(depth) + self.scale * (depth - 600.0)


def test_the_smaller_of_two_same_signed_corrections_none_where_they_differ_holes_keep_the_first():
    depth = torch.tensor([500.0, 500.0, 500.0, 500.0, 500.0, 0.0])
    first = torch.tensor([2.0, -3.0, 1.0, 0.0, -1.0, 7.0])
    mirror = torch.tensor([5.0, -1.0, -1.0, 4.0, -1.0, -2.0])
    assert torch.equal(mirror_agree(first, mirror, depth), torch.tensor([2.0, -1.0, 0.0, 0.0, -1.0, 7.0]))
    # it is the median of the input and the two refined depths
    median = torch.stack([depth, depth + first, depth + mirror]).median(0).values
    assert torch.equal((depth + mirror_agree(first, mirror, depth))[:5], median[:5])


def test_a_correction_made_from_the_pixel_position_is_dropped_a_symmetric_one_kept():
    depth = torch.full((1, 4, 6), 600.0)
    depth[0, :, 1] = 610.0
    depth[0, 0, 0] = 0.0  # a hole keeps the first pass's fill
    by_column = refine(ColumnRefiner(2.0), depth, mirror_agreement=True)["delta_z"]
    assert by_column[0, 0, 0] == 2.0 and (by_column[depth > 0] == 0).all()
    symmetric = ColumnRefiner(0.0, scale=-0.5)
    assert torch.equal(refine(symmetric, depth, mirror_agreement=True)["delta_z"], refine(symmetric, depth)["delta_z"])
    both = refine(ColumnRefiner(2.0, scale=-0.5), depth, mirror_agreement=True)["delta_z"]
    assert torch.equal(both[0, :, 1], torch.full((4,), -3.0))  # -5 ± 2 on either side: the smaller, -3, stands


class ImageRefiner(torch.nn.Module):
    """A stand-in refiner that reads the image: Δz = 10 mm × (red − 0.5) at each pixel."""

    in_channels = 4

    def forward(self, depth_init, image=None, depth_range=None):
        return 10.0 * (image[:, :1] - 0.5)


def test_the_image_is_mirrored_with_the_depth():
    """A correction that follows the image survives the mirror (both passes see the same image content at each
    pixel); it would not if the image were left unmirrored (the red ramp would run the other way)."""
    depth = torch.full((1, 4, 6), 600.0)
    image = torch.zeros(1, 3, 4, 6)
    image[:, 0] = torch.linspace(0.0, 1.0, 6)  # red from left to right: Δz from -5 to +5 mm
    plain = refine(ImageRefiner(), depth, image=image)["delta_z"]
    assert torch.equal(refine(ImageRefiner(), depth, image=image, mirror_agreement=True)["delta_z"], plain)
    assert (plain != 0).all()


def test_evaluate_rows_run_it_for_deltaz_and_not_for_the_compared_network():
    model = ColumnRefiner(10.0)  # outside the dead zone either way (1.2 mm farther, 6 mm nearer at 600 mm)
    rows = methods.build_methods({}, {"deltaz": (model, {}), "mvsnet_refine": (model, {})}, "cpu", mirror_agreement=True)

    class Views:
        depth_init = torch.full((2, 4, 6), 600.0)
        depth_range = torch.tensor([500.0, 700.0])
        image = None

    assert (rows["deltaz"](Views(), [0, 1]) == 600.0).all()
    assert (rows["mvsnet_refine"](Views(), [0, 1]) != 600.0).all()


def _tiny_checkpoint(path):
    """A tiny depth-only U-Net with a perturbed head, so that it moves every pixel, not symmetrically."""
    torch.manual_seed(0)
    model = build_model("deltaz_unet", in_channels=1, base_channel=4, depth=2, depth_scale_mm=20.0)
    torch.nn.init.normal_(model.head.weight, std=0.2)
    save_checkpoint(path, {"model": model.state_dict(), "model_config": model_config(model), "config": {}})
    return path


def test_deltaz_refine_keeps_the_median_of_the_two_passes_by_default_and_one_pass_when_told(tmp_path):
    checkpoint = _tiny_checkpoint(tmp_path / "tiny.pt")
    depth = np.full((24, 32), 600.0, np.float32) + np.random.default_rng(0).normal(0, 3, (24, 32)).astype(np.float32)

    def run(depth_map, name, *flags):
        np.save(tmp_path / f"{name}_in.npy", depth_map)
        assert cli_main(["refine", "--depth", str(tmp_path / f"{name}_in.npy"), "--out", str(tmp_path / f"{name}.npy"),
                         "--checkpoint", str(checkpoint), "--dead-zone", "off", "--no-smooth", *flags]) == 0
        return np.load(tmp_path / f"{name}.npy")

    plain = run(depth, "plain", "--no-mirror-agreement")
    mirrored = run(depth[:, ::-1].copy(), "mirrored", "--no-mirror-agreement")[:, ::-1]
    agreed = run(depth, "agreed")
    np.testing.assert_array_equal(run(depth, "agreed_flag", "--mirror-agreement"), agreed)
    assert np.abs(plain - depth).max() > 0.1 and np.abs(agreed - plain).max() > 0.1  # both passes move, differently
    np.testing.assert_allclose(agreed, np.median(np.stack([depth, plain, mirrored]), axis=0), atol=1e-4)
