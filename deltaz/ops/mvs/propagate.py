"""Multi-view depth propagation: the candidate search of :mod:`deltaz.ops.mvs.search` for calibrated views.

Each pixel of a reference depth map tries the depths of its neighbours (a ``(2r + 1)²`` window, every
``stride``-th pixel) and keeps the one whose photometric error against the source views is lowest, when that
error is lower than its own depth's by more than ``margin``; elsewhere it keeps its own. A candidate is the
whole map shifted by one offset, so the error at a pixel judges the neighbour's surface patch moved onto it:
PatchMatch's spatial propagation, one pass. The error is :func:`deltaz.ops.selfsup.photometric_loss_map`'s
(SSIM + L1, exposure-normalised, the minimum over the sources that see the point, the sources' depths deciding
visibility), the one the photometric gate uses.

A photometric improvement alone also moves right depth: on the design scans the search made 2–8 % of the
covered pixels more than 1 mm worse (3–11 % with the refiner after it). So a switch must also be backed by the
geometry (``agree``, default): it must raise the number of source views whose own depths agree with the pixel
(MVSNet's check, :func:`deltaz.ops.metrics.multiview_consistency`: 1 px round trip, 1 % depth) — also for a pixel
no source agrees with (an outlier of its own): then at least one source must agree with the new depth. (Until
2026-12-05 such a pixel switched on the photometry alone; without that, on five synthetic design sets, the good
pixels' error after the search and the refiner was lower on all five at the same covered error, within ±0.41 %:
docs/EXPERIMENTS.md, "The propagation's exception".)

What it fixes: a plane sweep's winner-take-all leaves stretches at a wrong depth where a neighbour's depth
explains the sources better (texture-poor surfaces next to textured ones). What it cannot: a pixel whose depth
no source sees — out of frame, or behind the surfaces the sources' depths show — keeps it; holes stay holes
(the refiner fills them).

Convention: z-depth in mm, 0 = hole; the photometric error is in its own units (~[0, 1]).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.ops.metrics import multiview_consistency
from deltaz.ops.selfsup import photometric_loss_map

__all__ = ["PROPAGATE_DEFAULTS", "propagate_depth"]

#: Defaults of :func:`propagate_depth`, chosen on design data (raw plane-sweep input, 4 sources, the demo's
#: checkpoint after the search; docs/EXPERIMENTS.md, "make demo runs and the multi-view search"): the demo's
#: validation scans ``scan9`` and ``scan10`` for radius, stride and margin, then with two more synthetic sets (seeds
#: 5 and 31, 3 scans each) for the guard. The rule: harm ≤ 3 % on every design set, then the lowest covered MAE of
#: ``search+deltaz``.
PROPAGATE_DEFAULTS = {"radius": 3, "stride": 1, "margin": 0.05, "agree": True}


def _shifted(depth: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``depth (B, H, W)`` moved so that pixel ``(y, x)`` holds ``(y + dy, x + dx)``'s value; 0 (a hole) beyond."""
    H, W = depth.shape[-2:]
    pad = max(abs(dy), abs(dx))
    padded = F.pad(depth[:, None], (pad,) * 4, value=0.0)[:, 0]
    return padded[:, pad + dy:pad + dy + H, pad + dx:pad + dx + W]


@torch.no_grad()
def propagate_depth(depth: torch.Tensor, image_ref: torch.Tensor, image_src: torch.Tensor, multiview: MultiView,
                    radius: int = PROPAGATE_DEFAULTS["radius"], stride: int = PROPAGATE_DEFAULTS["stride"],
                    margin: float = PROPAGATE_DEFAULTS["margin"], agree: bool = PROPAGATE_DEFAULTS["agree"]
                    ) -> torch.Tensor:
    """One pass of neighbour-depth search against the sources (module docstring): ``(B, H, W)`` mm → the same.

    Args:
        depth: ``(B, H, W)`` reference z-depth, mm, 0 = hole.
        image_ref: ``(B, 3, H, W)`` in [0, 1]; image_src: ``(B, S, 3, H', W')`` in [0, 1].
        multiview: the reference's and sources' cameras (:class:`deltaz.core.batch.MultiView`), with the
            sources' depths (the visibility test and ``agree``; ``depth_src`` None: neither).
        radius, stride: the neighbours tried, px. margin: the photometric improvement required (≥ 0).
        agree: the geometric backing of each switch (module docstring); needs ``multiview.depth_src``.
    """
    if depth.dim() != 3 or image_ref.shape[0] != depth.shape[0] or image_ref.shape[-2:] != depth.shape[-2:]:
        raise DataError(f"propagate_depth: depth (B, H, W) and image_ref (B, 3, H, W) of one size expected, got "
                        f"{tuple(depth.shape)} and {tuple(image_ref.shape)}")
    if radius < 0 or stride < 1 or not margin >= 0:
        raise DataError(f"propagate_depth: radius >= 0, stride >= 1 and margin >= 0 expected, got {radius}, "
                        f"{stride}, {margin}")
    if agree and multiview.depth_src is None:
        raise DataError("propagate_depth: agree=True needs the sources' depths (multiview.depth_src)")
    depth = depth.float()
    own, seen = photometric_loss_map(depth, image_ref, image_src, multiview, mask_ssim=True)
    best_error = torch.where(seen, own, torch.full_like(own, math.inf))
    best = depth.clone()
    for dy in range(-radius, radius + 1, stride):
        for dx in range(-radius, radius + 1, stride):
            if dy == 0 and dx == 0:
                continue
            candidate = _shifted(depth, dy, dx)
            error, counts = photometric_loss_map(candidate, image_ref, image_src, multiview, mask_ssim=True)
            better = counts & (candidate > 0) & (error < best_error)
            best_error = torch.where(better, error, best_error)
            best = torch.where(better, candidate, best)
    keep = seen & (depth > 0) & (best_error < own - margin)
    if agree:
        n_own = multiview_consistency(depth, multiview).n_consistent
        keep = keep & (multiview_consistency(best, multiview).n_consistent > n_own)
    return torch.where(keep, best, depth)
