"""Exercises of ``07_evaluation``: the numbers of the metrics table, over the pixels they are defined on."""

from __future__ import annotations

import torch

from deltaz.course.solutions.base import Case, Exercise

__all__ = ["EXERCISES", "mae_covered", "harm_pct", "mae_good"]


def mae_covered(depth: torch.Tensor, depth_init: torch.Tensor, gt: torch.Tensor) -> float:
    """MAE (mm) over the covered pixels (``gt > 0`` and ``depth_init > 0``); a hole (0) in ``depth`` counts
    as a depth of 0 mm. The table's ``mae_valid_mm``."""
    covered = (gt > 0) & (depth_init > 0)
    return float((depth[covered] - gt[covered]).abs().mean())


def _wrong_mae_covered(depth: torch.Tensor, depth_init: torch.Tensor, gt: torch.Tensor) -> float:
    """Skipping the method's own holes: a method would gain by deleting its worst pixels."""
    covered = (gt > 0) & (depth_init > 0) & (depth > 0)
    return float((depth[covered] - gt[covered]).abs().mean())


def harm_pct(depth: torch.Tensor, depth_init: torch.Tensor, gt: torch.Tensor, harm_mm: float = 1.0) -> float:
    """% of the covered pixels whose error grew by more than ``harm_mm``: ``|d − gt| > |d_init − gt| + harm_mm``."""
    covered = (gt > 0) & (depth_init > 0)
    err, err_in = (depth - gt).abs()[covered], (depth_init - gt).abs()[covered]
    return 100.0 * float((err > err_in + harm_mm).double().mean())


def _wrong_harm_pct(depth: torch.Tensor, depth_init: torch.Tensor, gt: torch.Tensor, harm_mm: float = 1.0) -> float:
    """Dividing by every pixel of the image instead of the covered ones."""
    covered = (gt > 0) & (depth_init > 0)
    harmed = covered & ((depth - gt).abs() > (depth_init - gt).abs() + harm_mm)
    return 100.0 * float(harmed.double().sum()) / gt.numel()


def mae_good(depth: torch.Tensor, depth_init: torch.Tensor, gt: torch.Tensor, good_mm: float = 2.0) -> float:
    """MAE (mm) of ``depth`` over the "good" pixels: covered, and the INPUT already within ``good_mm``
    (``|d_init − gt| < good_mm``). Does the method keep what was right?"""
    good = (gt > 0) & (depth_init > 0) & ((depth_init - gt).abs() < good_mm)
    return float((depth[good] - gt[good]).abs().mean())


def _wrong_mae_good(depth: torch.Tensor, depth_init: torch.Tensor, gt: torch.Tensor, good_mm: float = 2.0) -> float:
    """Choosing the pixels by the OUTPUT's error: that hides every pixel the method made worse."""
    good = (gt > 0) & (depth_init > 0) & ((depth - gt).abs() < good_mm)
    return float((depth[good] - gt[good]).abs().mean())


def _depth_cases() -> list[Case]:
    """Three (depth, depth_init, gt) triples with holes in each, errors of a few mm, some pixels harmed."""
    g = torch.Generator().manual_seed(7)
    cases = []
    for _ in range(3):
        gt = 500 + 50 * torch.rand(24, 32, generator=g, dtype=torch.float64)
        gt[torch.rand(gt.shape, generator=g) < 0.1] = 0  # no ground truth
        init = gt + 3 * torch.randn(gt.shape, generator=g, dtype=torch.float64)
        init[torch.rand(gt.shape, generator=g) < 0.1] = 0  # holes of the input
        depth = gt + 2 * torch.randn(gt.shape, generator=g, dtype=torch.float64)
        depth[torch.rand(gt.shape, generator=g) < 0.05] = 0  # holes of the method
        cases.append(((depth, init, gt), {}))
    return cases


_COMMON = dict(notebook="07_evaluation", cases=_depth_cases, rtol=1e-6, atol=1e-6)

EXERCISES = (
    Exercise(name="mae_covered", reference=mae_covered, mistake=_wrong_mae_covered,
             hint="covered = (gt > 0) & (depth_init > 0); keep the method's holes in (their error is the full gt).",
             **_COMMON),
    Exercise(name="harm_pct", reference=harm_pct, mistake=_wrong_harm_pct,
             hint="compare |depth − gt| with |depth_init − gt| + harm_mm on the covered pixels, and divide by "
                  "their number, in %.", **_COMMON),
    Exercise(name="mae_good", reference=mae_good, mistake=_wrong_mae_good,
             hint="pick the pixels by the INPUT's error (|depth_init − gt| < good_mm), on covered pixels; then "
                  "average the method's |depth − gt| there.", **_COMMON),
)
