"""Exercises of ``09_self_supervision``: which source pixels count, the minimum over sources, the anchor.

Each reference equals what :mod:`deltaz.ops.selfsup` computes (``tests/test_solutions_nb09.py`` checks it):
:func:`source_mask` is the per-source mask of :func:`deltaz.ops.selfsup.photometric_loss_map` (the in-frame and
in-front test of :func:`deltaz.core.geometry.reproject` and its visibility test), :func:`min_over_sources` its
reduction over the sources, and :func:`anchor_loss` is :func:`deltaz.ops.selfsup.anchor_loss`.
"""

from __future__ import annotations

import torch

from deltaz.core.geometry import Z_EPS
from deltaz.course.solutions.base import Case, Exercise

__all__ = ["EXERCISES", "source_mask", "min_over_sources", "anchor_loss"]


def source_mask(uv: torch.Tensor, z_src: torch.Tensor, depth_at_uv: torch.Tensor, src_hw: tuple[int, int],
                tol: float = 0.02) -> torch.Tensor:
    """Where one source view can say something about a reference pixel: ``(B, H, W)`` bool.

    ``uv (B, H, W, 2)``: where each reference pixel lands in the source (px, pixel centres at integers);
    ``z_src (B, H, W)``: its z-depth in the source camera (mm); ``depth_at_uv (B, H, W)``: the source's own
    depth there (mm, 0 = hole); ``src_hw``: the source's ``(H', W')``. A pixel counts when the point is in
    front of the camera (``z_src > 1e-6``), lands inside the image (``−0.5 ≤ u ≤ W' − 0.5`` and
    ``−0.5 ≤ v ≤ H' − 0.5``) and is not hidden: the source's depth is a hole (unknown: visible) or is not in
    front of the point by more than ``tol`` of its depth (``d ≥ (1 − tol)·z_src``).
    """
    Hs, Ws = src_hw
    u, v = uv[..., 0], uv[..., 1]
    inside = (u >= -0.5) & (u <= Ws - 0.5) & (v >= -0.5) & (v <= Hs - 0.5)
    visible = (depth_at_uv <= 0) | (depth_at_uv >= (1.0 - tol) * z_src)
    return (z_src > Z_EPS) & inside & visible


def _wrong_source_mask(uv, z_src, depth_at_uv, src_hw, tol=0.02):
    """The typical mistake: a hole in the source's depth read as an occluder (depth 0 is "in front")."""
    Hs, Ws = src_hw
    u, v = uv[..., 0], uv[..., 1]
    inside = (u >= -0.5) & (u <= Ws - 0.5) & (v >= -0.5) & (v <= Hs - 0.5)
    return (z_src > Z_EPS) & inside & (depth_at_uv >= (1.0 - tol) * z_src)


def _mask_cases() -> list[Case]:
    g = torch.Generator().manual_seed(9)
    cases = []
    for B, H, W, Hs, Ws in ((1, 6, 8, 6, 8), (2, 5, 7, 12, 16)):
        uv = torch.rand(B, H, W, 2, generator=g, dtype=torch.float64) * torch.tensor([Ws + 2.0, Hs + 2.0]) - 1.5
        uv[0, 0, :4] = torch.tensor([[-0.5, 0.0], [Ws - 0.5, 1.0], [-0.51, 1.0], [1.0, Hs - 0.49]], dtype=torch.float64)
        z = 600 + 100 * torch.rand(B, H, W, generator=g, dtype=torch.float64)
        z[0, 1, :2] = torch.tensor([-5.0, 0.0], dtype=torch.float64)  # behind the camera, on its plane
        d = z * (0.9 + 0.2 * torch.rand(B, H, W, generator=g, dtype=torch.float64))  # some 2 % in front: hidden
        d[torch.rand(B, H, W, generator=g) < 0.25] = 0.0  # holes of the source's depth
        cases.append(((uv, z, d, (Hs, Ws)), {}))
    cases.append(((uv, z, d, (Hs, Ws)), {"tol": 0.08}))
    return cases


def min_over_sources(errors: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel minimum of the photometric errors over the sources that count.

    ``errors (B, S, H, W)``: each source's error at each reference pixel (any value where it does not count);
    ``valid (B, S, H, W)`` bool: where it counts. Returns ``error (B, H, W)``, the smallest error among the
    valid sources (0 where no source is valid), and ``keep (B, H, W)`` bool: at least one source is valid.
    """
    masked = torch.where(valid, errors, torch.full_like(errors, float("inf")))
    best = masked.min(dim=1).values
    keep = valid.any(dim=1)
    return torch.where(keep, best, torch.zeros_like(best)), keep


def _wrong_min_over_sources(errors, valid):
    """The typical mistake: the sources that do not count are set to 0 before the minimum, so they win."""
    best = torch.where(valid, errors, torch.zeros_like(errors)).min(dim=1).values
    keep = valid.any(dim=1)
    return torch.where(keep, best, torch.zeros_like(best)), keep


def _min_cases() -> list[Case]:
    g = torch.Generator().manual_seed(10)
    cases = []
    for B, S, H, W in ((1, 2, 4, 5), (2, 4, 6, 7), (1, 1, 3, 3)):
        errors = 0.5 * torch.rand(B, S, H, W, generator=g, dtype=torch.float64)
        valid = torch.rand(B, S, H, W, generator=g) < 0.6
        valid[0, :, 0, 0] = False  # no source sees this pixel
        errors[~valid] = float("nan") if S > 1 else float("inf")  # whatever the loop left there
        cases.append(((errors, valid), {}))
    return cases


def anchor_loss(depth_refined: torch.Tensor, depth_init: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
    """``mean over the pixels with an input depth of c·|d_ref − d_init| / d_init`` (dimensionless).

    All ``(B, H, W)``: depths in mm (``depth_init`` 0 = hole, those pixels do not count), ``confidence`` in
    [0, 1]. The mean divides by the number of input pixels, so a low confidence weakens the anchor.
    """
    has_input = torch.isfinite(depth_init) & (depth_init > 0)
    safe = torch.where(has_input, depth_init, torch.ones_like(depth_init))
    term = confidence.clamp(0, 1) * (depth_refined - safe).abs() / safe
    return torch.where(has_input, term, torch.zeros_like(term)).sum() / has_input.sum().clamp(min=1)


def _wrong_anchor_loss(depth_refined, depth_init, confidence):
    """The typical mistake: a confidence-weighted mean (Σ c·r / Σ c), which cancels a uniform confidence."""
    has_input = torch.isfinite(depth_init) & (depth_init > 0)
    safe = torch.where(has_input, depth_init, torch.ones_like(depth_init))
    c = torch.where(has_input, confidence.clamp(0, 1), torch.zeros_like(confidence))
    return (c * (depth_refined - safe).abs() / safe).sum() / c.sum().clamp(min=1e-12)


def _anchor_cases() -> list[Case]:
    g = torch.Generator().manual_seed(11)
    cases = []
    for B, H, W, uniform in ((1, 4, 6, 0.5), (2, 5, 5, None), (1, 8, 8, None)):
        init = 600 + 200 * torch.rand(B, H, W, generator=g, dtype=torch.float64)
        init[torch.rand(B, H, W, generator=g) < 0.2] = 0.0  # holes of the input
        refined = init + 10 * torch.randn(B, H, W, generator=g, dtype=torch.float64)
        conf = (torch.full_like(init, uniform) if uniform is not None
                else torch.rand(B, H, W, generator=g, dtype=torch.float64))
        cases.append(((refined, init, conf), {}))
    return cases


EXERCISES = (
    Exercise(
        name="source_mask",
        notebook="09_self_supervision",
        reference=source_mask,
        cases=_mask_cases,
        mistake=_wrong_source_mask,
        hint="three tests, all True: z_src > 1e-6; u in [−0.5, W'−0.5] and v in [−0.5, H'−0.5]; and visible, "
        "which is (depth_at_uv <= 0) OR (depth_at_uv >= (1 − tol)·z_src): a hole says nothing, so it hides nothing.",
        rtol=0.0,
        atol=0.0,
    ),
    Exercise(
        name="min_over_sources",
        notebook="09_self_supervision",
        reference=min_over_sources,
        cases=_min_cases,
        mistake=_wrong_min_over_sources,
        hint="replace the errors of invalid sources by +inf (torch.where), take .min(dim=1).values; keep = "
        "valid.any(dim=1); where keep is False return 0 instead of inf.",
        rtol=0.0,
        atol=0.0,
    ),
    Exercise(
        name="anchor_loss",
        notebook="09_self_supervision",
        reference=anchor_loss,
        cases=_anchor_cases,
        mistake=_wrong_anchor_loss,
        hint="r = |d_ref − d_init| / d_init on the pixels with d_init > 0; multiply by the confidence; sum and "
        "divide by the NUMBER of those pixels (not by the sum of the confidences).",
        rtol=1e-9,
        atol=1e-12,
    ),
)
