"""Exercises of ``08_extensions``: scale-and-shift alignment, the sparsification curve, AUSE from curves.

Each reference equals a package function (``tests/test_solutions_nb08.py`` checks it):
:func:`fit_scale_shift` = ``deltaz.ops.align.align_scale_shift(pred, target, robust=False)``'s ``(scale, shift)``,
:func:`sparsification_curve` = :func:`deltaz.ops.confidence.sparsification_curve` and :func:`ause_from_curves`
= the ``ause`` of :func:`deltaz.ops.confidence.sparsification` computed from its ``curve`` and ``oracle``.
"""

from __future__ import annotations

import numpy as np
import torch

from deltaz.course.solutions.base import Case, Exercise
from deltaz.ops.confidence import sparsification

__all__ = ["EXERCISES", "ause_from_curves", "fit_scale_shift", "sparsification_curve"]


def fit_scale_shift(pred: torch.Tensor, target_sparse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares ``(s, t)`` of ``target ≈ s·pred + t`` over the pixels with both values.

    ``pred (H, W)``: a prediction up to scale and shift (no unit; 0 = no value); ``target_sparse (H, W)``:
    metric depth (mm) at a few pixels, 0 elsewhere. Returns two 0-d float64 tensors (``s`` in mm per
    prediction unit, ``t`` in mm).
    """
    use = torch.isfinite(pred) & (pred != 0) & (target_sparse > 0)
    x, y = pred[use].double(), target_sparse[use].double()
    A = torch.stack([x, torch.ones_like(x)], dim=1)
    s, t = torch.linalg.lstsq(A, y[:, None]).solution[:, 0]
    return s, t


def _wrong_fit_scale_shift(pred: torch.Tensor, target_sparse: torch.Tensor):
    """The typical mistake: fitting over every predicted pixel, so the 0s of the sparse map count as targets."""
    use = torch.isfinite(pred) & (pred != 0)
    x, y = pred[use].double(), target_sparse[use].double()
    A = torch.stack([x, torch.ones_like(x)], dim=1)
    s, t = torch.linalg.lstsq(A, y[:, None]).solution[:, 0]
    return s, t


def _fit_cases() -> list[Case]:
    g = torch.Generator().manual_seed(8)
    cases = []
    for H, W, scale, shift in ((16, 20, 40.0, 650.0), (9, 7, -25.0, 700.0), (32, 40, 3.0, 500.0)):
        pred = torch.randn(H, W, generator=g, dtype=torch.float64)
        pred[0, :3] = 0.0  # no prediction there
        depth = scale * pred + shift + torch.randn(H, W, generator=g, dtype=torch.float64)  # 1 mm noise
        keep = torch.rand(H, W, generator=g) < 0.2
        keep[1, :3] = True  # at least a few points
        cases.append(((pred.float(), torch.where(keep, depth, torch.zeros_like(depth)).float()), {}))
    return cases


def sparsification_curve(errors: torch.Tensor, confidence: torch.Tensor, fractions) -> np.ndarray:
    """Mean |error| of the pixels left after removing the fraction ``f`` of the LEAST confident ones, per ``f``.

    ``errors``, ``confidence``: 1-D tensors of one length N (mm; higher confidence = more trusted; ties go
    in pixel order: sort stably). ``fractions``: increasing values in [0, 1). Removing ``f`` means removing
    the first ``floor(f·N)`` pixels of that order. Returns a float64 array ``(len(fractions),)`` in mm.
    """
    order = torch.argsort(confidence, stable=True)  # least confident first
    ordered = errors.abs().double()[order]
    n = ordered.numel()
    curve = []
    for f in fractions:
        removed = min(int(np.floor(f * n)), n - 1)
        curve.append(float(ordered[removed:].mean()))
    return np.asarray(curve, dtype=np.float64)


def _wrong_sparsification_curve(errors, confidence, fractions) -> np.ndarray:
    """The typical mistake: removing the MOST confident pixels first (sorting the wrong way round)."""
    return sparsification_curve(errors, -confidence, fractions)


def _curve_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    cases = []
    for n, fractions in ((200, np.round(np.arange(0.0, 0.99, 0.02), 4)), (37, np.array([0.0, 0.1, 0.5, 0.9]))):
        errors = torch.rand(n, generator=g, dtype=torch.float64) ** 3 * 10
        confidence = -(errors + 3 * torch.rand(n, generator=g, dtype=torch.float64))  # informative, noisy
        cases.append(((errors, confidence, fractions), {}))
    return cases


def ause_from_curves(curve: np.ndarray, oracle: np.ndarray, fractions: np.ndarray) -> float:
    """AUSE: the area between a sparsification ``curve`` and the ``oracle`` over ``fractions`` (trapezoid rule).

    All three are 1-D arrays of one length (mm, mm, removed fraction). Returns mm (× fraction).
    """
    gap = np.asarray(curve, dtype=np.float64) - np.asarray(oracle, dtype=np.float64)
    widths = np.diff(np.asarray(fractions, dtype=np.float64))
    return float(np.sum((gap[1:] + gap[:-1]) / 2 * widths))


def _wrong_ause_from_curves(curve, oracle, fractions) -> float:
    """The typical mistake: the area under the curve itself, forgetting to subtract the oracle."""
    return ause_from_curves(curve, np.zeros_like(np.asarray(curve, dtype=np.float64)), fractions)


def _ause_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    cases = []
    for n in (300, 50):
        errors = torch.rand(n, generator=g, dtype=torch.float64) ** 2 * 8
        result = sparsification(errors, -(errors + 4 * torch.rand(n, generator=g, dtype=torch.float64)))
        cases.append(((result.curve, result.oracle, result.fractions), {}))
    return cases


EXERCISES = (
    Exercise(
        name="fit_scale_shift",
        notebook="08_extensions",
        reference=fit_scale_shift,
        cases=_fit_cases,
        mistake=_wrong_fit_scale_shift,
        hint="keep only pixels with a prediction (≠ 0) AND a target (> 0); stack the columns [pred, 1] into A "
        "and solve A·[s, t] = target with torch.linalg.lstsq (in float64).",
        rtol=1e-6,
        atol=1e-6,
    ),
    Exercise(
        name="sparsification_curve",
        notebook="08_extensions",
        reference=sparsification_curve,
        cases=_curve_cases,
        mistake=_wrong_sparsification_curve,
        hint="torch.argsort(confidence, stable=True) puts the LEAST confident first; for each f drop the first "
        "floor(f·N) of that order (at most N − 1) and average the |errors| that remain.",
        rtol=1e-9,
        atol=1e-9,
    ),
    Exercise(
        name="ause_from_curves",
        notebook="08_extensions",
        reference=ause_from_curves,
        cases=_ause_cases,
        mistake=_wrong_ause_from_curves,
        hint="the gap is curve − oracle (0 for a perfect confidence); integrate it over the fractions with the "
        "trapezoid rule: Σ (gap[i] + gap[i+1]) / 2 · (f[i+1] − f[i]).",
        rtol=1e-9,
        atol=1e-12,
    ),
)
