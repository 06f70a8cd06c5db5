"""Depth metrics and MVSNet's multi-view geometric-consistency check.

Depth metrics (:func:`depth_metrics`, :class:`MetricAccumulator`) are computed over the pixels with
ground truth (``gt > 0``, intersected with an optional ``mask``). A **hole in the prediction**
(``pred == 0`` where ``gt > 0``) is *not* skipped: it counts as a prediction of 0 mm, so its absolute
error is ``gt`` (hundreds of mm on DTU), its relative error 1 and it fails every accuracy and
δ-threshold. A method therefore cannot improve its score by deleting the pixels it is unsure of;
``hole_pct`` reports how many evaluated pixels were holes. All lengths in mm, rates in percent (0–100).

The geometric check (:func:`geometric_check`) is MVSNet's fusion filter: a reference pixel with
its depth is reprojected into a source view, the source depth is read there, that source point is
projected back into the reference view, and the pixel is consistent with that source when the
round trip lands within ``pix_thresh`` pixels and its depth differs by less than
``rel_depth_thresh`` (relative). :func:`multiview_consistency` runs it against several source views
and :func:`consistency_rate` summarises it. The fusion step (``deltaz.ops.pointcloud``) and the
multi-view baseline (``deltaz.ops.baselines``) reuse the same functions.

Do-no-harm figures (:func:`harm_metrics`, :class:`HarmAccumulator`) compare a method's output with its
*input* on the "covered" pixels (ground truth and an input depth): ``mae_good_mm`` is the output's MAE
over the covered pixels the input already got right (``|depth_init − gt| < 2 mm``), ``harm_pct`` the share
of covered pixels the method made worse by more than 1 mm (docs/DESIGN.md §6).

Explained in notebooks (evaluation lesson).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from deltaz.core.batch import MultiView
from deltaz.core.errors import ConfigError, DataError
from deltaz.core.geometry import (
    Z_EPS,
    backproject_depth,
    camera_to_world,
    pixel_grid,
    project_points,
    reproject,
    sample_pixels,
    world_to_camera,
)

__all__ = [
    "ACC_THRESHOLDS_MM",
    "ERR_THRESHOLDS_MM",
    "MetricAccumulator",
    "depth_metrics",
    "GOOD_MM",
    "HARM_MM",
    "HarmAccumulator",
    "harm_metrics",
    "GeometricCheck",
    "geometric_check",
    "MultiViewConsistency",
    "multiview_consistency",
    "consistency_rate",
]

#: ``acc_{k}mm`` = % of evaluated pixels with ``|pred − gt| <= k`` mm.
ACC_THRESHOLDS_MM = (1, 2, 4)
#: ``err_{k}mm`` = % of evaluated pixels with ``|pred − gt| > k`` mm (error rates).
ERR_THRESHOLDS_MM = (2, 4, 8)
#: ``delta_1_25`` = % of pixels with ``max(pred/gt, gt/pred) < 1.25`` (a hole never passes).
DELTA_THRESHOLD = 1.25

_SUM_KEYS = (
    ["n_pixels", "n_holes", "sum_abs", "sum_sq", "sum_abs_rel", "n_delta"]
    + [f"n_acc_{k}mm" for k in ACC_THRESHOLDS_MM]
    + [f"n_err_{k}mm" for k in ERR_THRESHOLDS_MM]
)


def _evaluation_mask(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if pred.shape != gt.shape:
        raise DataError(f"pred and gt must have the same shape, got pred {tuple(pred.shape)} and gt {tuple(gt.shape)}")
    if mask is not None and mask.shape != gt.shape:
        raise DataError(f"mask must have gt's shape {tuple(gt.shape)}, got {tuple(mask.shape)}")
    valid = gt > 0
    if mask is not None:
        valid = valid & mask.bool()
    if not torch.isfinite(pred[valid]).all():
        raise DataError("pred holds NaN or inf at evaluated pixels; depths must be finite (0 = hole)")
    return valid


class MetricAccumulator:
    """Sums the pixel counts behind :func:`depth_metrics` over batches, views or scans.

    ``result()`` divides the sums once, so it equals :func:`depth_metrics` of all pixels seen at once
    (pixel-weighted, not a mean of per-batch means). Use one accumulator per table row (per scan,
    overall) and :meth:`merge` to combine rows.

    >>> acc = MetricAccumulator()
    >>> for pred, gt in batches: acc.update(pred, gt)   # doctest: +SKIP
    >>> acc.result()["mae_mm"]                          # doctest: +SKIP
    """

    def __init__(self) -> None:
        self.sums: dict[str, float] = {key: 0.0 for key in _SUM_KEYS}

    @property
    def n_pixels(self) -> int:
        return int(self.sums["n_pixels"])

    @torch.no_grad()
    def update(self, pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> "MetricAccumulator":
        """Add the pixels of ``pred``/``gt`` (any equal shapes, mm) where ``gt > 0`` (and ``mask``)."""
        valid = _evaluation_mask(pred, gt, mask)
        p = pred[valid].double()
        g = gt[valid].double()
        err = (p - g).abs()
        hole = p <= 0
        ratio = torch.maximum(p / g, g / p.clamp_min(1e-12))
        s = self.sums
        s["n_pixels"] += int(g.numel())
        s["n_holes"] += int(hole.sum())
        s["sum_abs"] += float(err.sum())
        s["sum_sq"] += float((err * err).sum())
        s["sum_abs_rel"] += float((err / g).sum())
        s["n_delta"] += int(((ratio < DELTA_THRESHOLD) & ~hole).sum())
        for k in ACC_THRESHOLDS_MM:
            s[f"n_acc_{k}mm"] += int((err <= k).sum())
        for k in ERR_THRESHOLDS_MM:
            s[f"n_err_{k}mm"] += int((err > k).sum())
        return self

    def merge(self, other: "MetricAccumulator") -> "MetricAccumulator":
        """Add another accumulator's pixels to this one (in place); returns ``self``."""
        for key in _SUM_KEYS:
            self.sums[key] += other.sums[key]
        return self

    def result(self) -> dict[str, float]:
        """The metrics of every pixel added so far (see :func:`depth_metrics`); NaN when no pixel was added."""
        s = self.sums
        n = s["n_pixels"]
        out: dict[str, float] = {}
        if n == 0:
            nan = float("nan")
            out.update(mae_mm=nan, rmse_mm=nan, abs_rel=nan)
            out.update({f"acc_{k}mm": nan for k in ACC_THRESHOLDS_MM})
            out.update({f"err_{k}mm": nan for k in ERR_THRESHOLDS_MM})
            out.update(delta_1_25=nan, hole_pct=nan, n_pixels=0)
            return out
        out["mae_mm"] = s["sum_abs"] / n
        out["rmse_mm"] = math.sqrt(s["sum_sq"] / n)
        out["abs_rel"] = s["sum_abs_rel"] / n
        for k in ACC_THRESHOLDS_MM:
            out[f"acc_{k}mm"] = 100.0 * s[f"n_acc_{k}mm"] / n
        for k in ERR_THRESHOLDS_MM:
            out[f"err_{k}mm"] = 100.0 * s[f"n_err_{k}mm"] / n
        out["delta_1_25"] = 100.0 * s["n_delta"] / n
        out["hole_pct"] = 100.0 * s["n_holes"] / n
        out["n_pixels"] = int(n)
        return out


def depth_metrics(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, float]:
    """Depth error metrics of ``pred`` against ``gt`` over the pixels with ``gt > 0`` (and ``mask``).

    Args:
        pred: predicted depth, mm, any shape (``(H, W)``, ``(B, H, W)``, …); ``0`` = hole, which is
            evaluated as a prediction of 0 mm (error = gt), not skipped.
        gt: ground-truth depth of the same shape, mm, ``0`` = no ground truth (not evaluated).
        mask: optional bool tensor of the same shape restricting the evaluated pixels further.
    Returns:
        ``mae_mm``, ``rmse_mm`` (mm), ``abs_rel`` (mean ``|err|/gt``, a fraction), ``acc_{1,2,4}mm``
        (% with ``|err| <= k`` mm), ``err_{2,4,8}mm`` (% with ``|err| > k`` mm), ``delta_1_25``
        (% with ``max(pred/gt, gt/pred) < 1.25``), ``hole_pct`` (% of evaluated pixels that are
        holes) as Python floats, and ``n_pixels`` (int). Every value is NaN when no pixel has ground truth.
    """
    return MetricAccumulator().update(pred, gt, mask).result()


# --------------------------------------------------------------------------- do-no-harm

#: An input pixel is "good" when ``|depth_init − gt| < GOOD_MM`` (mm).
GOOD_MM = 2.0
#: A method "harms" a pixel when ``|depth_out − gt| > |depth_init − gt| + HARM_MM`` (mm).
HARM_MM = 1.0

_HARM_KEYS = ("n_covered", "n_good", "sum_abs_good", "n_harm", "n_help")


class HarmAccumulator:
    """Sums the pixel counts behind :func:`harm_metrics` over batches, views or scans (pixel-weighted).

    ``good_mm``/``harm_mm`` are the thresholds (mm) of :func:`harm_metrics`; :meth:`merge` combines rows.
    """

    def __init__(self, good_mm: float = GOOD_MM, harm_mm: float = HARM_MM) -> None:
        if not (good_mm > 0 and harm_mm >= 0):
            raise ConfigError(f"good_mm must be > 0 and harm_mm >= 0 (mm), got good_mm={good_mm}, harm_mm={harm_mm}")
        self.good_mm = float(good_mm)
        self.harm_mm = float(harm_mm)
        self.sums: dict[str, float] = {key: 0.0 for key in _HARM_KEYS}

    @torch.no_grad()
    def update(
        self, pred: torch.Tensor, init: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None
    ) -> "HarmAccumulator":
        """Add the covered pixels (``gt > 0``, ``init > 0`` and ``mask``) of equally shaped mm tensors."""
        if init.shape != gt.shape:
            raise DataError(
                f"init and gt must have the same shape, got init {tuple(init.shape)} and gt {tuple(gt.shape)}"
            )
        covered = _evaluation_mask(pred, gt, mask) & (init > 0)
        if not torch.isfinite(init[covered]).all():
            raise DataError("init holds NaN or inf at evaluated pixels; depths must be finite (0 = hole)")
        g = gt[covered].double()
        err_out = (pred[covered].double() - g).abs()  # a hole in pred is an error of the full gt depth
        err_in = (init[covered].double() - g).abs()
        good = err_in < self.good_mm
        s = self.sums
        s["n_covered"] += int(g.numel())
        s["n_good"] += int(good.sum())
        s["sum_abs_good"] += float(err_out[good].sum())
        s["n_harm"] += int((err_out > err_in + self.harm_mm).sum())
        s["n_help"] += int((err_out < err_in - self.harm_mm).sum())
        return self

    def merge(self, other: "HarmAccumulator") -> "HarmAccumulator":
        """Add another accumulator's pixels to this one (in place); returns ``self``."""
        for key in _HARM_KEYS:
            self.sums[key] += other.sums[key]
        return self

    def result(self) -> dict[str, float]:
        """See :func:`harm_metrics`; NaN where a denominator is 0."""
        s = self.sums
        n, n_good = s["n_covered"], s["n_good"]
        nan = float("nan")
        return {
            "mae_good_mm": s["sum_abs_good"] / n_good if n_good else nan,
            "harm_pct": 100.0 * s["n_harm"] / n if n else nan,
            "help_pct": 100.0 * s["n_help"] / n if n else nan,
            "good_pct": 100.0 * n_good / n if n else nan,
            "n_covered": int(n),
        }


def harm_metrics(
    pred: torch.Tensor,
    init: torch.Tensor,
    gt: torch.Tensor,
    mask: torch.Tensor | None = None,
    good_mm: float = GOOD_MM,
    harm_mm: float = HARM_MM,
) -> dict[str, float]:
    """Do-no-harm figures of a method's output ``pred`` against its input ``init`` (docs/DESIGN.md §6).

    Evaluated on the **covered** pixels: ``gt > 0`` and ``init > 0`` (and ``mask``). A hole in ``pred``
    at a covered pixel counts as a prediction of 0 mm (error = gt), as in :func:`depth_metrics`.

    Args:
        pred, init, gt: equally shaped depths in mm (``0`` = hole / no ground truth).
        mask: optional bool tensor of the same shape restricting the pixels further.
        good_mm: an input pixel is good when ``|init − gt| < good_mm`` (default 2 mm).
        harm_mm: a pixel is harmed when ``|pred − gt| > |init − gt| + harm_mm`` (default 1 mm).
    Returns:
        ``mae_good_mm`` (mm, MAE of ``pred`` over the good covered pixels), ``harm_pct`` (% of covered
        pixels harmed), ``help_pct`` (% improved by more than ``harm_mm``), ``good_pct`` (% of covered
        pixels that are good) and ``n_covered`` (int). NaN when there is nothing to divide by.
    """
    return HarmAccumulator(good_mm, harm_mm).update(pred, init, gt, mask).result()


# --------------------------------------------------------------------------- geometric consistency


class GeometricCheck(NamedTuple):
    """Result of :func:`geometric_check`, every field ``(B, H, W)`` on the reference grid.

    ``consistent``: the pixel passes both thresholds against this source view.
    ``valid``: the test could be made (reference depth > 0, the point lands in front of the source
    camera, the four source pixels around it exist and have depth, and the source point is in front
    of the reference camera); ``consistent`` implies ``valid``.
    ``depth_reproj``: z-depth (mm) in the reference camera of the source's point, 0 where not valid.
    ``pix_dist``: round-trip distance (pixels) and ``rel_depth_diff``: ``|depth_reproj − depth_ref| / depth_ref``;
    both 0 where not valid.
    """

    consistent: torch.Tensor
    valid: torch.Tensor
    depth_reproj: torch.Tensor
    pix_dist: torch.Tensor
    rel_depth_diff: torch.Tensor


def _check_shape(name: str, t: torch.Tensor, ndim: int, tail: tuple[int, ...] = (), want: str = "") -> None:
    """Raise a DataError naming ``name`` unless ``t`` has ``ndim`` dims ending in ``tail``."""
    if t.dim() != ndim or (tail and tuple(t.shape[-len(tail):]) != tail):
        raise DataError(f"{name} must have shape {want}, got {tuple(t.shape)}")


def _check_extrinsics(name: str, E: torch.Tensor, ndim: int) -> None:
    if E.dim() != ndim or tuple(E.shape[-2:]) not in ((3, 4), (4, 4)):
        lead = "B, " if ndim == 3 else "B, S, "
        raise DataError(f"{name} must have shape ({lead}3, 4) or ({lead}4, 4) (world-to-camera), got {tuple(E.shape)}")


def geometric_check(
    depth_ref: torch.Tensor,
    multiview: MultiView,
    source: int = 0,
    pix_thresh: float = 1.0,
    rel_depth_thresh: float = 0.01,
    valid_src: torch.Tensor | None = None,
) -> GeometricCheck:
    """MVSNet's geometric consistency of a reference depth map against ONE source depth map.

    For each reference pixel ``p`` with depth ``d``: ``X = backproject(p, d)`` lands at ``q`` in the
    source view (:func:`deltaz.core.geometry.reproject`); the source's 3D point at ``q`` is read by
    bilinear sampling of the source depth map's world points (:func:`deltaz.core.geometry.sample_pixels`
    on ``camera_to_world(backproject_depth(depth_src))``, zero padding) and projected back into the reference view
    at ``p'`` with z-depth ``d'``. The pixel is consistent when ``|p' − p| < pix_thresh`` pixels and
    ``|d' − d| / d < rel_depth_thresh``. (MVSNet samples the source *depth* and backprojects it at
    ``q``; sampling the points instead agrees at pixel centres and keeps a plane's interpolated point
    on the plane.) A source sample that touches a source hole (or a pixel outside ``valid_src``) is
    not valid, so holes never pass the check.

    Args:
        depth_ref: ``(B, H, W)`` reference z-depth, mm, 0 = no value.
        multiview: :class:`deltaz.core.batch.MultiView` (or its dict form): ``K_ref (B, 3, 3)``,
            ``E_ref (B, 3|4, 4)`` world-to-camera, ``depth_src (B, S, H', W')`` mm (0 = no value),
            ``K_src (B, S, 3, 3)``, ``E_src (B, S, 3|4, 4)``.
        source: which of the ``S`` sources to check against.
        pix_thresh: round-trip reprojection threshold in pixels (MVSNet: 1).
        rel_depth_thresh: relative depth threshold (MVSNet: 0.01).
        valid_src: optional bool of ``depth_src``'s shape ``(B, S, H', W')``; False source pixels are
            treated as holes (e.g. low confidence).
    Returns:
        :class:`GeometricCheck`.
    """
    mv = _checked_multiview(depth_ref, multiview, valid_src)
    if not 0 <= source < mv.num_sources:
        raise DataError(f"source={source}: the multiview has {mv.num_sources} source view(s)")
    valid_src = None if valid_src is None else valid_src[:, source]
    return _check_one(depth_ref, mv.K_ref, mv.E_ref, mv.depth_src[:, source], mv.K_src[:, source],
                      mv.E_src[:, source], pix_thresh, rel_depth_thresh, valid_src)


def _checked_multiview(depth_ref: torch.Tensor, multiview, valid_src: torch.Tensor | None) -> MultiView:
    """The multiview as a :class:`MultiView`, its shapes checked against ``depth_ref (B, H, W)``."""
    mv = MultiView.coerce(multiview)
    if mv is None:
        raise DataError("multiview is None; expected the reference and source cameras and source depths")
    depth_src = mv.require_depths("the geometric check")
    _check_shape("depth_ref", depth_ref, 3, want="(B, H, W)")
    _check_shape("multiview.depth_src", depth_src, 4, want="(B, S, H', W')")
    _check_shape("multiview.K_ref", mv.K_ref, 3, (3, 3), want="(B, 3, 3)")
    _check_shape("multiview.K_src", mv.K_src, 4, (3, 3), want="(B, S, 3, 3)")
    _check_extrinsics("multiview.E_ref", mv.E_ref, 3)
    _check_extrinsics("multiview.E_src", mv.E_src, 4)
    S = depth_src.shape[1]
    if mv.K_src.shape[1] != S or mv.E_src.shape[1] != S:
        raise DataError(f"multiview.K_src {tuple(mv.K_src.shape)} and E_src {tuple(mv.E_src.shape)} must list "
                        f"S={S} source views")
    if valid_src is not None and valid_src.shape != depth_src.shape:
        raise DataError(f"valid_src must have depth_src's shape {tuple(depth_src.shape)}, got {tuple(valid_src.shape)}")
    if depth_src.shape[0] != depth_ref.shape[0]:
        raise DataError(f"depth_src {tuple(depth_src.shape)} must have the batch size B={depth_ref.shape[0]} of depth_ref")
    return mv


def _check_one(depth_ref, K_ref, E_ref, depth_src, K_src, E_src, pix_thresh, rel_depth_thresh, valid_src
               ) -> GeometricCheck:
    """:func:`geometric_check` on one source: ``depth_src (B, H', W')``, ``K_src (B, 3, 3)``, ``E_src (B, 3|4, 4)``."""
    dtype = depth_ref.dtype if depth_ref.is_floating_point() else torch.float32
    depth_ref = depth_ref.to(dtype)
    depth_src = depth_src.to(dtype)
    K_ref, E_ref, K_src, E_src = (t.to(dtype) for t in (K_ref, E_ref, K_src, E_src))
    H, W = depth_ref.shape[-2:]

    uv_src, _, valid = reproject(depth_ref, K_ref, E_ref, K_src, E_src, src_hw=tuple(depth_src.shape[-2:]))

    src_ok = depth_src > 0
    if valid_src is not None:
        src_ok = src_ok & valid_src.bool()
    points_src_world = camera_to_world(backproject_depth(depth_src, K_src), E_src)  # (B, H', W', 3)
    stacked = torch.cat([points_src_world.permute(0, 3, 1, 2), src_ok.unsqueeze(1).to(dtype)], dim=1)
    sampled = sample_pixels(stacked, uv_src, mode="bilinear", padding_mode="zeros")  # (B, 4, H, W)
    # Every bilinear neighbour must exist and hold a depth: a weight below 1 means a hole or the
    # zero padding outside the frame (within half a pixel of the border) was mixed in.
    valid = valid & (sampled[:, 3] > 1.0 - 1e-4)

    points_back = world_to_camera(sampled[:, :3].permute(0, 2, 3, 1), E_ref)  # (B, H, W, 3) ref camera
    uv_back, z_back = project_points(points_back, K_ref)
    valid = valid & (z_back > Z_EPS)

    u, v = pixel_grid(H, W, dtype=dtype, device=depth_ref.device)
    pix_dist = torch.sqrt((uv_back[..., 0] - u) ** 2 + (uv_back[..., 1] - v) ** 2)
    depth_safe = torch.where(depth_ref > 0, depth_ref, torch.ones_like(depth_ref))
    rel = (z_back - depth_ref).abs() / depth_safe

    zero = torch.zeros_like(depth_ref)
    pix_dist = torch.where(valid, pix_dist, zero)
    rel = torch.where(valid, rel, zero)
    consistent = valid & (pix_dist < pix_thresh) & (rel < rel_depth_thresh)
    depth_reproj = torch.where(valid, z_back, zero)
    return GeometricCheck(consistent, valid, depth_reproj, pix_dist, rel)


class MultiViewConsistency(NamedTuple):
    """Result of :func:`multiview_consistency`, each ``(B, H, W)``.

    ``n_consistent``: number of source views (int64) the pixel is consistent with.
    ``depth_averaged``: MVSNet's fused depth ``(d_ref + Σ d'_consistent) / (n_consistent + 1)`` in mm;
    equals ``depth_ref`` where ``n_consistent == 0`` (0 where the reference is a hole).
    """

    n_consistent: torch.Tensor
    depth_averaged: torch.Tensor


def multiview_consistency(
    depth_ref: torch.Tensor,
    multiview: MultiView,
    pix_thresh: float = 1.0,
    rel_depth_thresh: float = 0.01,
    valid_src: torch.Tensor | None = None,
) -> MultiViewConsistency:
    """:func:`geometric_check` of ``depth_ref (B, H, W)`` against each of the ``S`` source views of ``multiview``.

    Args:
        multiview: :class:`deltaz.core.batch.MultiView` (or its dict form), ``depth_src (B, S, H', W')`` mm.
        valid_src: optional ``(B, S, H', W')`` bool (False = treat as a hole).
        Other arguments as in :func:`geometric_check`.
    Returns:
        :class:`MultiViewConsistency`.
    """
    mv = _checked_multiview(depth_ref, multiview, valid_src)
    B, H, W = depth_ref.shape
    S = mv.num_sources
    dtype = depth_ref.dtype if depth_ref.is_floating_point() else torch.float32
    if S == 0:
        return MultiViewConsistency(torch.zeros(depth_ref.shape, dtype=torch.int64, device=depth_ref.device),
                                    depth_ref.to(dtype).clone())

    def flat(t: torch.Tensor) -> torch.Tensor:  # (B, S, ...) -> (B*S, ...)
        return t.reshape(B * S, *t.shape[2:])

    def per_source(t: torch.Tensor) -> torch.Tensor:  # (B, ...) -> (B*S, ...), the reference repeated
        return flat(t.unsqueeze(1).expand(B, S, *t.shape[1:]))

    # All S checks in one batched call of the one per-view check.
    check = _check_one(
        per_source(depth_ref), per_source(mv.K_ref), per_source(mv.E_ref),
        flat(mv.depth_src), flat(mv.K_src), flat(mv.E_src), pix_thresh, rel_depth_thresh,
        None if valid_src is None else flat(valid_src),
    )
    consistent = check.consistent.reshape(B, S, H, W)
    n_consistent = consistent.sum(dim=1)
    reproj = torch.where(consistent, check.depth_reproj.reshape(B, S, H, W), torch.zeros((), dtype=dtype))
    depth_sum = depth_ref.to(dtype) + reproj.sum(dim=1)
    depth_averaged = depth_sum / (n_consistent + 1).to(dtype)
    return MultiViewConsistency(n_consistent, depth_averaged)


def consistency_rate(
    depth_ref: torch.Tensor,
    multiview: MultiView,
    pix_thresh: float = 1.0,
    rel_depth_thresh: float = 0.01,
    min_views: int = 1,
) -> tuple[torch.Tensor, float]:
    """Which reference pixels are geometrically consistent with at least ``min_views`` source views.

    Args: as :func:`multiview_consistency` (``depth_ref (B, H, W)``, ``multiview.depth_src (B, S, H', W')``).
    Returns:
        ``mask (B, H, W)`` bool, and the rate in percent: consistent pixels / pixels with
        ``depth_ref > 0`` (0.0 when the reference has no depth at all).
    """
    if min_views < 1:
        raise DataError(f"min_views must be >= 1, got {min_views}")
    result = multiview_consistency(depth_ref, multiview, pix_thresh, rel_depth_thresh)
    mask = (result.n_consistent >= min_views) & (depth_ref > 0)
    n_valid = int((depth_ref > 0).sum())
    rate = 100.0 * int(mask.sum()) / n_valid if n_valid else 0.0
    return mask, rate
