"""Sparsification curves and AUSE: oracle = 0 and monotone, random > 0, informative in between."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deltaz.engine.config import DEFAULT_CONFIDENCE_WEIGHT
from deltaz.model import LOG_B_INIT, DeltaZUnet, refine
from deltaz.ops.confidence import ause, sparsification, sparsification_curve
from deltaz.ops.losses import LossWeights, compute_losses
from deltaz.viz import render_sparsification
from deltaz.core.errors import DataError


@pytest.fixture
def errors():
    g = torch.Generator().manual_seed(0)
    return torch.rand(64, 80, generator=g) ** 3 * 10  # mm, skewed like depth errors


def test_oracle_confidence_gives_zero_ause_and_a_monotone_curve(errors):
    result = sparsification(errors, -errors)  # the most confident where the error is smallest
    assert result.ause == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(result.curve, result.oracle)
    assert np.all(np.diff(result.oracle) <= 1e-12)  # removing the worst pixels never raises the mean
    assert result.curve[0] == pytest.approx(float(errors.mean()))
    assert result.curve[-1] < 0.1 * result.curve[0]


def test_random_confidence_has_positive_ause_close_to_the_flat_reference(errors):
    g = torch.Generator().manual_seed(1)
    result = sparsification(errors, torch.rand(errors.shape, generator=g))
    assert result.ause > 0.5 * result.ause_random > 0
    assert result.ause == pytest.approx(result.ause_random, rel=0.1)
    np.testing.assert_allclose(result.random, float(errors.mean()))


def test_a_noisy_but_informative_confidence_lies_in_between(errors):
    g = torch.Generator().manual_seed(2)
    confidence = -(errors + 2 * torch.rand(errors.shape, generator=g))
    value = ause(errors, confidence)
    random_value = sparsification(errors, confidence).ause_random
    assert 0 < value < 0.5 * random_value
    # the inverse ordering (trusting the worst pixels) is worse than random
    assert ause(errors, errors) > random_value


def test_curve_arithmetic_on_a_small_example():
    errors = torch.tensor([4.0, 1.0, 3.0, 2.0])
    confidence = torch.tensor([0.1, 0.9, 0.2, 0.8])  # perfect order
    curve = sparsification_curve(errors, confidence, fractions=[0.0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(curve, [2.5, 2.0, 1.5, 1.0])
    swapped = sparsification_curve(errors, torch.tensor([0.9, 0.1, 0.2, 0.8]), fractions=[0.0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(swapped, [2.5, 3.0, 3.0, 4.0])
    r = sparsification(errors, torch.tensor([0.9, 0.1, 0.2, 0.8]), fractions=[0.0, 0.25, 0.5, 0.75])
    # oracle (2.5, 2, 1.5, 1): gaps (0, 1, 1.5, 3), trapezoids of width 0.25
    assert r.ause == pytest.approx(0.25 * ((0 + 1.0) + (1.0 + 1.5) + (1.5 + 3.0)) / 2)


def test_mask_non_finite_and_normalisation(errors):
    confidence = -errors.clone()
    mask = torch.ones_like(errors, dtype=torch.bool)
    mask[:10] = False
    errors_nan = errors.clone()
    errors_nan[10, :5] = float("nan")
    result = sparsification(errors_nan, confidence, mask=mask)
    assert result.n_pixels == int(mask.sum()) - 5
    norm = sparsification(errors * 7, torch.rand(errors.shape), normalise=True)
    assert norm.curve[0] == pytest.approx(1.0)
    with pytest.raises(DataError, match="same number"):
        sparsification(errors, confidence[:5])
    with pytest.raises(DataError, match="fractions"):
        sparsification_curve(errors, confidence, fractions=[0.0, 1.0])


def test_render_sparsification_has_labels():
    errors = torch.rand(500) * 5
    curves = {"model": sparsification(errors, -errors), "random": sparsification(errors, torch.rand(500))}
    fig = render_sparsification(curves)
    ax = fig.axes[0]
    assert "[mm]" in ax.get_ylabel() and "%" in ax.get_xlabel() and ax.get_title()
    assert any("AUSE" in t.get_text() for t in ax.get_legend().get_texts())


def test_evaluate_reports_ause_and_filters_fusion_by_confidence(tmp_path):
    """A model trained with a confidence head: ``deltaz evaluate`` writes its sparsification curve, AUSE and
    ``figures/sparsification.png``, and ``--fusion-conf-thresh`` thins its fused point cloud."""
    import json

    from _tiny_scans import make_dataset
    from deltaz.apps.cli import main as cli_main
    from deltaz.engine.config import TrainConfig
    from deltaz.engine.train import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root = make_dataset(tmp_path / "data", n_scans=2, n_views=4, initial=True)
        cfg = TrainConfig(data_root=str(root), batch_size=2, num_views=2, val_split=0.5, split="random", max_steps=3,
                          lr=1e-2, base_channel=4, unet_depth=2, out_confidence=True, device="cpu",
                          checkpoint_dir=str(tmp_path / "ck"), log_dir=str(tmp_path / "logs"), progress=False,
                          image_log_every=0)
        checkpoint = train(cfg)["last_checkpoint"]
        outs = {}
        for name, extra in (("plain", []), ("filtered", ["--fusion-conf-thresh", "0.0"]),
                            ("strict", ["--fusion-conf-thresh", "0.9999"])):
            out = tmp_path / name
            assert cli_main(["evaluate", "--checkpoint", checkpoint, "--data-root", str(root), "--split", "val",
                             "--baselines", "none", "--num-src-views", "2", "--out", str(out), "--no-progress",
                             *extra]) == 0
            outs[name] = json.loads((out / "metrics.json").read_text())
    finally:
        torch.set_num_threads(threads)
    conf = outs["plain"]["confidence"]
    assert conf["ause_mm"] >= 0 and conf["ause_random_mm"] >= 0 and conf["n_pixels"] > 100
    assert len(conf["curve"]) == len(conf["oracle"]) == len(conf["fractions"])
    assert (tmp_path / "plain" / "figures" / "sparsification.png").is_file()
    assert "AUSE" in (tmp_path / "plain" / "metrics.md").read_text()

    def n_points(result):
        return next(r["n_pred"] for r in result["pointclouds"] if r["method"] == "deltaz" and r["scan"] == "all")

    assert n_points(outs["filtered"]) == n_points(outs["plain"])  # every confidence is > 0
    assert n_points(outs["strict"]) < n_points(outs["plain"])  # b >= 0.01 mm: confidence < 0.991


def _half_noisy(seed: int, B: int = 4, H: int = 32, W: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """A toy whose error is predictable from the input: ``(depth_init, depth_gt)`` (B, H, W) mm, a smooth
    surface at 600–800 mm; one half of each view (left or right at random) carries 6 mm noise, the other none."""
    g = torch.Generator().manual_seed(seed)
    gt = 600 + 200 * torch.rand(B, 1, 1, generator=g) + 5 * torch.randn(B, H, W, generator=g).cumsum(-1) / W
    noisy = (torch.arange(W) >= W // 2).expand(B, H, W) ^ (torch.rand(B, 1, 1, generator=g) < 0.5)
    return gt + torch.where(noisy, 6 * torch.randn(B, H, W, generator=g), torch.zeros_like(gt)), gt


def _toy_ause_ratio(start_b_mm: float | None, steps: int = 40) -> float:
    """AUSE / random AUSE on a fresh toy batch after ``steps`` Adam steps (lr 1e-3, ``deltaz train``'s
    default confidence weight) of a tiny U-Net; ``start_b_mm`` shifts the head's bias so that b starts there."""
    torch.manual_seed(0)
    model = DeltaZUnet(in_channels=1, base_channel=4, depth=2, out_confidence=True)
    if start_b_mm is not None:
        with torch.no_grad():
            model.head.bias[1] = float(np.log(start_b_mm)) - LOG_B_INIT
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    weights = LossWeights(confidence=DEFAULT_CONFIDENCE_WEIGHT)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for step in range(steps):
            depth_init, gt = _half_noisy(step)
            out = refine(model, depth_init)
            total, _ = compute_losses(out["depth_refined"], out["delta_z"], depth_init, gt, None, weights,
                                      log_b=out["log_b"])
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
        depth_init, gt = _half_noisy(1000)
        with torch.no_grad():
            out = refine(model.eval(), depth_init)
    finally:
        torch.set_num_threads(threads)
    result = sparsification(out["depth_refined"] - gt, out["confidence"])
    return result.ause / result.ause_random


def test_a_briefly_trained_head_ranks_predictable_errors_better_than_half_of_random():
    """The head starts at b ≈ 1 mm, the errors' scale: 40 steps suffice to rank the noisy half last."""
    assert _toy_ause_ratio(None) <= 0.5


def test_a_head_started_far_above_the_errors_ranks_them_worse_than_random():
    """The seed's bug, kept as a warning: b started at the depth range's scale (here 50 mm ≫ the 6 mm noise), the
    NLL's gradient on log b is ≈ 1 at every pixel, the head lowers b fastest where its features are largest
    (the noisy half), and after the same 40 steps it trusts the worst pixels most."""
    assert _toy_ause_ratio(50.0) > 1.0
