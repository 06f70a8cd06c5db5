"""Multi-scale training losses: the supervised, smoothness and multi-view terms on a 3-level pyramid.

Level ``k`` halves the resolution ``k`` times (factor ``f = 2^k``): an ``H×W`` map becomes
``ceil(H/f) × ceil(W/f)``, and level-``k`` pixel ``(u', v')`` is full-resolution pixel ``(f·u', f·v')``.
That is exactly what scaling the intrinsics by ``s = 1/f`` describes under docs/DESIGN.md's convention
(``fx, fy, cx, cy`` all times ``s``, no half-pixel shift) — done with
:func:`deltaz.io.dtu.cameras.scale_intrinsics` — so the multi-view loss of consistent depths stays
consistent at every level. Extrinsics do not change.

Downsampling rules (validity-aware, so holes never blend into depths):

* ``"nearest"`` (default) — keep every ``f``-th pixel: no value is ever mixed with another, holes stay
  holes, depth edges stay sharp.
* ``"masked_mean"`` — per halving, a ``[1, 2, 1] ⊗ [1, 2, 1] / 16`` window centred on the kept pixel,
  averaged over its *valid* pixels only (weights renormalised); a pixel whose window is less than half
  valid becomes a hole. Centred, so it agrees with the same intrinsics; it smooths noise but mixes
  foreground and background at depth edges.

Images (the smoothness guide) are always blurred with the same centred window before subsampling.

The pyramid is built from the full-resolution prediction (the network has one output): level ``k``
compares the downsampled refined depth with the downsampled ground truth, so coarse levels see errors
over ``f×`` larger neighbourhoods (smoothness and multi-view) and, with ``"masked_mean"``, local mean
errors (low-frequency bias) rather than per-pixel errors.

:func:`multiscale_losses` = level 0 exactly as :func:`deltaz.ops.losses.losses_for_batch` (every term),
plus, at each level, the terms in :data:`MULTISCALE_TERMS` weighted by ``scale_weights[k]`` times their
usual loss weight: ``total = Σ_other w·term + Σ_k scale_weights[k] · Σ_{ms terms} w·term_k``.
Explained in notebooks/08_extensions.ipynb.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from deltaz.core.batch import MultiViewBatch
from deltaz.core.errors import ConfigError, DataError
from deltaz.io.dtu.cameras import scale_intrinsics
from deltaz.ops.losses import LossWeights, losses_for_batch

__all__ = [
    "DEFAULT_SCALE_WEIGHTS",
    "MULTISCALE_TERMS",
    "MODES",
    "downsample_depth",
    "downsample_mask",
    "downsample_image",
    "scale_intrinsics_tensor",
    "batch_pyramid",
    "multiscale_losses",
]

#: Weights of levels 0, 1, 2 (full, half, quarter resolution).
DEFAULT_SCALE_WEIGHTS = (1.0, 0.5, 0.25)
#: The loss terms computed at every level (the others only at full resolution).
MULTISCALE_TERMS = ("depth", "smoothness", "multiview")
#: Depth downsampling rules.
MODES = ("nearest", "masked_mean")

_BINOMIAL = torch.tensor([1.0, 2.0, 1.0])


def _check_factor(factor: int) -> int:
    factor = int(factor)
    if factor < 1 or factor & (factor - 1):
        raise ConfigError(f"factor={factor!r}: must be a power of 2 (1, 2, 4, ...)")
    return factor


def _window(x: torch.Tensor) -> torch.Tensor:
    """Centred ``[1,2,1]⊗[1,2,1]/16`` window sum of ``(N, C, H, W)``, zero padded (same size)."""
    kernel = torch.outer(_BINOMIAL, _BINOMIAL).to(dtype=x.dtype, device=x.device) / 16.0
    C = x.shape[1]
    return F.conv2d(F.pad(x, (1, 1, 1, 1)), kernel.expand(C, 1, 3, 3), groups=C)


def _flat(x: torch.Tensor, channels: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``(..., C, H, W)`` → ``(N, C, H, W)`` and the leading shape."""
    lead = x.shape[: x.dim() - 2 - (channels > 0)]
    C = x.shape[-3] if channels else 1
    return x.reshape(-1, C, *x.shape[-2:]), tuple(lead)


def downsample_depth(
    depth: torch.Tensor, factor: int = 2, mode: str = "nearest", valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Downsample depth maps ``(..., H, W)`` (mm, 0 = no value) by ``factor`` (a power of 2).

    Output ``(..., ceil(H/f), ceil(W/f))``; pixel ``(u', v')`` is centred on input pixel ``(f·u', f·v')``.
    ``mode``: ``"nearest"`` or ``"masked_mean"`` (see the module docstring). ``valid`` (bool, same shape)
    narrows the pixels that count as values (default: finite and ``> 0``). Differentiable.
    """
    factor = _check_factor(factor)
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r}: must be one of {MODES}")
    if depth.dim() < 2:
        raise DataError(f"depth must be (..., H, W), got shape {tuple(depth.shape)}")
    ok = torch.isfinite(depth) & (depth > 0)
    if valid is not None:
        if valid.shape != depth.shape:
            raise DataError(f"valid must have depth's shape {tuple(depth.shape)}, got {tuple(valid.shape)}")
        ok = ok & valid.bool()
    depth = torch.where(ok, depth, torch.zeros_like(depth))
    if mode == "nearest" or factor == 1:
        return depth[..., ::factor, ::factor]
    x, lead = _flat(depth, 0)
    w = ok.reshape(x.shape).to(x.dtype)
    while factor > 1:
        num = _window(x * w)[..., ::2, ::2]
        den = _window(w)[..., ::2, ::2]
        keep = den >= 0.5
        x = torch.where(keep, num / torch.where(keep, den, torch.ones_like(den)), torch.zeros_like(num))
        w = keep.to(x.dtype)
        factor //= 2
    return x.reshape(*lead, *x.shape[-2:])


def downsample_mask(mask: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest (strided) downsampling of a bool mask ``(..., H, W)``, like :func:`downsample_depth`."""
    return mask[..., :: _check_factor(factor), :: _check_factor(factor)]


def downsample_image(image: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Downsample images ``(..., C, H, W)`` by ``factor``: centred binomial blur, then every 2nd pixel,
    per halving (border pixels averaged over the in-frame part of the window)."""
    factor = _check_factor(factor)
    if image.dim() < 3:
        raise DataError(f"image must be (..., C, H, W), got shape {tuple(image.shape)}")
    x, lead = _flat(image, 1)
    ones = torch.ones_like(x[:, :1])
    while factor > 1:
        x = (_window(x) / _window(ones))[..., ::2, ::2]
        ones = ones[..., ::2, ::2]
        factor //= 2
    return x.reshape(*lead, *x.shape[-3:])


def scale_intrinsics_tensor(K: torch.Tensor, scale: float) -> torch.Tensor:
    """``K (..., 3, 3)`` for images scaled by ``scale``, via :func:`deltaz.io.dtu.cameras.scale_intrinsics`
    (``fx, fy, cx, cy`` times ``scale``, no half-pixel shift); same dtype and device as ``K``."""
    scaled = scale_intrinsics(K.detach().cpu().double().numpy(), float(scale))
    return torch.as_tensor(scaled, dtype=K.dtype, device=K.device)


def batch_pyramid(batch: MultiViewBatch | dict[str, Any], num_scales: int = 3,
                  mode: str = "nearest") -> list[MultiViewBatch]:
    """A data-loader batch (a :class:`deltaz.core.batch.MultiViewBatch` with ground truth, or its dict form;
    docs/DESIGN.md §4) at ``num_scales`` levels; level 0 is the batch itself.

    Level ``k``: ``depth``/``depth_init`` by :func:`downsample_depth` (``depth`` restricted to ``mask``),
    ``mask = depth_k > 0``, ``image`` by :func:`downsample_image`, ``intrinsics`` scaled by ``2^-k``;
    ``extrinsics``, ``scene`` and the extras (``depth_range``, ``view_ids``) unchanged.
    """
    if int(num_scales) < 1:
        raise ConfigError(f"num_scales={num_scales!r}: must be >= 1")
    batch = MultiViewBatch.from_mapping(batch)
    if batch.depth is None or batch.mask is None:
        raise DataError("batch_pyramid needs the batch's ground truth: batch.depth and batch.mask (B, V, H, W)")
    levels = [batch]
    for k in range(1, int(num_scales)):
        f = 2**k
        depth = downsample_depth(batch.depth, f, mode, valid=batch.mask)
        levels.append(dataclasses.replace(
            batch, depth=depth, mask=depth > 0, depth_init=downsample_depth(batch.depth_init, f, mode),
            intrinsics=scale_intrinsics_tensor(batch.intrinsics, 1.0 / f),
            image=None if batch.image is None else downsample_image(batch.image, f),
        ))
    return levels


def _check_scale_weights(scale_weights: Sequence[float]) -> list[float]:
    weights = [float(w) for w in scale_weights]
    if not weights or any(w < 0 for w in weights) or weights[0] <= 0:
        raise ConfigError(f"scale_weights={list(scale_weights)!r}: need >= 1 weight, all >= 0, the first > 0")
    return weights


def multiscale_losses(
    batch: MultiViewBatch | dict[str, Any],
    model_out: dict[str, Any],
    weights: LossWeights | None = None,
    scale_weights: Sequence[float] = DEFAULT_SCALE_WEIGHTS,
    mode: str = "nearest",
    terms: Sequence[str] = MULTISCALE_TERMS,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training loss over a pyramid of ``len(scale_weights)`` levels.

    Args:
        batch: a data-loader batch (:class:`deltaz.core.batch.MultiViewBatch` or its dict form, ``(B, V, …)``,
            view 0 the reference).
        model_out: :func:`deltaz.model.refine` of view 0: ``depth_refined``, ``delta_z`` ``(B, H, W)`` mm
            (``log_b`` is used at level 0 only).
        weights: the loss weights (:class:`deltaz.ops.losses.LossWeights`).
        scale_weights: weight of each level, level 0 first (e.g. ``(1, 0.5, 0.25)``).
        mode: depth downsampling rule (:data:`MODES`).
        terms: the terms computed at every level (a subset of :data:`MULTISCALE_TERMS`).
    Returns:
        ``total`` (scalar with graph) and detached terms: level 0's keys as in
        :func:`deltaz.ops.losses.compute_losses` plus ``<term>_s<k>`` for ``k ≥ 1``; ``total`` is the whole sum.
    """
    weights = weights or LossWeights()
    scale_weights = _check_scale_weights(scale_weights)
    unknown = sorted(set(terms) - set(MULTISCALE_TERMS))
    if unknown:
        raise ConfigError(f"terms={list(terms)!r}: {unknown} cannot be multi-scale; choose from {MULTISCALE_TERMS}")
    levels = batch_pyramid(batch, len(scale_weights), mode)

    def level_weights(k: int) -> LossWeights:
        w0 = dataclasses.asdict(weights)
        out = {name: (value * scale_weights[k] if name in terms else (value if k == 0 else 0.0))
               for name, value in w0.items()}
        return LossWeights(**out)

    total, out_terms = losses_for_batch(levels[0], model_out, level_weights(0))
    refined, delta_z = model_out["depth_refined"], model_out["delta_z"]
    for k in range(1, len(levels)):
        if scale_weights[k] == 0:
            continue
        f = 2**k
        level_out = {
            "depth_refined": downsample_depth(refined, f, mode),
            "delta_z": delta_z[..., ::f, ::f],
        }
        level_total, level_terms = losses_for_batch(levels[k], level_out, level_weights(k))
        total = total + level_total
        for name in terms:
            out_terms[f"{name}_s{k}"] = level_terms[name]
    out_terms["total"] = total.detach()
    return total, out_terms
