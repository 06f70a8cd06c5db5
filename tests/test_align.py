"""Scale/shift alignment of monocular predictions, the estimator plug-in point, and MVS output import."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest
import torch

from _tiny_scans import make_dataset
from deltaz.ops.align import (
    ExternalEstimator,
    align_scale_shift,
    estimate_initial_depth,
    load_estimator,
    resize_prediction,
    sparse_points_from_depth,
)
from deltaz.core.errors import ConfigError, DataError


def _scene(H=48, W=64, seed=0):
    """A smooth DTU-like metric depth (mm) with a few holes."""
    g = torch.Generator().manual_seed(seed)
    v, u = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
    depth = 650 + 60 * u + 30 * v + 40 * torch.exp(-4 * (u**2 + v**2))
    depth = depth + torch.rand(H, W, generator=g)  # not a plane
    holes = torch.rand(H, W, generator=g) < 0.05
    return torch.where(holes, torch.zeros_like(depth), depth)


def test_sparse_points_keep_the_fraction_of_valid_pixels_and_are_reproducible():
    depth = _scene()
    n_valid = int((depth > 0).sum())
    sparse = sparse_points_from_depth(depth, 0.02, torch.Generator().manual_seed(1))
    kept = sparse > 0
    assert int(kept.sum()) == round(0.02 * n_valid)
    assert torch.equal(sparse[kept], depth[kept])  # the metric depth, unchanged
    assert torch.equal(sparse, sparse_points_from_depth(depth, 0.02, torch.Generator().manual_seed(1)))
    assert not torch.equal(sparse, sparse_points_from_depth(depth, 0.02, torch.Generator().manual_seed(2)))
    batched = sparse_points_from_depth(torch.stack([depth, depth]), 0.02, torch.Generator().manual_seed(1))
    assert batched.shape == (2, *depth.shape) and int((batched[1] > 0).sum()) == int(kept.sum())
    with pytest.raises(ConfigError, match="fraction"):
        sparse_points_from_depth(depth, 0.0)


@pytest.mark.parametrize("robust", [False, True])
def test_recovers_a_known_scale_and_shift_exactly_without_noise(robust):
    depth = _scene()
    scale, shift = 250.0, 480.0  # depth = scale * pred + shift
    depth = depth.double()
    pred = torch.where(depth > 0, (depth - shift) / scale, torch.zeros_like(depth))
    sparse = sparse_points_from_depth(depth, 0.01, torch.Generator().manual_seed(0)).double()
    aligned, s, t = align_scale_shift(pred, sparse, robust=robust)
    assert float(s) == pytest.approx(scale, rel=1e-9)
    assert float(t) == pytest.approx(shift, rel=1e-9)
    torch.testing.assert_close(aligned, depth, atol=1e-6, rtol=0)
    assert bool((aligned[depth == 0] == 0).all())  # prediction holes stay holes


def test_robust_fit_ignores_20_percent_outliers_where_least_squares_does_not():
    depth = _scene(seed=3).double()
    g = torch.Generator().manual_seed(5)
    pred = torch.where(depth > 0, (depth - 300.0) / 0.8, torch.zeros_like(depth))
    sparse = sparse_points_from_depth(depth, 0.05, g)
    points = (sparse > 0).nonzero()
    bad = points[torch.randperm(len(points), generator=g)[: len(points) // 5]]
    sparse[bad[:, 0], bad[:, 1]] = 425 + 500 * torch.rand(len(bad), generator=g).double()  # gross outliers
    aligned, s, t = align_scale_shift(pred, sparse, robust=True)
    assert float(s) == pytest.approx(0.8, rel=1e-6) and float(t) == pytest.approx(300.0, rel=1e-6)
    valid = depth > 0
    assert float((aligned - depth)[valid].abs().max()) < 1e-6
    _, s_ls, t_ls = align_scale_shift(pred, sparse, robust=False)
    assert abs(float(s_ls) - 0.8) > 0.02  # plain least squares is pulled away


def test_robust_fit_with_inlier_noise_and_outliers_stays_close():
    depth = _scene(seed=4)
    g = torch.Generator().manual_seed(6)
    pred = torch.where(depth > 0, (depth - 100.0) / 2.0, torch.zeros_like(depth)).double()
    sparse = sparse_points_from_depth(depth, 0.1, g).double()
    kept = sparse > 0
    sparse[kept] += torch.randn(int(kept.sum()), generator=g).double() * 0.5  # 0.5 mm noise
    idx = kept.nonzero()
    bad = idx[torch.randperm(len(idx), generator=g)[: len(idx) // 5]]
    sparse[bad[:, 0], bad[:, 1]] += 100.0
    _, s, t = align_scale_shift(pred, sparse, robust=True)
    assert float(s) == pytest.approx(2.0, rel=5e-3) and float(t) == pytest.approx(100.0, abs=3.0)


def test_inverse_depth_mode_fits_in_inverse_depth():
    depth = _scene(seed=1)
    valid = depth > 0
    # MiDaS-style affine-invariant inverse depth: 1/depth = s * pred + t
    s_true, t_true = 2e-5, 5e-4
    inv = torch.where(valid, 1.0 / depth.double(), torch.zeros_like(depth, dtype=torch.float64))
    pred = torch.where(valid, (inv - t_true) / s_true, torch.zeros_like(inv))
    sparse = sparse_points_from_depth(depth, 0.01, torch.Generator().manual_seed(0)).double()
    aligned, s, t = align_scale_shift(pred, sparse, inverse=True)
    assert float(s) == pytest.approx(s_true, rel=1e-8) and float(t) == pytest.approx(t_true, rel=1e-8)
    torch.testing.assert_close(aligned[valid], depth.double()[valid], atol=1e-6, rtol=0)
    # the same prediction fitted as depth cannot be exact (1/x is not affine)
    aligned_depth_mode, _, _ = align_scale_shift(pred, sparse, inverse=False)
    assert float((aligned_depth_mode - depth.double())[valid].abs().max()) > 0.1


def test_holes_in_prediction_target_and_mask_are_ignored():
    depth = _scene(seed=2).double()
    pred = (depth - 50.0) / 3.0
    sparse = sparse_points_from_depth(depth, 0.05, torch.Generator().manual_seed(3))
    points = (sparse > 0).nonzero()
    # wreck some points three ways; each must be left out of the fit
    nan_at, zero_at, masked_at = points[:5], points[5:10], points[10:15]
    pred[nan_at[:, 0], nan_at[:, 1]] = float("nan")
    pred[zero_at[:, 0], zero_at[:, 1]] = 0.0
    sparse_bad = sparse.clone()
    sparse_bad[nan_at[:, 0], nan_at[:, 1]] = 10.0
    sparse_bad[zero_at[:, 0], zero_at[:, 1]] = 10.0
    sparse_bad[masked_at[:, 0], masked_at[:, 1]] = 10.0
    mask = torch.ones_like(depth, dtype=torch.bool)
    mask[masked_at[:, 0], masked_at[:, 1]] = False
    aligned, s, t = align_scale_shift(pred, sparse_bad, mask, robust=False)
    assert float(s) == pytest.approx(3.0, rel=1e-6) and float(t) == pytest.approx(50.0, rel=1e-6)
    assert bool((aligned[nan_at[:, 0], nan_at[:, 1]] == 0).all())  # no value in, no value out
    assert torch.isfinite(aligned).all()


def test_batched_fit_is_per_sample_and_degenerate_input_raises():
    depth = _scene().double()
    pred = torch.stack([(depth - 10) / 2, (depth - 20) / 4])
    sparse = sparse_points_from_depth(torch.stack([depth, depth]), 0.02, torch.Generator().manual_seed(0))
    _, s, t = align_scale_shift(pred, sparse)
    torch.testing.assert_close(s, torch.tensor([2.0, 4.0], dtype=torch.float64))
    torch.testing.assert_close(t, torch.tensor([10.0, 20.0], dtype=torch.float64))
    with pytest.raises(DataError, match="at least 2"):
        align_scale_shift(pred[0], torch.zeros_like(depth))
    with pytest.raises(DataError, match="constant"):
        align_scale_shift(torch.ones_like(depth), sparse[0])


def test_resize_prediction_follows_the_scaling_convention_and_skips_holes():
    # a prediction linear in u at half resolution: output pixel u samples input u/2
    small = torch.arange(8, dtype=torch.float32).repeat(6, 1) + 1.0  # (6, 8), value = u + 1
    big = resize_prediction(small, (12, 16))
    torch.testing.assert_close(big[:, ::2], small.repeat_interleave(2, 0))  # even u: exact input pixels
    torch.testing.assert_close(big[:, 1:-1:2], (small[:, :-1] + 0.5).repeat_interleave(2, 0))
    holed = small.clone()
    holed[:, 3] = 0.0
    out = resize_prediction(holed, (12, 16))
    assert float(out[0, 7]) == pytest.approx(5.0)  # between a hole (u=3) and u=4 (value 5): no blending
    with pytest.raises(DataError, match="aspect"):
        resize_prediction(small, (12, 12))


def test_estimate_initial_depth_with_a_plugged_in_network():
    depth = _scene()
    image = torch.rand(3, *depth.shape)

    def my_network(img):  # stands for any monocular network: half resolution, unknown scale/shift
        assert img.shape == image.shape
        return ((depth - 200.0) / 5.0)[::2, ::2][None]

    sparse = sparse_points_from_depth(depth, 0.05, torch.Generator().manual_seed(0))
    out = estimate_initial_depth(image, my_network, sparse=sparse)
    assert out["depth_init"].shape == depth.shape and out["depth_init"].dtype == torch.float32
    assert float(out["scale"]) == pytest.approx(5.0, rel=1e-3) and float(out["shift"]) == pytest.approx(200.0, rel=1e-3)
    both = (depth > 0) & (out["depth_init"] > 0)
    assert float((out["depth_init"] - depth)[both].abs().median()) < 1.0
    metric = ExternalEstimator(lambda img: depth, metric=True)
    torch.testing.assert_close(estimate_initial_depth(image, metric)["depth_init"], depth)  # metric: not aligned
    with pytest.raises(ConfigError, match="sparse"):
        estimate_initial_depth(image, my_network)


def test_load_estimator_from_a_module_spec(tmp_path, monkeypatch):
    (tmp_path / "my_mde.py").write_text(textwrap.dedent("""
        from deltaz.ops.align import ExternalEstimator
        def predict(image):
            return image[0] + 1.0
        def build():
            return ExternalEstimator(predict, inverse=True, name="mine")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    plain = load_estimator("my_mde:predict")
    assert isinstance(plain, ExternalEstimator) and not plain.inverse
    built = load_estimator("my_mde:build")
    assert built.inverse and built.name == "mine"
    with pytest.raises(ConfigError, match="no attribute"):
        load_estimator("my_mde:nope")
    with pytest.raises(ConfigError, match="module:name"):
        load_estimator("my_mde.predict")
    sys.modules.pop("my_mde", None)


def test_parse_imports_mvsnet_depth_est_outputs(tmp_path):
    """Real MVS outputs in MVSNet's folder layout (``scan{N}/depth_est/{vid:08d}.pfm``, with a
    ``confidence/`` folder beside it) become each view's ``initial/`` depth, resized to the depth grid."""
    from deltaz.io.dtu.formats import write_cam_file, write_pfm
    from deltaz.io.dtu.layout import load_view, read_meta
    from deltaz.io.dtu.parse import parse_dtu

    H, W = 8, 10
    src = tmp_path / "dtu_training"
    (src / "Cameras" / "train").mkdir(parents=True)
    depth_dir = src / "Depths" / "scan3_train"
    depth_dir.mkdir(parents=True)
    mvs = tmp_path / "mvs_outputs" / "scan3"
    (mvs / "depth_est").mkdir(parents=True)
    (mvs / "confidence").mkdir()
    K = np.array([[20.0, 0, 4.5], [0, 20.0, 3.5], [0, 0, 1]])
    for vid in range(2):
        E = np.eye(4)
        E[0, 3] = 10.0 * vid
        write_cam_file(src / "Cameras" / "train" / f"{vid:08d}_cam.txt", K, E, 425.0, 2.5)
        write_pfm(depth_dir / f"depth_map_{vid:04d}.pfm", np.full((H, W), 600.0, np.float32))
        est = np.full((2 * H, 2 * W), 601.0 + vid, np.float32)
        est[0, 0] = 0.0  # an MVS hole
        write_pfm(mvs / "depth_est" / f"{vid:08d}.pfm", est)
        write_pfm(mvs / "confidence" / f"{vid:08d}.pfm", np.full((2 * H, 2 * W), 0.9, np.float32))
    (src / "Cameras" / "pair.txt").write_text("2\n0\n1 1 10.0\n1\n1 0 10.0\n")
    parse_dtu(src, tmp_path / "scans", initial=tmp_path / "mvs_outputs")
    scan = tmp_path / "scans" / "scan3"
    assert read_meta(scan)["has_initial"]
    for vid in range(2):
        initial = load_view(scan, vid)["initial"]
        assert initial.shape == (H, W)
        assert initial[0, 0] == 0.0 and np.all(initial.reshape(-1)[1:] == 601.0 + vid)


def test_data_loader_takes_initial_depths_from_an_estimator(tmp_path, monkeypatch):
    """``initial_source="estimator"``: the estimator sees each view's image and its output, aligned to a few
    ground-truth pixels, is the sample's ``depth_init`` — also through ``deltaz train --estimator``."""
    from deltaz.apps.cli import main as cli_main
    from deltaz.data import DepthRefinementDataset, create_dataloaders

    # the tiny scans' image is shade = (depth - 540) / 120 in channel 0: an "MDE" up to scale and shift
    (tmp_path / "shade_mde.py").write_text("def predict(image):\n    return image[0]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    root = make_dataset(tmp_path / "data", n_scans=2, n_views=3, H=32, W=40, images=True)
    ds = DepthRefinementDataset(root, ["scan1"], num_views=2, train=False, initial_source="estimator",
                                estimator="shade_mde:predict", align_fraction=0.05)
    sample = ds[0]
    both = sample["mask"] & (sample["depth_init"] > 0)
    assert float(both.float().mean()) > 0.8
    err = (sample["depth_init"] - sample["depth"])[both].abs()
    assert float(err.median()) < 0.5  # PNG quantisation of the shade: 120 mm / 255 / 2
    assert "image" not in sample  # the image fed the estimator; the network does not see it
    simulated = DepthRefinementDataset(root, ["scan1"], num_views=2, train=False, initial_source="simulate")
    assert not torch.equal(simulated[0]["depth_init"], sample["depth_init"])
    with pytest.raises(ConfigError, match="estimator"):
        DepthRefinementDataset(root, ["scan1"], initial_source="estimator")
    train_loader, _ = create_dataloaders(root, 2, 2, 0.5, split="random", initial_source="estimator",
                                         estimator="shade_mde:predict")
    batch = next(iter(train_loader))
    assert batch["depth_init"].shape == batch["depth"].shape
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli_main(["train", "--data-root", str(root), "--batch-size", "2", "--num-epochs", "1",
                         "--val-split", "0.5", "--split", "random", "--base-channel", "4", "--unet-depth", "2",
                         "--max-steps", "1", "--initial-source", "estimator", "--estimator", "shade_mde:predict",
                         "--checkpoint-dir", str(tmp_path / "ck"), "--log-dir", str(tmp_path / "logs"),
                         "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    sys.modules.pop("shade_mde", None)
