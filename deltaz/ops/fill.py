"""Classical hole filling of depth maps (mm, 0 = hole): the refiner's optional hole pre-fill
(:mod:`deltaz.model`, ``prefill_holes``) and the hole handling of the baselines (:mod:`deltaz.ops.baselines`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["box_sum", "fill_holes"]


def box_sum(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Sum over each ``k×k`` window of ``x (B, C, H, W)``, zero padding (so padding adds nothing)."""
    C = x.shape[1]
    weight = torch.ones(C, 1, kernel_size, kernel_size, dtype=x.dtype, device=x.device)
    return F.conv2d(x, weight, padding=kernel_size // 2, groups=C)


def fill_holes(depth: torch.Tensor, kernel_size: int = 3, max_iters: int = 1) -> torch.Tensor:
    """Fill holes of ``depth (B, H, W)`` (mm, 0 = hole) with the mean of the valid pixels in their ``k×k`` window.

    Repeated ``max_iters`` times (each pass also uses the pixels filled by the previous one), so a
    hole up to about ``max_iters · k//2`` pixels from a valid pixel is filled; the rest stay 0.
    Valid pixels are never changed.
    """
    out = depth.clone()
    for _ in range(max_iters):
        valid = (out > 0).to(out.dtype).unsqueeze(1)
        if bool(valid.all()) or not bool(valid.any()):
            break
        total = box_sum(out.unsqueeze(1) * valid, kernel_size)
        count = box_sum(valid, kernel_size)
        mean = (total / count.clamp_min(1.0)).squeeze(1)
        out = torch.where((out > 0) | (count.squeeze(1) < 0.5), out, mean)
    return out
