"""Multi-scale losses: pyramid sizes, validity-aware downsampling, intrinsics scaled so that consistent
depths stay consistent at every level, and the weighted total."""

from __future__ import annotations

import pytest
import torch

from _tiny_scans import make_dataset
from deltaz.core.batch import MultiView
from deltaz.data import DepthRefinementDataset, collate_same_scene
from deltaz.io.dtu.layout import list_scans
from deltaz.core.errors import ConfigError
from deltaz.ops.losses import LossWeights, losses_for_batch, multiview_consistency_loss
from deltaz.ops.multiscale import (
    batch_pyramid,
    downsample_depth,
    downsample_image,
    multiscale_losses,
    scale_intrinsics_tensor,
)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A batch of 2 samples x 3 views of a tiny consistent scan (64x80, 5 % holes)."""
    root = make_dataset(tmp_path_factory.mktemp("ms") / "data", n_scans=1, n_views=4, H=64, W=80, initial=True)
    ds = DepthRefinementDataset(root, list_scans(root), num_views=3, train=False)
    return collate_same_scene([ds[0], ds[1]])


def _gt_out(batch):
    depth = batch["depth"][:, 0]
    return {"depth_refined": depth.clone().requires_grad_(True), "delta_z": torch.zeros_like(depth)}


@pytest.mark.parametrize("mode", ["nearest", "masked_mean"])
def test_pyramid_sizes_are_h_over_2_to_the_k(batch, mode):
    levels = batch_pyramid(batch, 3, mode)
    B, V, H, W = batch["depth"].shape
    for k, level in enumerate(levels):
        assert level["depth"].shape == (B, V, H // 2**k, W // 2**k)
        assert level["depth_init"].shape == level["mask"].shape == level["depth"].shape
        torch.testing.assert_close(level["intrinsics"][..., :2, :], batch["intrinsics"][..., :2, :] / 2**k)
        assert torch.equal(level["extrinsics"], batch["extrinsics"])
    odd = torch.ones(2, 15, 9)
    assert downsample_depth(odd, 4, mode).shape == (2, 4, 3)  # ceil(H/f): pixel u' sits on input 4u'


def test_scaled_intrinsics_follow_design_convention():
    K = torch.tensor([[361.54, 0.0, 82.90], [0.0, 360.40, 66.38], [0.0, 0.0, 1.0]])
    K2 = scale_intrinsics_tensor(K, 0.5)
    torch.testing.assert_close(K2, torch.tensor([[180.77, 0.0, 41.45], [0.0, 180.20, 33.19], [0.0, 0.0, 1.0]]))
    assert K2.dtype == K.dtype


def test_nearest_keeps_exact_pixels_and_holes():
    g = torch.Generator().manual_seed(0)
    depth = 600 + 100 * torch.rand(3, 16, 20, generator=g)
    depth[torch.rand(3, 16, 20, generator=g) < 0.3] = 0
    out = downsample_depth(depth, 4, "nearest")
    assert torch.equal(out, depth[..., ::4, ::4])


def test_masked_mean_never_blends_holes_and_is_centred():
    g = torch.Generator().manual_seed(1)
    depth = torch.full((16, 20), 700.0)
    depth[torch.rand(16, 20, generator=g) < 0.3] = 0
    out = downsample_depth(depth, 2, "masked_mean")
    assert bool(((out == 0) | (out == 700.0)).all()) and bool((out == 700.0).any())  # no value pulled to 0
    # a depth linear in (u, v) is reproduced exactly at the kept pixels: the window is centred on (2u', 2v')
    v, u = torch.meshgrid(torch.arange(16.0), torch.arange(20.0), indexing="ij")
    ramp = 600 + 3 * u + 2 * v
    torch.testing.assert_close(downsample_depth(ramp, 4, "masked_mean")[1:-1, 1:-1], ramp[::4, ::4][1:-1, 1:-1])
    img = torch.stack([ramp, ramp, ramp]) / 1000
    torch.testing.assert_close(downsample_image(img, 2)[:, 1:-1, 1:-1], img[:, ::2, ::2][:, 1:-1, 1:-1])


@pytest.mark.parametrize("mode", ["nearest", "masked_mean"])
def test_ground_truth_is_consistent_at_every_scale(batch, mode):
    """The refined depth = GT: the depth loss is 0 and the multi-view loss ~0 at every level; with the
    full-resolution intrinsics left unscaled the coarse multi-view loss is large."""
    out = _gt_out(batch)
    total, terms = multiscale_losses(batch, out, LossWeights(), (1.0, 0.5, 0.25), mode=mode)
    # bilinear sampling of the source depth across the sphere's edges leaves ~0.1 mm at full
    # resolution, growing with the pixel size; a wrong camera gives tens of mm
    tol = 1.0  # mm
    assert float(terms["depth"]) == 0.0 and float(terms["multiview"]) < 0.5
    for k in (1, 2):
        assert float(terms[f"depth_s{k}"]) == 0.0  # GT and refined are downsampled by the same rule
        assert float(terms[f"multiview_s{k}"]) < tol, (k, float(terms[f"multiview_s{k}"]))
        assert terms[f"smoothness_s{k}"] >= 0
    total.backward()
    assert torch.isfinite(out["depth_refined"].grad).all()
    # the same level-2 depths with unscaled intrinsics: inconsistent by many mm
    level = batch_pyramid(batch, 3, mode)[2]
    depth = level["depth"]
    wrong = multiview_consistency_loss(depth[:, 0], MultiView(
        batch["intrinsics"][:, 0], level["extrinsics"][:, 0],
        depth[:, 1:], batch["intrinsics"][:, 1:], level["extrinsics"][:, 1:],
    ))
    right = multiview_consistency_loss(depth[:, 0], MultiView(
        level["intrinsics"][:, 0], level["extrinsics"][:, 0],
        depth[:, 1:], level["intrinsics"][:, 1:], level["extrinsics"][:, 1:],
    ))
    assert float(right) < tol and float(wrong) > 10.0


def test_total_is_the_weighted_sum_over_levels(batch):
    g = torch.Generator().manual_seed(0)
    depth = batch["depth"][:, 0]
    noise = torch.randn(depth.shape, generator=g) * 3
    out = {"depth_refined": depth + noise, "delta_z": noise}
    weights = LossWeights()
    single, single_terms = losses_for_batch(batch, out, weights)
    only0, terms0 = multiscale_losses(batch, out, weights, (1.0,))
    torch.testing.assert_close(only0, single)
    assert set(single_terms) <= set(terms0)
    total, terms = multiscale_losses(batch, out, weights, (1.0, 0.5, 0.25))
    expected = single
    for k, sw in ((1, 0.5), (2, 0.25)):
        level = (weights.depth * terms[f"depth_s{k}"] + weights.smoothness * terms[f"smoothness_s{k}"]
                 + weights.multiview * terms[f"multiview_s{k}"])
        expected = expected + sw * level
    torch.testing.assert_close(total.detach(), expected.detach())
    assert float(terms["depth_s1"]) > 0.5  # 3 mm noise is seen at the coarse level too
    # level 0's weight scales only the multi-scale terms
    half0, _ = multiscale_losses(batch, out, weights, (0.5,))
    ms0 = (weights.depth * terms["depth"] + weights.smoothness * terms["smoothness"]
           + weights.multiview * terms["multiview"])
    torch.testing.assert_close(half0.detach(), (single - 0.5 * ms0).detach())


def test_bad_scale_weights_raise(batch):
    out = _gt_out(batch)
    for bad in ([], [0.0, 1.0], [1.0, -0.5]):
        with pytest.raises(ConfigError, match="scale_weights"):
            multiscale_losses(batch, out, None, bad)
    with pytest.raises(ConfigError, match="factor"):
        downsample_depth(torch.ones(4, 4), 3)


def test_cli_trains_with_multiscale_and_confidence(tmp_path, capsys):
    """``deltaz train --multiscale --scale-weights … --confidence`` runs, logs per-level terms and stores
    the settings in the checkpoint."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from deltaz.engine import checkpoint as ckpt
    from deltaz.apps.cli import main as cli_main

    root = make_dataset(tmp_path / "data", n_scans=2, n_views=3, H=32, W=40, initial=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = cli_main(["train", "--data-root", str(root), "--batch-size", "2", "--num-epochs", "1",
                         "--val-split", "0.5", "--split", "random", "--base-channel", "4", "--unet-depth", "2",
                         "--max-steps", "2", "--multiscale", "--scale-weights", "1", "0.5", "0.25", "--confidence",
                         "--log-every", "1", "--checkpoint-dir", str(tmp_path / "ck"), "--log-dir",
                         str(tmp_path / "logs"), "--no-progress"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    config = ckpt.load_checkpoint(tmp_path / "ck" / "last.pt")["config"]
    assert config["multiscale"] and config["scale_weights"] == [1.0, 0.5, 0.25]
    assert config["out_confidence"] and config["w_confidence"] > 0
    events = EventAccumulator(str(tmp_path / "logs"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/train/depth_s1", "loss/train/multiview_s2", "loss/train/confidence"} <= tags
