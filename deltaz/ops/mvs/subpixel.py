"""Sub-pixel refinement: a rectified pair's disparity moved by the small, smooth offset the right image asks for.

A matcher's disparity is often off by a fraction of a pixel over whole surfaces: SGBM's parabola through its
aggregated costs pulls estimates towards whole pixels, a plane sweep only has its planes and the steps before
this one copy whole stretches. At a far background a fifth of a pixel is several millimetres. So:

1. Each pixel's offset: the zero-mean normalised cross-correlation (ZNCC, the plane sweep's:
   :func:`deltaz.ops.mvs.sweep.zncc_cost`) of a ``window²`` patch of the left image's luminance with the right image
   warped by each pixel's own disparity plus one common offset (linear interpolation along the row; a pixel
   without a disparity is warped by its nearest neighbour's), tried at offsets of ``1/steps`` px within
   ``±reach`` px; the best one, refined by a parabola through its two neighbours. Kept where it is at most
   ``accept`` px, else 0.
2. The offsets clipped to ``±clip`` px, then their median over ``smooth × smooth`` pixels (a pixel without a
   disparity or without a kept offset counts as 0): the part shared by a surface stays, the per-pixel noise
   of a small patch goes.
3. The disparity plus that smoothed offset; a pixel without a disparity stays without.

One pass, no training; memory a few maps of the image's size (the best score and its neighbours are kept while
the offsets are tried, never the whole ZNCC volume). Defaults chosen on the left half of Middlebury's
Motorcycle (SGBM's full-size disparity, after the side choice and segment planes, scored on the benchmark's
185×125 grid); docs/EXPERIMENTS.md ("Sub-pixel refinement") has the settings tried and the held-out half.

Calibrated views (:func:`subpixel_views`, ``deltaz evaluate``'s multi-view search): the same three steps with
relative depth offsets ``z·(1 + r)`` instead of disparity offsets, scored by the package's photometric error
(:func:`deltaz.ops.selfsup.photometric_loss_map`: SSIM + L1, the minimum over the sources that see the point).

Convention: left reference, ``x_right = x − d``; disparities in px of the images given; NaN = none. Views: z-depth
in mm, 0 = hole.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt, median_filter

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.core.geometry import pixel_grid, sample_pixels
from deltaz.io.middlebury import grid_depth
from deltaz.ops.mvs.planes import merged_options, pair_arrays
from deltaz.ops.mvs.sweep import gray, reference_stats, zncc_cost
from deltaz.ops.selfsup import photometric_loss_map

__all__ = ["SUBPIXEL_DEFAULTS", "VIEWS_SUBPIXEL_DEFAULTS", "running_peak", "smoothed_offsets", "subpixel_depth",
           "subpixel_offsets", "subpixel_refine", "subpixel_views"]

#: Defaults of :func:`subpixel_refine` (module docstring): patch (px, odd), offsets tried (±reach px in
#: 1/steps px), largest offset kept (px), clip (px) and median size (px, odd).
SUBPIXEL_DEFAULTS = {"window": 7, "reach": 1.5, "steps": 8, "accept": 1.0, "clip": 0.2, "smooth": 21}
#: Smallest window variance of the ZNCC (luminance in [0, 1]): lower than the plane sweep's 1e-4, so that faint
#: texture still places its peak (chosen with the settings above; 1e-4 gave 9.90 instead of 9.78 mm there).
VAR_EPS = 1e-6
#: Defaults of :func:`subpixel_views`: offsets tried (±reach in steps of ``step``, relative to the depth), largest
#: kept, clip (relative) and median size (px, odd). Chosen on the demo's validation scans (docs/EXPERIMENTS.md).
VIEWS_SUBPIXEL_DEFAULTS = {"reach": 0.012, "step": 0.002, "accept": 0.01, "clip": 0.004, "smooth": 11}



def _warp(right: torch.Tensor, disparity: torch.Tensor) -> torch.Tensor:
    """``right`` ``(1, 1, H, W)`` read at ``x − disparity`` along each row (linear, border values outside)."""
    _, _, H, W = right.shape
    u, v = pixel_grid(H, W)
    return sample_pixels(right, torch.stack([u - disparity, v], -1)[None])


def running_peak(score: Callable[[int], torch.Tensor], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The best of the score maps ``score(k)``, ``k = −n … n`` (higher is better, −inf = none), refined by a
    parabola through its two neighbours: ``(offset in steps, found)``, both ``(…)`` of the maps' shape. Only the
    running best and its neighbours are kept, never all the maps. ``found`` is False where the best lies at either
    end of the range or no map has a finite score."""
    best = index = before = after = previous = None
    for k in range(-n, n + 1):
        value = score(k)
        if best is None:
            best, index = value, torch.full_like(value, k, dtype=torch.long)
            before, after = torch.full_like(value, -np.inf), torch.full_like(value, -np.inf)
        else:
            after = torch.where(index == k - 1, value, after)  # the right neighbour of last step's best
            better = value > best
            best = torch.where(better, value, best)
            index = torch.where(better, torch.full_like(index, k), index)
            before = torch.where(better, previous, before)
        previous = value
    found = (index > -n) & (index < n) & torch.isfinite(best) & torch.isfinite(before) & torch.isfinite(after)
    curvature = before - 2 * best + after
    shift = torch.where(found & (curvature < 0), 0.5 * (before - after) / curvature.clamp_max(-1e-9),
                        torch.zeros_like(best))
    return index.float() + shift.clamp(-1, 1), found


def subpixel_offsets(disparity: torch.Tensor, left: torch.Tensor, right: torch.Tensor, window: int, reach: float,
                     steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Step 1 of the module docstring before the ``accept`` test: ``(offset px, found)``, both ``(H, W)``.

    ``disparity``: ``(H, W)`` px, finite (callers fill holes); ``left``, ``right``: ``(3, H, W)`` in [0, 1].
    ``found`` is False where the best offset lies at the end of the range (no peak inside it).
    """
    grey_left, grey_right = gray(left[None]), gray(right[None])  # (1, 1, H, W) luminance, as the plane sweep's
    left_mean, left_var = reference_stats(grey_left, window, VAR_EPS)

    def score(k: int) -> torch.Tensor:  # ZNCC − 1
        warped = _warp(grey_right, disparity + k / steps)
        return -zncc_cost(grey_left, left_mean, left_var, warped, window, VAR_EPS)[0, 0]

    offset, found = running_peak(score, int(round(reach * steps)))
    return offset / steps, found


def smoothed_offsets(offset: np.ndarray, kept: np.ndarray, clip: float, smooth: int) -> np.ndarray:
    """Step 2 of the module docstring: ``offset`` where ``kept`` (else 0), clipped to ``±clip``, then the median over
    ``smooth × smooth`` pixels of each ``(…, H, W)`` map."""
    clipped = np.clip(np.where(kept, offset, 0.0), -clip, clip).astype(np.float32)
    size = (1,) * (clipped.ndim - 2) + (smooth, smooth)
    return median_filter(clipped, size=size)


def _check(disp: np.ndarray, left: torch.Tensor, right: torch.Tensor, opts: dict[str, Any]) -> None:
    if disp.ndim != 2 or tuple(left.shape[1:]) != disp.shape or right.shape != left.shape:
        raise DataError(f"subpixel_refine: the disparity map ({disp.shape}) and both images "
                        f"({tuple(left.shape[1:])}, {tuple(right.shape[1:])}) must have one size")
    odd = all(isinstance(opts[k], int) and opts[k] >= 1 and opts[k] % 2 == 1 for k in ("window", "smooth"))
    if not (odd and isinstance(opts["steps"], int) and opts["steps"] >= 1
            and 0 < opts["accept"] <= opts["reach"] and opts["clip"] >= 0):
        raise DataError(f"subpixel_refine: expected odd window and smooth >= 1, steps >= 1, 0 < accept <= reach and "
                        f"clip >= 0, got {opts}")


def subpixel_refine(disparity: np.ndarray, left: np.ndarray, right: np.ndarray, **options: Any) -> np.ndarray:
    """The sub-pixel refinement (module docstring) on a rectified pair: ``(H, W)`` px → ``(H, W)`` px float32.

    Args:
        disparity: ``(H, W)`` px of the left view (``x_right = x − d``), NaN/inf = none (returned as NaN).
        left, right: ``(H, W, 3)`` RGB, uint8/uint16 or float in [0, 1], the disparity map's size.
        options: any of :data:`SUBPIXEL_DEFAULTS`.
    """
    opts = merged_options("subpixel_refine", options, SUBPIXEL_DEFAULTS)
    disp, left_t, right_t = pair_arrays(disparity, left, right)
    _check(disp, left_t, right_t, opts)
    known = np.isfinite(disp)
    if not known.any():
        return disp
    nearest = distance_transform_edt(~known, return_distances=False, return_indices=True)
    filled = disp[tuple(nearest)]  # holes take the nearest disparity, so no window reads the right image at 0 px
    offset, found = subpixel_offsets(torch.from_numpy(filled), left_t, right_t, opts["window"], opts["reach"],
                                     opts["steps"])
    offset, found = offset.numpy(), found.numpy()
    smooth = smoothed_offsets(offset, known & found & (np.abs(offset) <= opts["accept"]), opts["clip"], opts["smooth"])
    return np.where(known, disp + smooth, np.nan).astype(np.float32)


def subpixel_depth(data: dict[str, Any], disparity: np.ndarray) -> torch.Tensor:
    """:func:`subpixel_refine` on Middlebury's full-size pair, from a full-size disparity of the left view (px, NaN
    = none; e.g. :func:`deltaz.ops.mvs.planes.planes_disparity` with ``full=True``): ``(H, W)`` float32 mm at
    ``data["size"]``, 0 = hole (:func:`deltaz.io.middlebury.grid_depth`). ``data``:
    :func:`deltaz.io.middlebury.load_motorcycle`'s dict."""
    if np.shape(disparity) != data["grey_left_full"].shape:
        raise DataError(f"subpixel_depth: disparity is {np.shape(disparity)}, expected the full-size "
                        f"{data['grey_left_full'].shape}")
    return grid_depth(subpixel_refine(disparity, data["rgb_left_full"], data["rgb_right_full"]), data)


@torch.no_grad()
def subpixel_views(depth: torch.Tensor, image_ref: torch.Tensor, image_src: torch.Tensor, multiview: MultiView,
                   **options: Any) -> torch.Tensor:
    """The sub-pixel refinement for calibrated views (module docstring): ``(B, H, W)`` mm → float32 ``(B, H, W)``
    mm, holes kept.

    Args:
        depth: ``(B, H, W)`` reference z-depth, mm, 0 = hole.
        image_ref: ``(B, 3, H, W)`` in [0, 1]; image_src: ``(B, S, 3, H', W')`` in [0, 1].
        multiview: the reference's and sources' cameras, with the sources' depths for the visibility test
            (:func:`deltaz.ops.selfsup.photometric_loss_map`).
        options: any of :data:`VIEWS_SUBPIXEL_DEFAULTS`.
    """
    opts = merged_options("subpixel_views", options, VIEWS_SUBPIXEL_DEFAULTS)
    if not (0 < opts["step"] and 0 < opts["accept"] <= opts["reach"] < 1 and opts["clip"] >= 0
            and isinstance(opts["smooth"], int) and opts["smooth"] >= 1 and opts["smooth"] % 2 == 1):
        raise DataError(f"subpixel_views: expected step > 0, 0 < accept <= reach < 1, clip >= 0 and an odd smooth "
                        f">= 1, got {opts}")
    if depth.dim() != 3 or image_ref.shape[0] != depth.shape[0] or image_ref.shape[-2:] != depth.shape[-2:]:
        raise DataError(f"subpixel_views: depth (B, H, W) and image_ref (B, 3, H, W) of one size expected, got "
                        f"{tuple(depth.shape)} and {tuple(image_ref.shape)}")
    depth = depth.float()

    def score(k: int) -> torch.Tensor:
        error, seen = photometric_loss_map(depth * (1 + k * opts["step"]), image_ref, image_src, multiview,
                                           mask_ssim=True)
        return torch.where(seen, -error, torch.full_like(error, -np.inf))

    offset, found = running_peak(score, int(round(opts["reach"] / opts["step"])))
    relative = (offset * opts["step"]).cpu().numpy()
    kept = found.cpu().numpy() & (depth > 0).cpu().numpy() & (np.abs(relative) <= opts["accept"])
    smooth = torch.from_numpy(smoothed_offsets(relative, kept, opts["clip"], opts["smooth"])).to(depth.device)
    return torch.where(depth > 0, depth * (1 + smooth), depth)
