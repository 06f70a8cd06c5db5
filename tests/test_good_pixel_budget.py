"""benchmarks/good_pixel_budget.py: the kinds of pixel and the split of gain and good-pixel damage."""

from __future__ import annotations

import pytest
import torch

from _benchmarks import load_benchmark
from deltaz.ops.metrics import depth_metrics, harm_metrics


@pytest.fixture(scope="module")
def budget():
    return load_benchmark("good_pixel_budget")


def step_with_hole() -> torch.Tensor:
    """``(1, 20, 30)`` mm: 600 left of column 15, 700 right of it, a 3×3 hole at rows 4-6, columns 4-6."""
    depth = torch.full((1, 20, 30), 600.0)
    depth[..., 15:] = 700.0
    depth[:, 4:7, 4:7] = 0.0
    return depth


def test_kinds_partition_the_input_pixels_where_their_definitions_say(budget):
    depth = step_with_hole()
    kinds = budget.pixel_kinds(depth)
    assert list(kinds) == list(budget.KINDS)
    stacked = torch.stack(list(kinds.values())).int()
    assert torch.equal(stacked.sum(0), (depth > 0).int())  # each pixel > 0 is exactly one kind; holes none
    edge_cols = kinds["edge"][0].any(0).nonzero().flatten().tolist()
    assert edge_cols == [13, 14, 15, 16]  # within 2 px of the step, on both sides
    hole = kinds["hole"][0]
    assert hole[2:9, 2:9].sum() == 49 - 9 and hole.sum() == 40  # the 2-px ring around the hole, nothing else
    assert not kinds["edge"][0, :, :13].any()  # a hole is not an edge


def test_the_split_adds_up_to_the_mae_and_good_mae_differences(budget):
    g = torch.Generator().manual_seed(0)
    gt = step_with_hole()
    gt[gt == 0] = 650.0
    depth_init = step_with_hole() + torch.randn(1, 20, 30, generator=g) * 3 * (step_with_hole() > 0)
    depth = depth_init + torch.randn(1, 20, 30, generator=g) * 2 * (depth_init > 0)
    part = budget.split(depth, depth_init, gt)
    before, after = depth_metrics(depth_init, gt, mask=depth_init > 0), depth_metrics(depth, gt, mask=depth_init > 0)
    gain = part["sums"][:, 0].sum() / part["covered"]
    assert gain.item() == pytest.approx(before["mae_mm"] - after["mae_mm"], abs=1e-4)
    good = harm_metrics(depth, depth_init, gt)["mae_good_mm"] - harm_metrics(depth_init, depth_init, gt)["mae_good_mm"]
    assert (part["sums"][:, 1].sum() / part["good"]).item() == pytest.approx(good, abs=1e-4)
    assert part["sums"][0, 0] != 0  # the edge kind carries some of it
