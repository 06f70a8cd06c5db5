"""Edge side choice: a pixel beside a disparity edge takes the side whose colours match its own.

A matcher's window that straddles a depth edge gives the pixels beside the edge the disparity of the side with
the stronger texture (foreground fattening), so the edge lands a few pixels off the colour edge. Here each pixel
whose ``(2r + 1)²`` window holds disparities more than ``gap`` px apart splits the window at the middle of its
disparity range into a near and a far side; it takes the other side's median disparity where the ``k``-th
nearest colour (L1 over RGB) among that side's pixels is nearer its own colour than ``ratio`` × the ``k``-th
nearest among its own side's (a side with fewer than ``k`` pixels matches no colour). Elsewhere it keeps its
disparity; holes stay holes. One pass, no training, the left image only.

It works where the matcher ran: at the matcher's resolution, reading its disparity and image there, and for a
coarser grid at the full-size pixels the grid keeps (``rows``, ``cols``). Defaults chosen on the left half of
Middlebury's Motorcycle with OpenCV SGBM's full-size disparity (radius 3–8, gap 2–5 px, k 1–15, ratio 0.5–1).

Convention: disparities in px of the image given (``x_right = x − d``), NaN = none.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deltaz.core.errors import DataError
from deltaz.io.middlebury import disparity_to_depth, fixed_point_to_disparity, nearest_index, sgbm_disparity

__all__ = ["SIDE_DEFAULTS", "side_choice", "side_depth", "side_disparity"]

#: Defaults of :func:`side_choice` (module docstring).
SIDE_DEFAULTS = {"radius": 6, "gap": 3.0, "k": 10, "ratio": 0.85}
#: Memory budget (bytes) of the window tensors: larger images are decided in strips of rows.
SIDE_BUDGET_BYTES = 256 * 2**20


def _check(disparity: torch.Tensor, image: torch.Tensor, radius: int, gap: float, k: int, ratio: float) -> None:
    if disparity.dim() != 2 or image.dim() != 3 or tuple(image.shape[1:]) != tuple(disparity.shape):
        raise DataError(f"side_choice: expected an (H, W) disparity and a (C, H, W) image of its size, got "
                        f"{tuple(disparity.shape)} and {tuple(image.shape)}")
    if radius < 1 or not gap > 0 or not 1 <= k <= (2 * radius + 1) ** 2 or not ratio > 0:
        raise DataError(f"side_choice: radius >= 1, gap > 0, 1 <= k <= (2 radius + 1)^2 and ratio > 0 expected, "
                        f"got {radius}, {gap}, {k}, {ratio}")


def _windows(padded: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, radius: int) -> torch.Tensor:
    """``(C, K, h, w)``: the ``K = (2r + 1)²`` values around each pixel ``(rows[i], cols[j])`` of ``padded``
    (``(C, H + 2r, W + 2r)``, padded by ``r``)."""
    offsets = torch.arange(2 * radius + 1)
    r = rows[None, :] + offsets[:, None]  # (2r+1, h) in padded coordinates
    c = cols[None, :] + offsets[:, None]  # (2r+1, w)
    values = padded[:, r[:, None, :, None], c[None, :, None, :]]  # (C, 2r+1, 2r+1, h, w)
    return values.flatten(1, 2)


def _decide(disp: torch.Tensor, colour: torch.Tensor, own: torch.Tensor, own_colour: torch.Tensor, gap: float,
            k: int, ratio: float) -> torch.Tensor:
    """One strip: ``disp (K, h, w)`` px (NaN = none), ``colour (C, K, h, w)``, the pixels' own ``(h, w)`` and
    ``(C, h, w)`` → ``(h, w)`` px."""
    valid = torch.isfinite(disp)
    high = torch.where(valid, disp, torch.full_like(disp, -math.inf)).amax(0)
    low = torch.where(valid, disp, torch.full_like(disp, math.inf)).amin(0)
    middle = (high + low) / 2
    near, far = valid & (disp > middle), valid & (disp <= middle)
    distance = (colour - own_colour[:, None]).abs().sum(0)
    inf = torch.full_like(distance, math.inf)
    to_near = torch.where(near, distance, inf).kthvalue(k, 0).values
    to_far = torch.where(far, distance, inf).kthvalue(k, 0).values
    nan = torch.full_like(disp, math.nan)
    near_value = torch.where(near, disp, nan).nanmedian(0).values
    far_value = torch.where(far, disp, nan).nanmedian(0).values
    edge = torch.isfinite(own) & (high - low > gap)
    own_near = own > middle
    go_far = edge & own_near & (to_far < ratio * to_near)
    go_near = edge & ~own_near & (to_near < ratio * to_far)
    return torch.where(go_far, far_value, torch.where(go_near, near_value, own))


def side_choice(disparity: torch.Tensor, image: torch.Tensor, rows: torch.Tensor | None = None,
                cols: torch.Tensor | None = None, radius: int = SIDE_DEFAULTS["radius"],
                gap: float = SIDE_DEFAULTS["gap"], k: int = SIDE_DEFAULTS["k"], ratio: float = SIDE_DEFAULTS["ratio"],
                budget_bytes: int = SIDE_BUDGET_BYTES) -> torch.Tensor:
    """The edge side choice (module docstring) at pixels ``(rows[i], cols[j])``: ``(h, w)`` px, NaN = none.

    Args:
        disparity: ``(H, W)`` px, NaN/inf = none. image: ``(C, H, W)`` float in [0, 1], the disparity's size.
        rows, cols: the pixels decided (default: all, ``h, w = H, W``), e.g. a coarse grid's full-size pixels.
        radius, gap, k, ratio: :data:`SIDE_DEFAULTS`. budget_bytes: strips of rows above it (the same result).
    """
    _check(disparity, image, radius, gap, k, ratio)
    H, W = disparity.shape
    rows = torch.arange(H) if rows is None else rows.long()
    cols = torch.arange(W) if cols is None else cols.long()
    disp = disparity.float()
    disp = torch.where(torch.isfinite(disp), disp, torch.full_like(disp, math.nan))
    pad = (radius,) * 4
    disp_pad = F.pad(disp[None, None], pad, value=math.nan)[0]
    image_pad = F.pad(image.float()[None], pad)[0]
    own_all = disp[rows][:, cols]
    K, C = (2 * radius + 1) ** 2, image.shape[0]
    step = max(1, budget_bytes // (4 * K * len(cols) * (C + 8)))
    out = []
    for i in range(0, len(rows), step):
        strip = rows[i:i + step]
        colour = _windows(image_pad, strip, cols, radius)
        own_colour = image.float()[:, strip][:, :, cols]
        out.append(_decide(_windows(disp_pad, strip, cols, radius)[0], colour, own_all[i:i + step], own_colour,
                           gap, k, ratio))
    return torch.cat(out) if out else own_all


def side_depth(data: dict[str, Any]) -> torch.Tensor:
    """:func:`side_choice` on Middlebury's full-size SGBM disparity and left image, at the grid's pixels:
    ``(H, W)`` float32 mm at ``data["size"]``, 0 = hole. ``data``: :func:`deltaz.io.middlebury.load_motorcycle`'s
    dict; depth and disparity convert with the scene's calibration (``Z = f·B·s / (d + doffs)``)."""
    return torch.from_numpy(disparity_to_depth(side_disparity(data).numpy(), *_calibration(data)))


def side_disparity(data: dict[str, Any], full: bool = False) -> torch.Tensor:
    """SGBM's full-size disparity after :func:`side_choice` (px): at the grid's full-size pixels, ``(H, W)`` at
    ``data["size"]``, or with ``full=True`` every pixel, the full-size map."""
    full_h, full_w = data["grey_left_full"].shape
    rows = None if full else torch.from_numpy(nearest_index(full_h, data["size"][0]))
    cols = None if full else torch.from_numpy(nearest_index(full_w, data["size"][1]))
    disparity = torch.from_numpy(np.ascontiguousarray(fixed_point_to_disparity(sgbm_disparity(data))))
    image = torch.from_numpy(data["rgb_left_full"]).float().permute(2, 0, 1) / 255.0
    return side_choice(disparity, image, rows, cols)


def _calibration(data: dict[str, Any]) -> tuple[float, float, float]:
    cal = data["calibration"]
    return cal["f_px"], cal["baseline_mm"], cal["doffs_px"]
