"""Segment planes: a matcher's too-near stretches put back on the plane of the surface they belong to.

A stereo matcher gives a background surface the foreground's disparity where its window straddles an edge
(fattening), and where the right camera does not see the background at all (half-occlusion), often over
stretches wider than a small window. The surface itself is usually one colour region and nearly planar. So:

1. The left image is cut into colour segments (Felzenszwalb and Huttenlocher's graph segmentation,
   :func:`skimage.segmentation.felzenszwalb`) at several ``scales`` × ``sigmas``.
2. In each segment with at least ``min_pixels`` disparities a robust plane ``d = a·x + b·y + c`` is fitted: a
   least-squares fit to the disparities within 3 px of the segment's median, then ``rounds − 1`` refits to those
   within ``fit`` px of the last plane. A segment whose plane holds less than ``inliers`` of its disparities
   within ``fit`` px gets none.
3. A pixel more than ``jump`` px *nearer* than its segment's plane (``d − plane > jump``, the plane at least 0 px:
   fattening only makes depth too near) may take the plane's disparity, unless the right image says no: at the
   plane's disparity the pixel would be seen by the right camera (inside its frame, and no pixel ``x' > x`` of the
   map with the candidates moved hides it: ``d' − (x' − x) ≥ d − 0.5``), and its colour SAD there is higher than
   at its own disparity by more than ``margin``. The SAD is the mean absolute difference over a ``window²`` patch
   and the three channels of images in [0, 1] (the right image shifted by the rounded disparity, zero-padded).
4. A pixel takes the median of its candidate planes where at least ``vote`` of the segmentations made it one.

One pass, no training; the left and right images of a rectified pair, the whole image at once (about 450 bytes
per pixel: 156 MB at 741×500). Defaults chosen on the left half of
Middlebury's Motorcycle with OpenCV SGBM's full-size disparity after the edge side choice
(:mod:`deltaz.ops.mvs.side`); docs/EXPERIMENTS.md ("Segment planes") has the settings tried.

Convention: left reference, ``x_right = x − d``; disparities in px of the images given; NaN = none.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from skimage.segmentation import felzenszwalb

from deltaz.core.errors import DataError
from deltaz.io.middlebury import depth_to_disparity, disparity_to_depth, resize_nearest
from deltaz.ops.mvs.side import side_disparity

__all__ = ["PLANES_DEFAULTS", "check_plane_options", "fit_planes", "merge_candidates", "merged_options", "pair_arrays",
           "plane_candidates", "rgb_tensor", "sad_map", "segment_planes", "planes_disparity", "planes_depth"]

#: Defaults of :func:`segment_planes` (module docstring).
PLANES_DEFAULTS = {"scales": (100, 175, 250, 400), "sigmas": (0.3, 0.5, 0.8), "min_size": 10, "min_pixels": 20,
                   "rounds": 3, "fit": 1.0, "inliers": 0.5, "jump": 2.0, "window": 5, "margin": 0.02,
                   "vote": 1 / 3}


def rgb_tensor(image: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    """``(H, W, 3)`` unsigned integers (their full range) or float in [0, 1] → ``(3, H, W)`` float32 in [0, 1]."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise DataError(f"{name}: expected an (H, W, 3) RGB image, got shape {array.shape}")
    top = np.iinfo(array.dtype).max if np.issubdtype(array.dtype, np.integer) else 1.0
    array = array.astype(np.float32) / np.float32(top)
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


def merged_options(name: str, options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``options``; an unknown option is refused in one line naming the function ``name``."""
    unknown = set(options) - set(defaults)
    if unknown:
        raise DataError(f"{name}: unknown option(s) {sorted(unknown)}; expected {sorted(defaults)}")
    return {**defaults, **options}


def pair_arrays(disparity: np.ndarray, left: np.ndarray, right: np.ndarray
                ) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """A rectified pair's disparity as float32 (NaN/inf → NaN) and its images as ``(3, H, W)`` float32 in [0, 1]
    (:func:`rgb_tensor`)."""
    disp = np.asarray(disparity, dtype=np.float32)
    disp = np.where(np.isfinite(disp), disp, np.nan).astype(np.float32)
    return disp, rgb_tensor(left, "left image"), rgb_tensor(right, "right image")


def sad_map(left: torch.Tensor, right: torch.Tensor, d: int, window: int) -> torch.Tensor:
    """``(H, W)``: the mean over a ``window²`` patch and the channels of ``|left − right shifted by d px|``
    (``x_right = x − d``; the right image zero-padded, so the first ``d`` columns are meaningless: callers mask them).
    ``left``, ``right``: ``(C, H, W)`` in [0, 1]. The one SAD of :mod:`deltaz.ops.mvs.search` and this module."""
    W = left.shape[-1]
    shifted = F.pad(right[..., :W - d], (d, 0)) if d else right
    diff = (left - shifted).abs().mean(0, keepdim=True)
    return F.avg_pool2d(diff[None], window, 1, window // 2, count_include_pad=False)[0, 0]


def fit_planes(disparity: np.ndarray, labels: np.ndarray, fit: float = 1.0, min_pixels: int = 20,
               rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Each segment's robust plane (module docstring, step 2): ``(plane, share)``, both ``(H, W)`` float32.

    Args:
        disparity: ``(H, W)`` px, NaN = none. labels: ``(H, W)`` int segment ids ``0 … S − 1``.
    Returns:
        ``plane``: the pixel's segment's plane at the pixel (px), NaN where the segment has none;
        ``share``: the fraction of the segment's disparities within ``fit`` px of its plane (0 without one).
    """
    H, W = disparity.shape
    lab = labels.ravel().astype(np.int64)
    S = int(lab.max()) + 1
    d = disparity.ravel().astype(np.float64)
    ok = np.isfinite(d)
    y, x = (v.ravel().astype(np.float64) for v in np.mgrid[0:H, 0:W])
    count = np.bincount(lab[ok], minlength=S)
    # start: the constant plane at the segment's (lower) median
    order = np.lexsort((d[ok], lab[ok]))
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    median = d[ok][order][np.minimum(start + (count - 1) // 2, max(ok.sum() - 1, 0))] if ok.any() else np.zeros(S)
    coef = np.stack([np.zeros(S), np.zeros(S), median], 1)
    design = np.stack([x, y, np.ones_like(x)], 1)
    tol = 3.0
    for _ in range(rounds):
        inlier = ok & (np.abs(d - (design * coef[lab]).sum(1)) < tol)
        tol = fit
        w = inlier.astype(np.float64)
        normal = np.stack([np.bincount(lab, w * design[:, i] * design[:, j], S) for i in range(3) for j in range(3)], 1)
        rhs = np.stack([np.bincount(lab, w * design[:, i] * np.nan_to_num(d), S) for i in range(3)], 1)
        solved = np.einsum("sij,sj->si", np.linalg.pinv(normal.reshape(S, 3, 3)), rhs)
        coef = np.where((np.bincount(lab, w, S) >= 3)[:, None], solved, coef)
    plane = (design * coef[lab]).sum(1)
    within = np.bincount(lab, (ok & (np.abs(d - plane) < fit)).astype(np.float64), S)
    share = np.where(count > 0, within / np.maximum(count, 1), 0.0)
    has = count >= min_pixels
    plane = np.where(has[lab], plane, np.nan).reshape(H, W).astype(np.float32)
    return plane, np.where(has, share, 0.0)[lab].reshape(H, W).astype(np.float32)


def _hidden(disparity: np.ndarray, by: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: pixel ``x`` at ``disparity`` is hidden from the right camera by a pixel ``x + k`` of ``by``
    (``by[x + k] − k ≥ disparity − 0.5``, ``k ≥ 1``). NaN in ``by`` hides nothing; NaN ``disparity`` is
    hidden."""
    top = np.nanmax(by) if np.isfinite(by).any() else 0.0
    by = np.nan_to_num(by, nan=-np.inf)
    reach = np.full(by.shape, -np.inf, np.float32)
    for k in range(1, min(by.shape[1], int(math.ceil(top)) + 1)):
        np.maximum(reach[:, :-k], by[:, k:] - k, out=reach[:, :-k])
    return ~(reach < disparity - 0.5)


def _costs_at(left: torch.Tensor, right: torch.Tensor, maps: list[np.ndarray], window: int) -> list[np.ndarray]:
    """Each map's ``window²`` colour SAD against the right image at its rounded disparity: ``(H, W)`` each,
    ``inf`` where a map has no disparity or the patch's centre falls off the right image."""
    H, W = maps[0].shape
    index = [np.where(np.isfinite(m), np.round(m), -1).astype(np.int64) for m in maps]
    out = [np.full((H, W), np.inf, np.float32) for _ in maps]
    top = min(W - 1, max(int(i.max()) for i in index))
    for d in range(top + 1):
        cost = sad_map(left, right, d, window).numpy()
        cost[:, :d] = np.inf
        for i, o in zip(index, out):
            hit = i == d
            o[hit] = cost[hit]
    return out


def _check(disparity: np.ndarray, left: torch.Tensor, right: torch.Tensor, opts: dict[str, Any]) -> None:
    if disparity.ndim != 2 or tuple(left.shape[1:]) != disparity.shape or right.shape != left.shape:
        raise DataError(f"segment_planes: the disparity map ({disparity.shape}) and both images "
                        f"({tuple(left.shape[1:])}, {tuple(right.shape[1:])}) must have one size")
    if (disparity[np.isfinite(disparity)] < 0).any():
        raise DataError("segment_planes: disparities must be >= 0 px (x_right = x - d)")
    bad = [] if opts["window"] >= 1 and opts["window"] % 2 == 1 else ["window"]
    check_plane_options("segment_planes", opts, bad, "an odd window")


def check_plane_options(name: str, opts: dict[str, Any], bad: list[str] | None = None, extra: str = "") -> None:
    """Refuse, in one line naming the function ``name``, options of :data:`PLANES_DEFAULTS` out of range (``bad``:
    the caller's own failed checks, ``extra`` what they expect)."""
    bad = list(bad or [])
    bad += [k for k in ("fit", "jump") if not opts[k] > 0]
    bad += [k for k in ("scales", "sigmas")
            if np.ndim(opts[k]) != 1 or len(opts[k]) == 0 or not np.all(np.asarray(opts[k]) > 0)]
    bad += [k for k in ("inliers", "vote") if not 0 < opts[k] <= 1]
    bad += [k for k in ("min_size", "min_pixels", "rounds") if not opts[k] >= 1]
    bad += [] if opts["margin"] >= 0 else ["margin"]
    if bad:
        raise DataError(f"{name}: expected positive fit and jump, non-empty lists of positive scales and sigmas, "
                        f"0 < inliers, vote <= 1, min_size, min_pixels, rounds >= 1, margin >= 0"
                        f"{' and ' + extra if extra else ''}; check {', '.join(bad)}")


def segment_planes(disparity: np.ndarray, left: np.ndarray, right: np.ndarray, **options: Any) -> np.ndarray:
    """The segment-plane step (module docstring) on a rectified pair: ``(H, W)`` px → ``(H, W)`` px float32, NaN (or
    inf, returned as NaN) = none, kept.

    Args:
        disparity: ``(H, W)`` px of the left view, NaN/inf = none.
        left, right: ``(H, W, 3)`` RGB, uint8/uint16 or float in [0, 1], the disparity map's size.
        options: any of :data:`PLANES_DEFAULTS`.
    """
    opts = merged_options("segment_planes", options, PLANES_DEFAULTS)
    disp, left_t, right_t = pair_arrays(disparity, left, right)
    _check(disp, left_t, right_t, opts)
    if not np.isfinite(disp).any():
        return disp
    votes, values = plane_candidates(disp, left_t.permute(1, 2, 0).numpy(), opts)
    costs = _costs_at(left_t, right_t, [disp, *values], opts["window"])
    for candidate, value, cost in zip(votes, values, costs[1:]):
        seen = ~_hidden(value, np.where(candidate, value, disp)) & np.isfinite(cost)  # inf: outside the frame
        candidate &= ~(seen & (cost > costs[0] + opts["margin"]))
        value[~candidate] = np.nan
    return merge_candidates(disp, votes, values, opts["vote"])


def plane_candidates(disp: np.ndarray, rgb: np.ndarray, opts: dict[str, Any]
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Steps 1–3 before the image's say (module docstring), one entry per segmentation (``scales`` × ``sigmas``):
    ``votes`` ``(H, W)`` bool, the pixels more than ``jump`` nearer than their segment's plane (the plane ≥ 0), and
    ``values`` ``(H, W)`` float32, the plane there, NaN elsewhere. ``disp``: ``(H, W)`` px (or any unit larger
    when nearer, e.g. inverse depth), NaN = none; ``rgb``: ``(H, W, 3)`` float in [0, 1]; ``opts``: the options of
    :data:`PLANES_DEFAULTS` but ``window`` and ``margin``."""
    votes, values = [], []
    for scale in opts["scales"]:
        for sigma in opts["sigmas"]:
            labels = felzenszwalb(rgb, scale=scale, sigma=sigma, min_size=opts["min_size"])
            plane, share = fit_planes(disp, labels, opts["fit"], opts["min_pixels"], opts["rounds"])
            with np.errstate(invalid="ignore"):
                candidate = (np.isfinite(disp) & (share >= opts["inliers"]) & (plane >= 0)
                             & (disp - plane > opts["jump"]))
            votes.append(candidate)
            values.append(np.where(candidate, plane, np.nan).astype(np.float32))
    return votes, values


def merge_candidates(disp: np.ndarray, votes: list[np.ndarray], values: list[np.ndarray], vote: float) -> np.ndarray:
    """Step 4: the median of a pixel's candidate planes (``values``, NaN = none) where at least ``vote`` of the
    segmentations made it one (``votes``, the image's veto applied), ``disp`` elsewhere: ``(H, W)`` float32."""
    agree = np.mean(votes, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels no segmentation moved: all-NaN medians
        median = np.nanmedian(np.stack(values), axis=0)
    return np.where((agree >= vote - 1e-6) & (agree > 0), median, disp).astype(np.float32)


def planes_disparity(data: dict[str, Any], depth: torch.Tensor | None = None, full: bool = False) -> np.ndarray:
    """:func:`segment_planes` on Middlebury: ``(H, W)`` px at ``data["size"]`` in full-size px, or with ``full=True``
    the full-size map (741×500, less any crop).

    Default: SGBM's full-size disparity after the edge side choice, at full size (sampled at the grid's full-size
    pixels unless ``full``). With ``depth`` (``(H, W)`` mm at ``data["size"]``, 0 = hole; e.g. the plane sweep's
    after the candidate search): at the grid itself, with the grid's images (``full``: then nearest-upsampled,
    :func:`deltaz.io.middlebury.resize_nearest`). ``data``: :func:`deltaz.io.middlebury.load_motorcycle`'s dict.
    """
    cal = data["calibration"]
    full_h, full_w = data["grey_left_full"].shape
    if depth is not None:
        if tuple(depth.shape) != tuple(data["size"]):
            raise DataError(f"planes_disparity: depth is {tuple(depth.shape)}, expected the scene's size "
                            f"{data['size']}")
        grid = depth_to_disparity(depth.float().numpy(), cal["f_px"], cal["baseline_mm"], cal["doffs_px"])
        grid = np.maximum(grid, 0)  # NaN (holes) stays NaN
        sx = data["size"][1] / full_w  # full-size px -> grid px (rows and columns scale alike here)
        images = [data[k].permute(1, 2, 0).numpy() for k in ("image_left", "image_right")]
        planes = segment_planes((grid * sx).astype(np.float32), *images) / sx
        return resize_nearest(planes, (full_h, full_w)) if full else planes
    sided = side_disparity(data, full=True).numpy()
    planes = segment_planes(sided, data["rgb_left_full"], data["rgb_right_full"])
    return planes if full else resize_nearest(planes, data["size"])


def planes_depth(data: dict[str, Any], depth: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`planes_disparity` as depth: ``(H, W)`` float32 mm, 0 = hole (``Z = f·B·s / (d + doffs)``)."""
    cal = data["calibration"]
    return torch.from_numpy(disparity_to_depth(planes_disparity(data, depth), cal["f_px"], cal["baseline_mm"],
                                               cal["doffs_px"]))
