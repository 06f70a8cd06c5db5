"""Segment planes for calibrated views: :mod:`deltaz.ops.mvs.planes` on a reference depth map with source views.

The rectified pair's step reads disparity; a calibrated reference has z-depth and sources anywhere. Here the depth
becomes its inverse in per cent of the map's median, ``p = 100 · median / Z`` (a world plane is a plane in ``p``
over the image, as disparity is, and ``p`` is larger when nearer), and:

1. the reference image is cut into colour segments (:func:`skimage.segmentation.felzenszwalb`) at each of
   ``scales`` × ``sigmas``;
2. each segment with at least ``min_pixels`` depths gets a robust plane in ``p``
   (:func:`deltaz.ops.mvs.planes.fit_planes`; ``fit`` in ``p`` units);
3. a pixel more than ``jump`` (``p`` units: 12 is 11 % nearer than a plane at the median depth, 6 % at half of it)
   nearer than its segment's plane may take the plane's depth, unless the sources say
   no: where a source sees the point at its own depth, one must see it at the plane's too, with a photometric error
   (:func:`deltaz.ops.selfsup.photometric_loss_map`, the sources' depths deciding visibility) no higher than at its
   own plus ``margin``. (The rectified step lets a plane the right camera cannot see pass, for half-occluded
   background; with several sources an unseen plane is more often a segment that straddles a nearer object.)
   A pixel whose own depth is *backed* — at least ``backed`` of its sources' depths pass MVSNet's geometric check
   with it (:func:`deltaz.ops.metrics.multiview_consistency`: 1 px round trip, 1 %) — needs more: the plane's
   error strictly below its own (no margin). Such a pixel is most often right: a nearer object inside a segment
   of the background's colour. A plane more than ``reach`` times the pixel's own depth is not a candidate: on a
   design scan the right depths the step broke took planes twice as far (median), its fixes 1.2 times as far;
4. a pixel takes the median of its candidate planes where at least ``vote`` of the segmentations made it one.

What it fixes: stretches a plane sweep or a matcher puts too near (a foreground's depth bled onto the background,
texture-poor patches that matched a nearer surface) on a surface that is one colour region and nearly planar. Holes
stay holes. Defaults chosen on the demo's validation scans ``scan9``/``scan10`` (raw plane-sweep input after the
multi-view candidate search, 4 sources; docs/EXPERIMENTS.md, "Segment planes for calibrated views").

``backed`` was added on the same validation scans and three synthetic design sets (seeds 5, 31 and 43): it keeps
85–92 % of the step's covered gain and removes about half of its damage to right depth (docs/EXPERIMENTS.md,
"Segment planes for calibrated views"). ``reach`` was added after it, on the same four sets and a fifth (seed 71):
it removes most of the damage left on the design scan that looked like the held-out damage, at the same covered MAE
(on the held-out scans it changed nothing: docs/EXPERIMENTS.md, "fifth look").

Convention: z-depth in mm, 0 = hole; images ``(3, H, W)`` in [0, 1].
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import numpy as np
import torch

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.ops.metrics import multiview_consistency
from deltaz.ops.mvs.planes import (PLANES_DEFAULTS, check_plane_options, merge_candidates, merged_options,
                                   plane_candidates)
from deltaz.ops.selfsup import photometric_loss_map

__all__ = ["VIEWS_PLANES_DEFAULTS", "planes_views"]

#: Defaults of :func:`planes_views` (module docstring): the rectified step's options, with one ``sigma`` (4
#: segmentations, a third of the time of its 12, the same quality on the design scans), ``fit`` and ``jump`` (``p``
#: units), ``margin`` (photometric error units) and ``vote`` of their own, and ``backed`` (a fraction of the
#: sources, rounded up: 3 of 4; None = no such pixel) and ``reach`` (a factor of the own depth, > 1; None = no limit).
VIEWS_PLANES_DEFAULTS = {**{k: v for k, v in PLANES_DEFAULTS.items() if k != "window"},
                         "sigmas": (0.5,), "fit": 2.0, "jump": 12.0, "margin": 0.05, "vote": 0.5, "backed": 0.75,
                         "reach": 2.0}


def _check(depth: torch.Tensor, image_ref: torch.Tensor, image_src: torch.Tensor, opts: dict[str, Any]) -> None:
    B = depth.shape[0] if depth.dim() == 3 else -1
    if depth.dim() != 3 or image_ref.dim() != 4 or tuple(image_ref.shape[:2]) != (B, 3) \
            or image_ref.shape[-2:] != depth.shape[-2:] or image_src.dim() != 5 or image_src.shape[0] != B \
            or image_src.shape[2] != 3:
        raise DataError(f"planes_views: depth (B, H, W), image_ref (B, 3, H, W) of one size and image_src "
                        f"(B, S, 3, H', W') expected, got {tuple(depth.shape)}, {tuple(image_ref.shape)} and "
                        f"{tuple(image_src.shape)}")
    bad = [] if _real_or_none(opts["backed"], lambda b: 0 < b <= 1) else ["backed"]
    bad += [] if _real_or_none(opts["reach"], lambda r: r > 1) else ["reach"]
    check_plane_options("planes_views", opts, bad, "backed None or in (0, 1], reach None or > 1")


def _real_or_none(value: Any, ok: Callable[[float], bool]) -> bool:
    """``value`` is None, or a real number (not a bool) for which ``ok(value)`` holds."""
    return value is None or (isinstance(value, numbers.Real) and not isinstance(value, bool) and bool(ok(value)))


def _inverse(depth: np.ndarray) -> tuple[np.ndarray, float]:
    """``(H, W)`` mm → ``p = 100 · median / Z`` (NaN at holes) and the median (mm)."""
    valid = depth > 0
    median = float(np.median(depth[valid]))
    return np.where(valid, 100.0 * median / np.where(valid, depth, 1.0), np.nan).astype(np.float32), median


def _view_candidates(depth: np.ndarray, rgb: np.ndarray, opts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """One view's candidates: ``votes (M, H, W)`` bool and their plane depths ``(M, H, W)`` mm, one per
    segmentation (a plane at or beyond infinity is none)."""
    if not (depth > 0).any():
        shape = (len(opts["scales"]) * len(opts["sigmas"]), *depth.shape)
        return np.zeros(shape, bool), np.zeros(shape, np.float32)
    p, median = _inverse(depth)
    votes, values = plane_candidates(p, rgb, opts)
    votes = np.stack(votes) & (np.stack(values) > 0)
    planes = np.where(votes, 100.0 * median / np.where(votes, np.stack(values), 1.0), 0.0).astype(np.float32)
    return votes, planes


def _backed(depth: torch.Tensor, multiview: MultiView, backed: float | None) -> torch.Tensor:
    """``(B, H, W)`` bool: the depth passes the geometric check with at least ``backed`` of the sources (rounded
    up); all False without the sources' depths or with ``backed`` None."""
    if backed is None or multiview.depth_src is None or multiview.depth_src.shape[1] == 0:
        return torch.zeros_like(depth, dtype=torch.bool)
    need = max(1, math.ceil(backed * multiview.depth_src.shape[1] - 1e-9))
    return multiview_consistency(depth, multiview).n_consistent >= need


@torch.no_grad()
def planes_views(depth: torch.Tensor, image_ref: torch.Tensor, image_src: torch.Tensor, multiview: MultiView,
                 **options: Any) -> torch.Tensor:
    """Segment planes for calibrated views (module docstring): ``(B, H, W)`` mm → float32 ``(B, H, W)`` mm.

    Args:
        depth: ``(B, H, W)`` reference z-depth, mm, 0 = hole (kept).
        image_ref: ``(B, 3, H, W)`` in [0, 1]; image_src: ``(B, S, 3, H', W')`` in [0, 1].
        multiview: the reference's and sources' cameras, with the sources' depths for the visibility test
            (:func:`deltaz.ops.selfsup.photometric_loss_map`) and ``backed`` (without them no pixel is backed; for
            ``backed`` each source's depth map at its image's size, one ``K_src`` for both); or its dict form.
        options: any of :data:`VIEWS_PLANES_DEFAULTS`.
    """
    opts = merged_options("planes_views", options, VIEWS_PLANES_DEFAULTS)
    _check(depth, image_ref, image_src, opts)
    multiview = MultiView.coerce(multiview)
    depth = depth.float()
    depth_np = depth.cpu().numpy()
    rgb = image_ref.float().permute(0, 2, 3, 1).cpu().numpy()
    found = [_view_candidates(d, c, opts) for d, c in zip(depth_np, rgb)]
    votes = torch.from_numpy(np.stack([v for v, _ in found])).to(depth.device)  # (B, M, H, W)
    if not votes.any():
        return depth.clone()
    planes = torch.from_numpy(np.stack([p for _, p in found])).to(depth.device)
    if opts["reach"] is not None:
        votes &= planes <= opts["reach"] * depth[:, None]
    error_own, seen_own = photometric_loss_map(depth, image_ref, image_src, multiview, mask_ssim=True)
    backed = _backed(depth, multiview, opts["backed"])
    for m in range(votes.shape[1]):
        if not votes[:, m].any():
            continue
        error, seen = photometric_loss_map(torch.where(votes[:, m], planes[:, m], depth), image_ref, image_src,
                                           multiview, mask_ssim=True)
        votes[:, m] &= ~(seen_own & (~seen | (error > error_own + opts["margin"])))
        votes[:, m] &= ~(backed & ~(seen & (error < error_own)))
    values = torch.where(votes, planes, torch.full_like(planes, float("nan"))).cpu().numpy()
    out = [merge_candidates(d, list(v), list(p), opts["vote"])
           for d, v, p in zip(depth_np, votes.cpu().numpy(), values)]
    return torch.from_numpy(np.stack(out)).to(depth.device)
