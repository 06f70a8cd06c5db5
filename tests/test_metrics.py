"""deltaz.ops.metrics: hand-computed depth metrics, exact accumulation, MVSNet's geometric check."""

from __future__ import annotations

import math

import pytest
import torch

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.ops.metrics import MetricAccumulator, consistency_rate, depth_metrics, geometric_check, multiview_consistency

# gt has 3 evaluated pixels (the 0 is not evaluated); pred's 0 at gt=400 is a hole counted as error 400.
GT = torch.tensor([[100.0, 200.0], [0.0, 400.0]])
PRED = torch.tensor([[101.0, 197.0], [50.0, 0.0]])


def test_depth_metrics_hand_computed():
    m = depth_metrics(PRED, GT)
    # |err| = 1, 3, 400 (hole: error = gt) over n = 3 pixels.
    assert m["n_pixels"] == 3
    assert m["mae_mm"] == pytest.approx((1 + 3 + 400) / 3)
    assert m["rmse_mm"] == pytest.approx(math.sqrt((1 + 9 + 160000) / 3))
    assert m["abs_rel"] == pytest.approx((1 / 100 + 3 / 200 + 400 / 400) / 3)
    assert m["acc_1mm"] == pytest.approx(100 / 3)  # only |1| <= 1
    assert m["acc_2mm"] == pytest.approx(100 / 3)
    assert m["acc_4mm"] == pytest.approx(200 / 3)  # 1 and 3
    assert m["err_2mm"] == pytest.approx(200 / 3)  # 3 and 400 exceed 2 mm
    assert m["err_4mm"] == pytest.approx(100 / 3)
    assert m["err_8mm"] == pytest.approx(100 / 3)
    assert m["delta_1_25"] == pytest.approx(200 / 3)  # 101/100 and 200/197 pass, the hole fails
    assert m["hole_pct"] == pytest.approx(100 / 3)


def test_depth_metrics_mask_and_batch_shapes():
    mask = torch.tensor([[True, False], [True, False]])
    m = depth_metrics(PRED, GT, mask)  # only pixel (0, 0): error 1
    assert m["n_pixels"] == 1 and m["mae_mm"] == pytest.approx(1.0) and m["hole_pct"] == 0.0
    batched = depth_metrics(PRED.expand(4, 2, 2), GT.expand(4, 2, 2))
    assert batched["n_pixels"] == 12 and batched["mae_mm"] == pytest.approx(404 / 3)


def test_accumulator_is_pixel_weighted_not_mean_of_means():
    # Batch A: 1 pixel with error 10. Batch B: 3 pixels with error 2.
    acc = MetricAccumulator()
    acc.update(torch.tensor([[110.0]]), torch.tensor([[100.0]]))
    acc.update(torch.tensor([[102.0, 102.0, 102.0]]), torch.tensor([[100.0, 100.0, 100.0]]))
    r = acc.result()
    assert r["n_pixels"] == 4
    assert r["mae_mm"] == pytest.approx((10 + 3 * 2) / 4)  # 4.0, whereas the mean of means is 6.0
    assert r["acc_2mm"] == pytest.approx(75.0)
    # merge() gives the same as one accumulator over everything
    a, b = MetricAccumulator(), MetricAccumulator()
    a.update(torch.tensor([[110.0]]), torch.tensor([[100.0]]))
    b.update(torch.tensor([[102.0, 102.0, 102.0]]), torch.tensor([[100.0, 100.0, 100.0]]))
    assert a.merge(b).result() == r


def test_empty_and_bad_input():
    r = depth_metrics(torch.ones(2, 2), torch.zeros(2, 2))
    assert r["n_pixels"] == 0 and math.isnan(r["mae_mm"])
    with pytest.raises(DataError, match="same shape"):
        depth_metrics(torch.ones(2, 2), torch.ones(2, 3))
    with pytest.raises(DataError, match="NaN"):
        depth_metrics(torch.tensor([[float("nan")]]), torch.tensor([[1.0]]))


# ---------------------------------------------------------------- geometric check on a hand-made scene
# A fronto-parallel plane Z = 100 mm seen by two 5x5 cameras with f = 10, c = (2, 2): the reference at
# the origin, the source 10 mm to its right (E_src = [I | -C], C = (10, 0, 0)). Every depth is 100, and
# reference pixel u lands at source column u_src = u - f*b/Z = u - 1, so reference column 0 falls out
# of the source frame (u_src = -1 < -0.5): 20 of 25 pixels can be checked.


def two_view_plane():
    K = torch.tensor([[[10.0, 0, 2], [0, 10, 2], [0, 0, 1]]], dtype=torch.float64)
    E_ref = torch.cat([torch.eye(3), torch.zeros(3, 1)], 1)[None].double()
    E_src = torch.cat([torch.eye(3), torch.tensor([[-10.0], [0], [0]])], 1)[None].double()
    depth = torch.full((1, 5, 5), 100.0, dtype=torch.float64)
    return depth, K, E_ref, depth.clone(), K.clone(), E_src


def one_source(K_ref, E_ref, depth_src, K_src, E_src):
    """The multiview of one source view (``S = 1``) from its ``(B, ...)`` tensors."""
    return MultiView(K_ref, E_ref, depth_src[:, None], K_src[:, None], E_src[:, None])


def test_geometric_check_exact_plane():
    depth_ref, K, E_ref, depth_src, K_src, E_src = two_view_plane()
    check = geometric_check(depth_ref, one_source(K, E_ref, depth_src, K_src, E_src))
    expected = torch.ones(1, 5, 5, dtype=torch.bool)
    expected[..., 0] = False
    assert torch.equal(check.consistent, expected) and torch.equal(check.valid, expected)
    assert torch.allclose(check.depth_reproj[expected], torch.tensor(100.0, dtype=torch.float64))
    assert check.pix_dist.max() < 1e-9 and check.rel_depth_diff.max() < 1e-12
    mask, rate = consistency_rate(depth_ref, one_source(K, E_ref, depth_src, K_src, E_src))
    assert torch.equal(mask, expected) and rate == pytest.approx(80.0)


def test_geometric_check_thresholds_hand_computed():
    depth_ref, K, E_ref, depth_src, K_src, E_src = two_view_plane()
    # Pixel (v=2, u=2) moved to 100.5 mm (0.5 % off): X = (0, 0, 100.5) lands at u_src = 2 - 100/100.5
    # = 1.004975; the source point there is (0.04975, 0, 100) in the world, back at u' = 2.004975 with
    # depth 100: pix_dist = 0.004975 px, rel = 0.5/100.5 = 0.4975 % < 1 %  -> consistent.
    depth_ref[0, 2, 2] = 100.5
    check = geometric_check(depth_ref, one_source(K, E_ref, depth_src, K_src, E_src))
    assert check.consistent[0, 2, 2]
    assert check.pix_dist[0, 2, 2].item() == pytest.approx(1 - 100 / 100.5, rel=1e-6)
    assert check.rel_depth_diff[0, 2, 2].item() == pytest.approx(0.5 / 100.5, rel=1e-6)
    assert check.depth_reproj[0, 2, 2].item() == pytest.approx(100.0)
    # The pixel test is active: a threshold below 0.004975 px rejects it.
    assert not geometric_check(depth_ref, one_source(K, E_ref, depth_src, K_src, E_src), pix_thresh=0.004)[0][0, 2, 2]
    # 2 mm off: rel = 2/102 = 1.96 % > 1 %  -> inconsistent but still valid.
    depth_ref[0, 2, 2] = 102.0
    check = geometric_check(depth_ref, one_source(K, E_ref, depth_src, K_src, E_src))
    assert check.valid[0, 2, 2] and not check.consistent[0, 2, 2]
    assert check.rel_depth_diff[0, 2, 2].item() == pytest.approx(2 / 102, rel=1e-6)


def test_source_holes_and_reference_holes_are_never_consistent():
    depth_ref, K, E_ref, depth_src, K_src, E_src = two_view_plane()
    depth_src[0, 2, 1] = 0.0  # reference pixel (2, 2) lands exactly on this source hole
    depth_ref[0, 4, 4] = 0.0  # reference hole
    check = geometric_check(depth_ref, one_source(K, E_ref, depth_src, K_src, E_src))
    assert not check.valid[0, 2, 2] and not check.consistent[0, 2, 2]
    assert not check.valid[0, 4, 4]
    assert torch.isfinite(check.depth_reproj).all() and torch.isfinite(check.pix_dist).all()
    assert int(check.consistent.sum()) == 20 - 2
    # valid_src (e.g. low confidence) acts like a hole
    depth_ref, K, E_ref, depth_src, K_src, E_src = two_view_plane()
    valid_src = torch.ones_like(depth_src, dtype=torch.bool)
    valid_src[0, 2, 1] = False
    assert not geometric_check(depth_ref, one_source(K, E_ref, depth_src, K_src, E_src), valid_src=valid_src[:, None]).consistent[0, 2, 2]


def test_multiview_average_and_min_views():
    depth_ref, K, E_ref, depth_src, K_src, E_src = two_view_plane()
    depth_ref[0, 2, 2] = 100.5
    # Two source views: the same camera twice, the second one's depth map is empty.
    src = torch.stack([depth_src, torch.zeros_like(depth_src)], 1)
    two = MultiView(K, E_ref, src, K_src[:, None].expand(1, 2, 3, 3), E_src[:, None].expand(1, 2, 3, 4))
    result = multiview_consistency(depth_ref, two)
    assert result.n_consistent[0, 2, 2] == 1
    assert result.depth_averaged[0, 2, 2].item() == pytest.approx((100.5 + 100.0) / 2)
    assert result.n_consistent[0, 2, 0] == 0 and result.depth_averaged[0, 2, 0] == 100.0  # unchanged
    _, rate = consistency_rate(depth_ref, two, min_views=2)
    assert rate == 0.0
    with pytest.raises(DataError, match="K_src"):
        multiview_consistency(depth_ref, MultiView(K, E_ref, src, K_src, E_src))


def test_no_source_views_means_nothing_is_consistent():
    depth_ref, K, E_ref, *_ = two_view_plane()
    none = torch.zeros(1, 0, 5, 5, dtype=torch.float64)
    result = multiview_consistency(depth_ref, MultiView(K, E_ref, none, none[..., :3, :3], none[..., :3, :4]))
    assert result.n_consistent.sum() == 0 and torch.equal(result.depth_averaged, depth_ref)


def test_harm_metrics_hand_computed():
    from deltaz.ops.metrics import HarmAccumulator, harm_metrics

    gt = torch.tensor([[100.0, 100.0, 100.0, 100.0, 100.0, 0.0]])
    init = torch.tensor([[101.0, 100.5, 110.0, 0.0, 100.0, 90.0]])  # (0, 3) is an input hole, (0, 5) has no gt
    pred = torch.tensor([[102.5, 101.0, 101.0, 100.0, 0.0, 50.0]])
    m = harm_metrics(pred, init, gt)
    # covered: columns 0, 1, 2, 4. |init - gt| = 1, 0.5, 10, 0; |pred - gt| = 2.5, 1, 1, 100 (a hole: error = gt)
    assert m["n_covered"] == 4
    assert m["good_pct"] == pytest.approx(75.0)  # columns 0, 1, 4 are within 2 mm
    assert m["mae_good_mm"] == pytest.approx((2.5 + 1.0 + 100.0) / 3)
    # column 0 got 1.5 mm worse (counts), column 1 0.5 mm worse (does not), column 4 became a hole (counts)
    assert m["harm_pct"] == pytest.approx(50.0)
    assert m["help_pct"] == pytest.approx(25.0)  # column 2: 10 -> 1 mm
    # the input itself: no harm, and its own error on the good pixels
    same = harm_metrics(init, init, gt)
    assert same["harm_pct"] == 0.0 and same["mae_good_mm"] == pytest.approx(1.5 / 3)
    # a mask restricts further; the accumulator is pixel-weighted and merges
    assert harm_metrics(pred, init, gt, (torch.arange(6) < 2).expand(1, 6))["n_covered"] == 2
    acc = HarmAccumulator().update(pred[:, :2], init[:, :2], gt[:, :2])
    acc.merge(HarmAccumulator().update(pred[:, 2:], init[:, 2:], gt[:, 2:]))
    assert acc.result() == m
    empty = harm_metrics(pred, torch.zeros_like(init), gt)
    assert empty["n_covered"] == 0 and math.isnan(empty["harm_pct"]) and math.isnan(empty["mae_good_mm"])
    with pytest.raises(DataError, match="init and gt"):
        harm_metrics(pred, init[:, :3], gt)
