"""Stereo half-occlusions: what a two-view matcher puts where the other camera cannot see.

In a rectified pair, the background beside a nearer object's edge is hidden from the other camera: a
*half-occluded* band as wide as the disparity jump, on the side of the object away from the partner camera
(left of the object when the partner is to the right). Seen through a narrow gap, the whole gap can be
hidden. A matcher without a left-right check fills that band, mostly with the foreground's depth (its
smoothness term and aggregation window prefer it): on Middlebury's Motorcycle, OpenCV's SGBM puts the
foreground's depth into such bands, and 4–6 % of the pixels, off by more than 20 mm, carry three quarters of its
error. The depth alone cannot tell the band from the object; the image can (the band has the background's colour).

:func:`occlusion_fill` simulates that on a ground-truth depth map, for any scene scale (disparities are drawn in
pixels at the map's median depth, so the band widths do not depend on the units).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from deltaz.core.errors import ConfigError, DataError

__all__ = ["STEREO_PRESET", "occlusion_fill", "half_occlusion"]


def _uniform(n: int, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    device = like.device if generator is None else generator.device
    return torch.rand(n, generator=generator, device=device, dtype=like.dtype).to(like.device)


def half_occlusion(depth: torch.Tensor, disparity: torch.Tensor, max_band_px: int = 32
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels hidden from a partner camera to the **right**, and the depth of what hides them.

    Args:
        depth: ``(B, H, W)`` z-depth (any unit), 0 = no value.
        disparity: ``(B, H, W)`` px towards the partner, larger = nearer (any value where ``depth`` is 0).
        max_band_px: the widest band looked for.
    Returns:
        ``occluded (B, H, W)`` bool: a valid pixel with a valid pixel ``k`` px to its right
        (``1 ≤ k ≤ max_band_px``) whose disparity is larger by ``≥ k`` (it lands on or past it in the partner);
        ``occluder (B, H, W)``: the nearest such pixel's depth (``inf`` where not occluded).
    """
    valid = depth > 0
    disp = torch.where(valid, disparity, torch.full_like(disparity, -math.inf))
    span = (disp[valid].max() - disp[valid].min()).item() if valid.any() else 0.0
    occluder = torch.full_like(depth, math.inf)
    for k in range(1, min(int(max_band_px), math.ceil(span), depth.shape[-1] - 1) + 1):
        right_disp = F.pad(disp[..., k:], (0, k), value=-math.inf)
        right_depth = F.pad(depth[..., k:], (0, k), value=math.inf)
        hides = valid & (right_disp - disp >= k)
        occluder = torch.where(hides, torch.minimum(occluder, right_depth), occluder)
    return torch.isfinite(occluder), occluder


def occlusion_fill(
    depth: torch.Tensor,
    generator: torch.Generator | None = None,
    disparity_px: tuple[float, float] = (4.0, 24.0),
    fill_prob: float = 0.8,
    max_band_px: int = 32,
) -> torch.Tensor:
    """A rectified stereo matcher's half-occlusion fill, one virtual partner camera per map.

    Per map ``(H, W)``: the partner is to the right or to the left (a coin), with disparity ``D ~ U(disparity_px)``
    px at the map's median valid depth, so a pixel's disparity is ``D · z_med / z``. The half-occluded pixels
    (:func:`half_occlusion`) take the depth of what hides them (the fattened foreground) with probability
    ``fill_prob`` per map, and become holes (0) otherwise (a matcher with a left-right check).

    Args:
        depth: ``(B, H, W)`` ground-truth z-depth, mm, 0 = no value.
    Returns:
        ``(B, H, W)``: the same depth with the bands filled or emptied; nothing else changes.
    """
    if depth.dim() != 3:
        raise DataError(f"occlusion_fill: depth must be (B, H, W), got shape {tuple(depth.shape)}")
    lo, hi = (float(v) for v in disparity_px)
    if not 0 <= lo <= hi or not 0 <= fill_prob <= 1 or int(max_band_px) < 1:
        raise ConfigError(f"occlusion_fill: expected 0 <= disparity_px[0] <= disparity_px[1], 0 <= fill_prob <= 1 "
                          f"and max_band_px >= 1, got {disparity_px!r}, {fill_prob!r}, {max_band_px!r}")
    B = depth.shape[0]
    draws = [_uniform(B, generator, depth) for _ in range(3)]
    valid = depth > 0
    z_med = torch.stack([d[v].median() if v.any() else d.new_tensor(1.0) for d, v in zip(depth, valid)])
    disparity = (lo + (hi - lo) * draws[0]).view(B, 1, 1) * z_med.view(B, 1, 1) / depth.clamp_min(1e-6)
    flip = (draws[1] < 0.5).view(B, 1, 1)  # partner to the left: mirror, look right, mirror back
    mirrored = torch.where(flip, depth.flip(-1), depth)
    occluded, occluder = half_occlusion(mirrored, torch.where(flip, disparity.flip(-1), disparity), max_band_px)
    fill = (draws[2] < fill_prob).view(B, 1, 1)
    out = torch.where(occluded, torch.where(fill, occluder, torch.zeros_like(mirrored)), mirrored)
    return torch.where(flip, out.flip(-1), out)


#: The ``stereo`` preset of :mod:`deltaz.ops.corrupt`: half-occlusion fills (disparities 4–24 px at the median
#: depth: baselines of 2–12 % of the depth at a 200 px focal length), a little per-pixel fattening, matching
#: noise and a few holes along edges.
STEREO_PRESET = (
    ("occlusion_fill", {"disparity_px": (4.0, 24.0), "fill_prob": 0.8}),
    ("fatten_edges", {"fatten_width_px": 1, "jump_mm": 10.0, "fatten_prob": 0.5}),
    ("depth_noise", {"sigma0_mm": 0.5, "sigma_quad_mm": 0.5}),
    ("edge_holes", {"hole_width_px": 1, "jump_mm": 10.0, "hole_prob_edge": 0.1, "hole_prob_base": 0.002,
                    "hole_blob_px": 2}),
)
