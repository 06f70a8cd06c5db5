"""How good is a confidence map? Sparsification curves and AUSE.

A confidence (higher = more trusted; e.g. :func:`deltaz.model.refine`'s ``confidence = 1/(1 + b)``) is
useful when the pixels it trusts least are the ones with the largest errors. The **sparsification
curve** measures that: remove the fraction ``f`` of pixels with the lowest confidence and report the
mean absolute error of the rest, for ``f`` from 0 up to (almost) 1. The **oracle** curve removes pixels by
their true error instead (largest first): no confidence can do better, and it falls fastest. A
confidence that carries no information (random order) keeps the mean error flat on average.

**AUSE** (area under the sparsification error, Ilg et al. 2018, "Uncertainty Estimates and
Multi-Hypotheses Networks for Optical Flow"; Poggi et al. 2020 for depth) is the area between the
curve and the oracle over ``f ∈ [0, f_max]`` (trapezoid rule): 0 for an oracle ordering, about
``∫ (mean − oracle) df`` for a random one; in mm when the errors are in mm (``normalise=True`` divides by
the mean error first, so it is unit-free).

Explained in notebooks/08_extensions.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deltaz.core.errors import DataError

__all__ = [
    "DEFAULT_FRACTIONS",
    "Sparsification",
    "sparsification_curve",
    "sparsification",
    "ause",
]

#: Removed fractions 0, 0.02, …, 0.98 (the last 2 % are never removed: the mean of a handful of
#: pixels says little).
DEFAULT_FRACTIONS = tuple(np.round(np.arange(0.0, 0.99, 0.02), 4).tolist())


def _flatten(errors, confidence, mask) -> tuple[torch.Tensor, torch.Tensor]:
    errors = torch.as_tensor(errors).detach().to(torch.float64).reshape(-1).abs()
    confidence = torch.as_tensor(confidence).detach().to(torch.float64).reshape(-1)
    if errors.shape != confidence.shape:
        raise DataError(
            f"errors and confidence must have the same number of pixels, got {errors.numel()} and {confidence.numel()}"
        )
    keep = torch.isfinite(errors) & torch.isfinite(confidence)
    if mask is not None:
        mask = torch.as_tensor(mask).reshape(-1).bool()
        if mask.shape != errors.shape:
            raise DataError(f"mask must have {errors.numel()} pixels like errors, got {mask.numel()}")
        keep = keep & mask
    errors, confidence = errors[keep], confidence[keep]
    if errors.numel() == 0:
        raise DataError("sparsification: no pixel with a finite error and confidence (check the mask)")
    return errors, confidence


def _check_fractions(fractions) -> np.ndarray:
    fractions = np.asarray(fractions, dtype=np.float64).reshape(-1)
    if fractions.size == 0 or (fractions < 0).any() or (fractions >= 1).any() or (np.diff(fractions) <= 0).any():
        raise DataError(f"fractions must be increasing values in [0, 1), got {fractions.tolist()}")
    return fractions


def _curve_for_order(errors_in_removal_order: torch.Tensor, fractions: np.ndarray) -> np.ndarray:
    """Mean of the errors left after removing the first ``floor(f·N)`` of the given order."""
    n = errors_in_removal_order.numel()
    cumsum = torch.cat([torch.zeros(1, dtype=torch.float64), errors_in_removal_order.cumsum(0)])
    total = cumsum[-1]
    removed = torch.as_tensor(np.minimum(np.floor(fractions * n).astype(np.int64), n - 1))
    return ((total - cumsum[removed]) / (n - removed).to(torch.float64)).numpy()


def sparsification_curve(errors, confidence, fractions=DEFAULT_FRACTIONS, mask=None) -> np.ndarray:
    """Mean |error| of the pixels left after removing each fraction of the least-confident ones.

    Args:
        errors: per-pixel errors, any shape (their absolute value is used; mm for depth).
        confidence: same number of pixels, higher = more trusted. Ties are removed in pixel order.
        fractions: increasing removed fractions in [0, 1).
        mask: optional bool, pixels to use (non-finite errors/confidences are always left out).
    Returns:
        ``(len(fractions),)`` float64 array, same unit as ``errors``; entry 0 at ``f = 0`` is the mean error.
    """
    fractions = _check_fractions(fractions)
    errors, confidence = _flatten(errors, confidence, mask)
    order = torch.argsort(confidence, stable=True)  # least confident first
    return _curve_for_order(errors[order], fractions)


@dataclass
class Sparsification:
    """Sparsification curves of one confidence map (arrays aligned with ``fractions``, error units)."""

    fractions: np.ndarray
    curve: np.ndarray  #: removing the least confident first
    oracle: np.ndarray  #: removing the largest true errors first (the best possible)
    random: np.ndarray  #: expected curve of a random order: the mean error, flat
    ause: float  #: area between ``curve`` and ``oracle``
    ause_random: float  #: the same area for a random order (the no-information reference)
    n_pixels: int

    def as_dict(self) -> dict:
        return {
            "fractions": self.fractions.tolist(), "curve": self.curve.tolist(), "oracle": self.oracle.tolist(),
            "random": self.random.tolist(), "ause": self.ause, "ause_random": self.ause_random,
            "n_pixels": self.n_pixels,
        }


def sparsification(
    errors, confidence, fractions=DEFAULT_FRACTIONS, mask=None, normalise: bool = False
) -> Sparsification:
    """Curve, oracle, random reference and AUSE of a confidence map (see the module docstring).

    With ``normalise=True`` every curve is divided by the mean error (the value at ``f = 0``), so AUSE is
    unit-free and comparable between data sets with different error levels.
    """
    fractions = _check_fractions(fractions)
    errors, confidence = _flatten(errors, confidence, mask)
    curve = _curve_for_order(errors[torch.argsort(confidence, stable=True)], fractions)
    oracle = _curve_for_order(torch.sort(errors, descending=True).values, fractions)
    random = np.full_like(curve, float(errors.mean()))
    if normalise:
        scale = float(errors.mean()) if float(errors.mean()) > 0 else 1.0
        curve, oracle, random = curve / scale, oracle / scale, random / scale
    return Sparsification(
        fractions=fractions, curve=curve, oracle=oracle, random=random,
        ause=_area(curve - oracle, fractions), ause_random=_area(random - oracle, fractions),
        n_pixels=int(errors.numel()),
    )


def _area(values: np.ndarray, fractions: np.ndarray) -> float:
    if fractions.size < 2:
        return 0.0
    return float(np.sum((values[1:] + values[:-1]) * np.diff(fractions)) / 2.0)


def ause(errors, confidence, fractions=DEFAULT_FRACTIONS, mask=None, normalise: bool = False) -> float:
    """Area between the sparsification curve and the oracle (0 = perfect ordering; error units · fraction)."""
    return sparsification(errors, confidence, fractions, mask, normalise).ause
