"""Plane sweep for one reference view: ZNCC cost volume, aggregation, winner-take-all, confidence.

Conventions (DESIGN.md §1): depths are z-depths in mm, ``0`` = hole; ``K`` is 3×3 for the image it
travels with; ``E`` is world-to-camera ``[R | t]``; every transform, projection and sample comes from
:mod:`deltaz.core.geometry` (the plane points are ``origin + d · step`` in each source camera, both built
with its helpers, then :func:`~deltaz.core.geometry.project_points` and :func:`~deltaz.core.geometry.sample_pixels`).

The planes are fronto-parallel to the reference camera, ``D`` of them over ``[depth_min, depth_max]``,
uniform in depth by default (``spacing="depth"``, MVSNet's convention: a constant step in mm, the
quantisation the ``mvs`` corruption preset mimics) or uniform in inverse depth (``spacing="inverse"``:
a constant step in disparity, better for scenes whose depth range spans a large ratio).

Memory is bounded by ``chunk_planes``: only that many planes × sources are warped at a time; what is
kept whole is the aggregated cost volume ``(D, H, W)`` (float32: 252 MB at 640×512×192). The result
does not depend on the chunk size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from deltaz.core.errors import ConfigError, DataError
from deltaz.core.geometry import (
    Z_EPS,
    backproject_depth,
    camera_center,
    camera_to_world,
    project_points,
    reproject,
    sample_pixels,
    world_to_camera,
)
from deltaz.io.middlebury import LUMA

__all__ = ["SweepResult", "plane_depths", "plane_sweep", "SWEEP_DEFAULTS", "box_mean", "gray", "reference_stats",
           "zncc_cost"]

#: The defaults of :func:`plane_sweep`'s algorithm options (what :func:`deltaz.ops.mvs.sweep_scan` records).
SWEEP_DEFAULTS = {
    "window": 7,
    "agg_window": 5,
    "top_k": None,
    "spacing": "depth",
    "temperature": 0.1,
    "min_confidence": 0.3,
    "min_sources": 1,
}

#: Cost of a plane no source sees: ZNCC 0, "no information".
_UNSEEN_COST = 1.0
#: Variance floor of a ZNCC window (intensities in [0, 1]): flatter windows give a ZNCC near 0.
_VAR_EPS = 1e-4
#: Warped pixels × sources per chunk when ``chunk_planes`` is None: ~4 MB per float32 map, small
#: enough for the allocator to reuse memory (larger chunks were slower on CPU: page faults).
_CHUNK_ELEMENTS = 1 << 20


@dataclass
class SweepResult:
    """What :func:`plane_sweep` returns (tensors on the inputs' device).

    Attributes:
        depth: ``(H, W)`` float32 z-depth in mm of the reference view, ``0`` = hole.
        confidence: ``(H, W)`` in [0, 1]: the softmax probability of the winning plane and its two
            neighbours; given at every pixel, holes included.
        num_sources: ``(H, W)`` int64, how many source views see the pixel at the winning depth.
        cost: ``(D, H, W)`` aggregated matching cost (``1 − ZNCC``, in [0, 2]) when ``return_cost``.
        plane_depths: ``(D,)`` plane depths in mm when ``return_cost``.
    """

    depth: torch.Tensor
    confidence: torch.Tensor
    num_sources: torch.Tensor
    cost: torch.Tensor | None = None
    plane_depths: torch.Tensor | None = None


def plane_depths(depth_min_mm: float, depth_max_mm: float, num_planes: int, spacing: str = "depth",
                 device=None) -> torch.Tensor:
    """``(num_planes,)`` float32 plane depths in mm, first ``depth_min_mm``, last ``depth_max_mm``.

    ``spacing="depth"``: a constant step ``(max − min)/(D − 1)`` mm; ``"inverse"``: constant in ``1/z``.
    """
    _check_range(depth_min_mm, depth_max_mm, num_planes, spacing)
    return _index_to_depth(torch.arange(num_planes, dtype=torch.float64, device=device),
                           depth_min_mm, depth_max_mm, num_planes, spacing).float()


def _index_to_depth(index: torch.Tensor, depth_min: float, depth_max: float, num_planes: int,
                    spacing: str) -> torch.Tensor:
    """Depth (mm) at a fractional plane index (0 … D−1), linear in depth or in inverse depth."""
    t = index / (num_planes - 1)
    if spacing == "depth":
        return depth_min + t * (depth_max - depth_min)
    return 1.0 / (1.0 / depth_min + t * (1.0 / depth_max - 1.0 / depth_min))


def _check_range(depth_min_mm, depth_max_mm, num_planes, spacing) -> None:
    if not (isinstance(num_planes, int) and not isinstance(num_planes, bool) and num_planes >= 2):
        raise ConfigError(f"num_planes: expected an integer >= 2, got {num_planes!r}")
    if not (math.isfinite(float(depth_min_mm)) and math.isfinite(float(depth_max_mm))
            and 0 < float(depth_min_mm) < float(depth_max_mm)):
        raise ConfigError(f"depth_min_mm, depth_max_mm: expected 0 < min < max (mm), got {depth_min_mm}, "
                          f"{depth_max_mm}")
    if spacing not in ("depth", "inverse"):
        raise ConfigError(f"spacing: expected 'depth' or 'inverse', got {spacing!r}")


def _check_options(window, agg_window, top_k, temperature, min_confidence, min_sources, chunk_planes, S) -> None:
    for name, value in (("window", window), ("agg_window", agg_window)):
        if not (isinstance(value, int) and value >= 1 and value % 2 == 1):
            raise ConfigError(f"{name}: expected an odd integer >= 1 (pixels), got {value!r}")
    if top_k is not None and not (isinstance(top_k, int) and 1 <= top_k):
        raise ConfigError(f"top_k: expected None or an integer >= 1, got {top_k!r}")
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ConfigError(f"temperature: expected a positive number (cost units), got {temperature!r}")
    if not (isinstance(min_confidence, (int, float)) and 0 <= min_confidence <= 1):
        raise ConfigError(f"min_confidence: expected a number in [0, 1], got {min_confidence!r}")
    if not (isinstance(min_sources, int) and 0 <= min_sources <= S):
        raise ConfigError(f"min_sources: expected an integer in [0, {S}] (the number of sources), got {min_sources!r}")
    if chunk_planes is not None and not (isinstance(chunk_planes, int) and chunk_planes >= 1):
        raise ConfigError(f"chunk_planes: expected None or an integer >= 1, got {chunk_planes!r}")


def _as_tensor(x, name: str, shape_text: str, ndims: tuple[int, ...], device) -> torch.Tensor:
    if not torch.is_tensor(x):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError):
            raise DataError(f"{name}: expected a tensor {shape_text}, got {type(x).__name__}") from None
    if x.dim() not in ndims:
        raise DataError(f"{name}: expected shape {shape_text}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.float()
    if not torch.isfinite(x).all():
        raise DataError(f"{name}: expected finite values, got NaN/inf")
    return x.to(device=device, dtype=torch.float32)


def _check_inputs(ref_image, K_ref, E_ref, src_images, K_src, E_src):
    """Validated float32 tensors on ``ref_image``'s device: ref (C,H,W), K (3,3), E (3,4), src (S,C,H',W')."""
    device = ref_image.device if torch.is_tensor(ref_image) else "cpu"
    ref = _as_tensor(ref_image, "ref_image", "(3, H, W) or (1, H, W)", (3,), device)
    src = _as_tensor(src_images, "src_images", "(S, C, H, W)", (4,), device)
    if ref.shape[0] not in (1, 3) or src.shape[1] != ref.shape[0]:
        raise DataError(f"ref_image, src_images: expected 1 or 3 channels, the same in both, got "
                        f"{tuple(ref.shape)} and {tuple(src.shape)}")
    S = src.shape[0]
    K_ref = _as_tensor(K_ref, "K_ref", "(3, 3)", (2,), device)
    E_ref = _as_tensor(E_ref, "E_ref", "(3, 4) world-to-camera", (2,), device)
    K_src = _as_tensor(K_src, "K_src", f"(S, 3, 3) with S = {S}", (3,), device)
    E_src = _as_tensor(E_src, "E_src", f"(S, 3, 4) with S = {S}", (3,), device)
    if K_ref.shape != (3, 3) or K_src.shape != (S, 3, 3):
        raise DataError(f"K_ref, K_src: expected (3, 3) and ({S}, 3, 3), got {tuple(K_ref.shape)} and "
                        f"{tuple(K_src.shape)}")
    if E_ref.shape[-2:] not in ((3, 4), (4, 4)) or E_src.shape[0] != S or E_src.shape[-2:] not in ((3, 4), (4, 4)):
        raise DataError(f"E_ref, E_src: expected (3, 4) and ({S}, 3, 4) world-to-camera, got {tuple(E_ref.shape)} "
                        f"and {tuple(E_src.shape)}")
    if S < 1 or ref.shape[-1] < 2 or ref.shape[-2] < 2:
        raise DataError(f"src_images, ref_image: expected at least one source and H, W >= 2, got "
                        f"{tuple(src.shape)} and {tuple(ref.shape)}")
    return ref, K_ref, E_ref[:3], src, K_src, E_src[:, :3]


def gray(images: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` → ``(N, 1, H, W)``: Rec. 601 luminance for C = 3, unchanged for C = 1."""
    if images.shape[1] == 1:
        return images
    return (images * images.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


def _box_1d(x: torch.Tensor, size: int, dim: int) -> torch.Tensor:
    """Sum over a centred window of ``size`` along ``dim`` (3 = W, 2 = H) from a cumulative sum, zero-padded."""
    pad, n = size // 2, x.shape[dim]
    padding = (pad + 1, pad, 0, 0) if dim == 3 else (0, 0, pad + 1, pad)
    total = torch.cumsum(F.pad(x, padding), dim=dim)
    return total.narrow(dim, size, n) - total.narrow(dim, 0, n)


def box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Mean over a ``size × size`` window of ``(N, C, H, W)``; at the borders, the mean of what exists.

    Separable running sums: the cost does not grow with ``size``.
    """
    if size == 1:
        return x
    ones = torch.ones(1, 1, *x.shape[-2:], dtype=x.dtype, device=x.device)
    count = _box_1d(_box_1d(ones, size, 3), size, 2)
    return _box_1d(_box_1d(x, size, 3), size, 2) / count


def _plane_frame(H, W, K_ref, E_ref, E_src):
    """The reference rays in each source camera: ``origin (S, 1, 1, 3)`` (the reference centre) and
    ``step (S, H, W, 3)``, so that the point of reference pixel (u, v) at z-depth ``d`` is
    ``origin + d · step`` in source-camera coordinates (mm). Built from :mod:`deltaz.core.geometry` only."""
    S = E_src.shape[0]
    unit = backproject_depth(torch.ones(S, H, W, dtype=K_ref.dtype, device=K_ref.device), K_ref)
    at_one = world_to_camera(camera_to_world(unit, E_ref), E_src)
    origin = world_to_camera(camera_center(E_ref).expand(S, 3), E_src).view(S, 1, 1, 3)
    return origin, at_one - origin


def _warp_planes(src_gray, depths, frame, K_src):
    """Source images seen from the reference through each plane.

    Args: ``src_gray (S, 1, H', W')``, ``depths (P,)`` mm, ``frame`` from :func:`_plane_frame`.
    Returns ``warped (S, P, H, W)`` and ``valid (S, P, H, W)``: the plane point is in front of the source
    camera and inside its image, the test of :func:`deltaz.core.geometry.reproject`.
    """
    origin, step = frame
    (S, H, W), P = step.shape[:3], depths.numel()
    # the rigid transform is affine, so the plane points need no per-plane backprojection
    points = origin.unsqueeze(1) + depths.view(1, P, 1, 1, 1) * step.unsqueeze(1)  # (S, P, H, W, 3)
    uv, z = project_points(points, K_src)
    Hs, Ws = src_gray.shape[-2:]
    u, v = uv[..., 0], uv[..., 1]
    valid = (z > Z_EPS) & (u >= -0.5) & (u <= Ws - 0.5) & (v >= -0.5) & (v <= Hs - 0.5)
    # planes stacked along the rows: one grid_sample per source image, no copies of the images
    warped = sample_pixels(src_gray, uv.view(S, P * H, W, 2))
    return warped.view(S, P, H, W), valid


def reference_stats(ref_gray: torch.Tensor, window: int, var_eps: float = _VAR_EPS
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's window mean and variance (at least ``var_eps``) for :func:`zncc_cost`: ``(1, 1, H, W)`` → two
    ``(1, H, W)``."""
    stats = box_mean(torch.cat([ref_gray, ref_gray * ref_gray], dim=1), window)
    mean = stats[:, 0]
    return mean, (stats[:, 1] - mean * mean).clamp_min(var_eps)


def zncc_cost(ref_gray, ref_mean, ref_var, warped, window, var_eps: float = _VAR_EPS):
    """``1 − ZNCC`` over ``window × window`` windows: ``warped (S, P, H, W)`` → ``(S, P, H, W)`` in [0, 2];
    variances below ``var_eps`` (flat windows) count as ``var_eps``."""
    S, P, H, W = warped.shape
    w = warped.reshape(S * P, 1, H, W)
    stats = box_mean(torch.cat([w, w * w, w * ref_gray], dim=1), window)
    mean, sq, cross = stats[:, 0], stats[:, 1], stats[:, 2]
    cov = cross - mean * ref_mean
    var = (sq - mean * mean).clamp_min(var_eps)
    ncc = cov / torch.sqrt(var * ref_var)
    return (1.0 - ncc.clamp(-1.0, 1.0)).view(S, P, H, W)


def _aggregate_sources(cost: torch.Tensor, valid: torch.Tensor, top_k: int) -> torch.Tensor:
    """Mean of the ``top_k`` lowest costs among the sources that see the pixel: ``(S, P, H, W)`` → ``(P, H, W)``.

    Robust to occlusion (a source that sees something else has a high cost and is dropped); a plane
    no source sees gets the neutral cost 1.
    """
    k = min(top_k, cost.shape[0])
    masked = torch.where(valid, cost, torch.full_like(cost, float("inf")))
    best = torch.topk(masked, k, dim=0, largest=False).values if k < cost.shape[0] else masked
    seen = torch.isfinite(best)
    total = torch.where(seen, best, torch.zeros_like(best)).sum(0)
    count = seen.sum(0)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, _UNSEEN_COST))


def _cost_volume(ref, src, K_ref, E_ref, K_src, E_src, depths, window, agg_window, top_k, chunk):
    """Aggregated cost ``(D, H, W)``: ZNCC per source, best-k over sources, box filter per plane."""
    H, W = ref.shape[-2:]
    ref_gray = gray(ref.unsqueeze(0))  # (1, 1, H, W)
    src_gray = gray(src)
    ref_mean, ref_var = reference_stats(ref_gray, window)
    frame = _plane_frame(H, W, K_ref, E_ref, E_src)
    volume = torch.empty(depths.numel(), H, W, dtype=torch.float32, device=ref.device)
    for start in range(0, depths.numel(), chunk):
        d = depths[start:start + chunk]
        warped, valid = _warp_planes(src_gray, d, frame, K_src)
        cost = zncc_cost(ref_gray, ref_mean, ref_var, warped, window)
        del warped
        cost = _aggregate_sources(cost, valid, top_k)
        volume[start:start + d.numel()] = box_mean(cost.unsqueeze(1), agg_window).squeeze(1)
    return volume


def _winner(volume: torch.Tensor, temperature: float, chunk: int):
    """Winner-take-all with a parabola through the winner and its neighbours, and a softmax confidence.

    Returns the fractional plane index ``(H, W)`` (winner ± ≤ 0.5) and the confidence ``(H, W)``:
    ``softmax(−cost / temperature)`` summed over the winner and its two neighbours.
    """
    D = volume.shape[0]
    idx = volume.argmin(0, keepdim=True)
    c0 = volume.gather(0, idx)[0]
    has_lo, has_hi = idx[0] > 0, idx[0] < D - 1
    c_lo = volume.gather(0, (idx - 1).clamp_min(0))[0]
    c_hi = volume.gather(0, (idx + 1).clamp_max(D - 1))[0]
    curvature = c_lo - 2 * c0 + c_hi
    inner = has_lo & has_hi & (curvature > 1e-9)
    offset = torch.where(inner, 0.5 * (c_lo - c_hi) / curvature.clamp_min(1e-9), torch.zeros_like(c0))
    index = idx[0].to(volume.dtype) + offset.clamp(-0.5, 0.5)
    # every exp(−(c − c0)/T) ≤ 1: no overflow; the partition sum is taken chunk by chunk
    partition = torch.zeros_like(c0)
    for start in range(0, D, chunk):
        partition += torch.exp((c0 - volume[start:start + chunk]) / temperature).sum(0)
    near = 1.0 + sum(torch.where(has, torch.exp((c0 - c) / temperature), torch.zeros_like(c0))
                     for has, c in ((has_lo, c_lo), (has_hi, c_hi)))
    return index, (near / partition).clamp(0.0, 1.0)


def _count_sources(depth, K_ref, E_ref, K_src, E_src, src_hw) -> torch.Tensor:
    """How many sources see each reference pixel at ``depth (H, W)``: ``(H, W)`` int64."""
    S = K_src.shape[0]
    _, _, valid = reproject(depth.expand(S, *depth.shape), K_ref, E_ref, K_src, E_src, src_hw=src_hw)
    return valid.sum(0)


@torch.no_grad()
def plane_sweep(
    ref_image,
    K_ref,
    E_ref,
    src_images,
    K_src,
    E_src,
    depth_min_mm: float,
    depth_max_mm: float,
    num_planes: int = 48,
    window: int = SWEEP_DEFAULTS["window"],
    agg_window: int = SWEEP_DEFAULTS["agg_window"],
    top_k: int | None = SWEEP_DEFAULTS["top_k"],
    spacing: str = SWEEP_DEFAULTS["spacing"],
    temperature: float = SWEEP_DEFAULTS["temperature"],
    min_confidence: float = SWEEP_DEFAULTS["min_confidence"],
    min_sources: int = SWEEP_DEFAULTS["min_sources"],
    chunk_planes: int | None = None,
    return_cost: bool = False,
) -> SweepResult:
    """Depth of one reference view by a fronto-parallel plane sweep over its source views.

    Args:
        ref_image: ``(3, H, W)`` or ``(1, H, W)`` float in [0, 1]; the result is on its device.
        K_ref, E_ref: ``(3, 3)`` intrinsics for ``H×W`` and ``(3, 4)`` world-to-camera extrinsics.
        src_images: ``(S, C, H', W')`` source images (same ``C``), with ``K_src (S, 3, 3)`` for ``H'×W'``
            and ``E_src (S, 3, 4)``.
        depth_min_mm, depth_max_mm: the swept z-depth range, mm (the first and last plane).
        num_planes: ``D >= 2`` planes, spaced by ``spacing`` (``"depth"`` or ``"inverse"``).
        window: odd side (px) of the ZNCC window, on Rec. 601 luminance.
        agg_window: odd side (px) of the box filter applied to each plane of the cost volume.
        top_k: sources averaged per pixel and plane (the lowest costs; default ``ceil(S / 2)``).
        temperature: softmax temperature of the confidence, in cost units (``1 − ZNCC``).
        min_confidence, min_sources: pixels below either become holes (depth 0).
        chunk_planes: planes warped at a time (memory bound; the result does not depend on it).
            Default: about 1 M warped pixels × sources per chunk.
        return_cost: also return the cost volume ``(D, H, W)`` and the plane depths ``(D,)``.
    Returns:
        :class:`SweepResult`. Sub-plane refinement fits a parabola to the cost at the winning plane
        and its neighbours (in plane-index space, so in depth or inverse depth by ``spacing``).
    Raises:
        DataError for misshapen or non-finite inputs; ConfigError for impossible options.
    """
    ref, K_ref, E_ref, src, K_src, E_src = _check_inputs(ref_image, K_ref, E_ref, src_images, K_src, E_src)
    _check_range(depth_min_mm, depth_max_mm, num_planes, spacing)
    S, (H, W) = src.shape[0], ref.shape[-2:]
    _check_options(window, agg_window, top_k, temperature, min_confidence, min_sources, chunk_planes, S)
    top_k = math.ceil(S / 2) if top_k is None else top_k
    chunk = chunk_planes or max(1, _CHUNK_ELEMENTS // (S * H * W))
    depths = plane_depths(depth_min_mm, depth_max_mm, num_planes, spacing, device=ref.device)
    volume = _cost_volume(ref, src, K_ref, E_ref, K_src, E_src, depths, window, agg_window, top_k, chunk)
    index, confidence = _winner(volume, float(temperature), chunk)
    depth = _index_to_depth(index.double(), float(depth_min_mm), float(depth_max_mm), num_planes, spacing).float()
    num_sources = _count_sources(depth, K_ref, E_ref, K_src, E_src, tuple(src.shape[-2:]))
    keep = (confidence >= min_confidence) & (num_sources >= min_sources)
    depth = torch.where(keep, depth, torch.zeros_like(depth))
    return SweepResult(depth=depth, confidence=confidence, num_sources=num_sources,
                       cost=volume if return_cost else None, plane_depths=depths if return_cost else None)
