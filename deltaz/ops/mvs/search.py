"""Disparity candidate search: a classical two-view post-step for a rectified pair's disparity map.

Each pixel of a disparity map tries the disparities of its neighbours (a ``(2r + 1)²`` window, every
``stride``-th pixel) and keeps the one whose matching cost against the right image is lowest, when that cost
is lower than its own disparity's by more than ``margin``; elsewhere it keeps its own. This is PatchMatch's
spatial propagation, one pass, with a fixed cost: the mean absolute colour difference over a ``window²``
patch (SAD), computed once for every integer disparity (:func:`sad_cost_volume`).

What it fixes: a matcher's smoothness term spreads a wrong disparity over a region that the right image
contradicts (a stretch of background given the foreground's disparity, next to the right one). What it cannot:
half-occluded pixels, which the right camera does not see, so no cost confirms their true disparity.
:func:`search_disparity` and :func:`search_depth` (SGBM's own disparity) run the edge side choice first
(:mod:`deltaz.ops.mvs.side`): it moves a depth edge onto the colour edge, which the right image's SAD often
cannot decide, and with it the search leaves the good pixels as they were (Motorcycle, README).
:func:`search_disparity` then runs segment planes (:mod:`deltaz.ops.mvs.planes`), which reaches the half-occluded
stretches the search cannot; :func:`search_depth` does not (on Middlebury's 185×125 grid the search's reach of 15
grid pixels takes those stretches back: :func:`deltaz.ops.mvs.planes.planes_depth` runs on the side choice's
full-size disparity instead), and last the sub-pixel refinement (:mod:`deltaz.ops.mvs.subpixel`): the small,
smooth offset the right image asks for.

Convention: left reference, ``x_right = x_left − d``; disparities in px of the images given; NaN = no disparity.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deltaz.core.errors import DataError
from deltaz.io.middlebury import depth_to_disparity, disparity_to_depth, nearest_index, sgbm_params
from deltaz.ops.mvs.planes import pair_arrays, rgb_tensor, sad_map, segment_planes
from deltaz.ops.mvs.side import side_choice, side_disparity
from deltaz.ops.mvs.subpixel import subpixel_refine

__all__ = ["SEARCH_DEFAULTS", "sad_cost_volume", "candidate_search", "search_disparity", "search_depth"]

#: Defaults of :func:`candidate_search` (and a 5×5 SAD), chosen on the left half of Middlebury's Motorcycle with
#: OpenCV SGBM's disparity: SAD 5 against census, ZNCC and SAD of 5 and 9 px, radius 15 against 0, 3 and 6,
#: margin 0.02 against 0, 0.05 and 0.1. That exploration printed the held-out right half beside the left one.
SEARCH_DEFAULTS = {"radius": 15, "stride": 3, "margin": 0.02}
#: Memory budget of :func:`search_disparity`'s cost volume (bytes): larger images are searched in strips of rows.
COST_BUDGET_BYTES = 256 * 2**20


def sad_cost_volume(left: torch.Tensor, right: torch.Tensor, num_disparities: int, window: int = 5) -> torch.Tensor:
    """``(D, H, W)``: the mean over a ``window²`` patch and the colour channels of ``|left − right shifted by d|``,
    for ``d = 0 … D − 1`` px (``x_right = x − d``); NaN where the patch's centre falls off the right image.

    Args:
        left, right: ``(C, H, W)`` rectified images in [0, 1], the same size.
    """
    if left.dim() != 3 or left.shape != right.shape:
        raise DataError(f"left and right must be (C, H, W) images of one size, got {tuple(left.shape)} and "
                        f"{tuple(right.shape)}")
    if num_disparities < 1 or window < 1 or window % 2 == 0:
        raise DataError(f"num_disparities >= 1 and an odd window >= 1 expected, got {num_disparities}, {window}")
    costs = []
    for d in range(num_disparities):
        cost = sad_map(left, right, d, window)
        cost[:, :d] = math.nan
        costs.append(cost)
    return torch.stack(costs)


def _cost_at(cost: torch.Tensor, disparity: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """The cost of each grid pixel's (rounded) ``disparity``; ``inf`` where it has none or it is out of range."""
    D = cost.shape[0]
    index = torch.nan_to_num(disparity, nan=-1.0).round().long()
    ok = (index >= 0) & (index < D)
    value = cost[index.clamp(0, D - 1), rows[:, None], cols[None, :]]
    return torch.where(ok & torch.isfinite(value), value, torch.full_like(value, math.inf))


def candidate_search(disparity: torch.Tensor, cost: torch.Tensor, rows: torch.Tensor | None = None,
                     cols: torch.Tensor | None = None, radius: int = SEARCH_DEFAULTS["radius"],
                     stride: int = SEARCH_DEFAULTS["stride"], margin: float = SEARCH_DEFAULTS["margin"]
                     ) -> torch.Tensor:
    """One pass of neighbour-disparity search (module docstring): ``(h, w)`` px → ``(h, w)`` px, NaN kept.

    Args:
        disparity: ``(h, w)`` px at the cost volume's pixel scale, NaN = none; pixel ``(i, j)`` sits at the
            cost volume's ``(rows[i], cols[j])`` (default: the same grid, ``h, w = H, W``).
        cost: ``(D, H, W)`` from :func:`sad_cost_volume`.
        radius, stride: the neighbours tried, in grid pixels. margin: the cost improvement required (≥ 0).
    """
    h, w = disparity.shape
    rows = torch.arange(h) if rows is None else rows
    cols = torch.arange(w) if cols is None else cols
    if len(rows) != h or len(cols) != w or not margin >= 0 or radius < 0 or stride < 1:
        raise DataError(f"candidate_search: rows/cols must match the disparity's {h}x{w} grid, margin >= 0, "
                        f"radius >= 0 and stride >= 1; got {len(rows)}x{len(cols)}, {margin}, {radius}, {stride}")
    own = _cost_at(cost, disparity, rows, cols)
    best_cost, best = own.clone(), disparity.clone()
    padded = F.pad(disparity[None, None], (radius,) * 4, value=math.nan)[0, 0]
    for dy in range(-radius, radius + 1, stride):
        for dx in range(-radius, radius + 1, stride):
            candidate = padded[radius + dy:radius + dy + h, radius + dx:radius + dx + w]
            value = _cost_at(cost, candidate, rows, cols)
            better = value < best_cost
            best_cost = torch.where(better, value, best_cost)
            best = torch.where(better, candidate, best)
    keep = torch.isfinite(own) & (best_cost < own - margin) & ~torch.isnan(disparity)
    return torch.where(keep, best, disparity)


def search_disparity(disparity: np.ndarray, left: np.ndarray, right: np.ndarray, window: int = 5,
                     budget_bytes: int = COST_BUDGET_BYTES, side: bool = True, planes: bool = True,
                     subpixel: bool = True, **options: Any) -> np.ndarray:
    """The edge side choice (:func:`deltaz.ops.mvs.side.side_choice`, unless ``side=False``), then
    :func:`candidate_search`, then segment planes (:func:`deltaz.ops.mvs.planes.segment_planes`, unless
    ``planes=False``), then the sub-pixel refinement (:func:`deltaz.ops.mvs.subpixel.subpixel_refine`, unless
    ``subpixel=False``), on a rectified pair at the disparity map's own size: ``(H, W)`` px → ``(H, W)`` px.

    Args:
        disparity: ``(H, W)`` px of the left view (``x_right = x − d``), NaN/inf = none (returned as NaN).
        left, right: ``(H, W, 3)`` RGB, uint8/uint16 or float in [0, 1], the disparity map's size.
        window: the SAD patch (odd). budget_bytes: the cost volume's memory; above it, strips of rows (the
            same result). options: ``radius``, ``stride``, ``margin`` (:data:`SEARCH_DEFAULTS`).
    """
    disp_array, left_t, right_t = pair_arrays(disparity, left, right)
    disp = torch.from_numpy(disp_array)
    if disp.dim() != 2 or left_t.shape[1:] != disp.shape or right_t.shape != left_t.shape:
        raise DataError(f"search_disparity: the disparity map ({tuple(disp.shape)}) and both images "
                        f"({tuple(left_t.shape[1:])}, {tuple(right_t.shape[1:])}) must have one size")
    finite = disp[torch.isfinite(disp)]
    if finite.numel() == 0:
        return disp.numpy()
    if (finite < 0).any():
        raise DataError("search_disparity: disparities must be >= 0 px (x_right = x - d)")
    if side:
        disp = side_choice(disp, left_t)
    opts = {**SEARCH_DEFAULTS, **options}
    H, W = disp.shape
    num = min(W, int(math.ceil(float(finite.max()))) + 1)  # a disparity >= W has no cost: the pixel keeps it
    step = max(1, budget_bytes // (4 * num * W))
    out = disp.clone()
    for r0 in range(0, H, step):
        r1 = min(H, r0 + step)
        a, b = max(0, r0 - window // 2), min(H, r1 + window // 2)  # image rows the strip's patches read
        c, e = max(0, r0 - opts["radius"]), min(H, r1 + opts["radius"])  # disparity rows its candidates come from
        cost = sad_cost_volume(left_t[:, a:b], right_t[:, a:b], num, window)
        rows = (torch.arange(c, e) - a).clamp(0, b - a - 1)
        searched = candidate_search(disp[c:e], cost, rows, torch.arange(W), **opts)
        out[r0:r1] = searched[r0 - c:r1 - c]
    searched = segment_planes(out.numpy(), left, right) if planes else out.numpy()
    return subpixel_refine(searched, left, right) if subpixel else searched


def search_depth(data: dict[str, Any], depth: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`candidate_search` with its defaults and a 5×5 colour SAD on Middlebury's full-size pair, from the left
    view's ``depth`` (``(H, W)`` mm at ``data["size"]``, 0 = hole; default: SGBM's full-size disparity after the
    edge side choice, :func:`deltaz.ops.mvs.side.side_disparity`): ``(H, W)`` float32 mm, 0 = hole.
    ``data``: :func:`deltaz.io.middlebury.load_motorcycle`'s dict.

    The search runs on the nearest-resized grid (the full-size pixels that ``data["size"]`` keeps), each
    candidate's cost read at the pixel's full-size position; depth and disparity convert with the scene's
    calibration (``Z = f·B·s / (d + doffs)``), holes stay holes.
    """
    cal = data["calibration"]
    full_h, full_w = data["grey_left_full"].shape
    rows, cols = nearest_index(full_h, data["size"][0]), nearest_index(full_w, data["size"][1])
    if depth is None:
        grid = side_disparity(data)
    else:
        if tuple(depth.shape) != tuple(data["size"]):
            raise DataError(f"search_depth: depth is {tuple(depth.shape)}, expected the scene's size {data['size']}")
        grid = torch.from_numpy(depth_to_disparity(depth.float().numpy(), cal["f_px"], cal["baseline_mm"],
                                                   cal["doffs_px"]))
    left, right = (rgb_tensor(data[k], k) for k in ("rgb_left_full", "rgb_right_full"))
    sgbm = sgbm_params(data)
    cost = sad_cost_volume(left, right, sgbm["minDisparity"] + sgbm["numDisparities"], window=5)
    searched = candidate_search(grid, cost, torch.from_numpy(rows), torch.from_numpy(cols)).numpy()
    return torch.from_numpy(disparity_to_depth(searched, cal["f_px"], cal["baseline_mm"], cal["doffs_px"]))
