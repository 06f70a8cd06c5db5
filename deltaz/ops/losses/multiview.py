"""The multi-view consistency term of :mod:`deltaz.ops.losses`: the reference depth against its sources' depths (mm)."""

from __future__ import annotations

import torch

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.core.geometry import reproject, sample_pixels
from deltaz.ops.losses.terms import _as_bhw, _graph_zero


def multiview_consistency_loss(
    depth_ref: torch.Tensor,
    multiview: MultiView,
    mask: torch.Tensor | None = None,
    occlusion_tol_rel: float = 0.02,
    min_valid_weight: float = 0.5,
) -> torch.Tensor:
    """Geometric consistency of the reference depth with source-view depths (mm).

    Each valid reference pixel is lifted with ``depth_ref`` and projected into source view ``s``
    (:func:`deltaz.core.geometry.reproject`): it lands at ``uv_src`` with z-depth ``z_src`` in that camera. The
    source depth there, ``d_s`` (validity-aware bilinear through :func:`deltaz.core.geometry.sample_pixels`:
    holes get weight 0 and the remaining weights are renormalised, so holes never blend in), should equal
    ``z_src``. Loss ``= Σ_s Σ_pixels |z_src − d_s| / number of (pixel, source) pairs kept``.

    A pair is kept where ``reproject`` says valid (``depth_ref > 0``, ``z_src > eps`` — never divided by —,
    inside the source frame) and ``uv_src`` lies between pixel centres (``[0, W'−1] × [0, H'−1]``, so no
    border clamping), ``mask`` allows the reference pixel, the valid bilinear weight at ``uv_src`` is
    ``≥ min_valid_weight``, and the point is not occluded: ``d_s ≥ (1 − occlusion_tol_rel) · z_src``. A source
    surface clearly *in front of* the point (by more than 2 % of its depth by default, ≈14 mm at DTU's
    700 mm) means the source camera sees something else, so the pair says nothing. The tolerance trades off:
    reference errors "too far" by more than it are ignored here (the depth term still sees them), while a
    smaller tolerance mistakes true occluders for errors. A point *behind* the source surface (free-space
    violation) is always penalised.

    Differentiable w.r.t. ``depth_ref`` (through ``z_src`` and ``uv_src``) and ``depth_src``.

    Args:
        depth_ref: ``(B, H, W)`` mm, 0 = no value.
        multiview: :class:`deltaz.core.batch.MultiView` (or its dict form): ``K_ref (B, 3, 3)``, ``E_ref
            (B, 3|4, 4)`` world-to-camera, ``depth_src (B, S, H', W')`` mm, 0 = hole (GT or refined depths of the
            source views), ``K_src (B, S, 3, 3)`` for ``H'×W'``, ``E_src (B, S, 3|4, 4)``.
        mask: ``(B, H, W)`` bool, reference pixels to use, or None for all.
    """
    pairs = _multiview_pairs(depth_ref, multiview, mask, occlusion_tol_rel, min_valid_weight)
    total = _graph_zero(_as_bhw(depth_ref, "depth_ref"))
    count = 0
    for residual, keep in pairs:
        total = total + torch.where(keep, residual, torch.zeros_like(residual)).sum()
        count = count + keep.sum()
    return total / torch.as_tensor(count).clamp(min=1).to(total.dtype)


def multiview_consistency_loss_map(
    depth_ref: torch.Tensor, multiview: MultiView, mask: torch.Tensor | None = None, occlusion_tol_rel: float = 0.02,
    min_valid_weight: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel ``|z_src − d_s|`` (mm) averaged over the source views that keep the pixel, ``(B, H, W)``,
    and the mask of pixels kept by at least one source (see :func:`multiview_consistency_loss`)."""
    ref = _as_bhw(depth_ref, "depth_ref")
    total = torch.zeros_like(ref)
    count = torch.zeros_like(ref)
    for residual, keep in _multiview_pairs(depth_ref, multiview, mask, occlusion_tol_rel, min_valid_weight):
        total = total + torch.where(keep, residual, torch.zeros_like(residual))
        count = count + keep.to(ref.dtype)
    return total / count.clamp(min=1), count > 0


def _multiview_pairs(depth_ref, multiview, mask, occlusion_tol_rel, min_valid_weight):
    """One ``(residual (B, H, W) mm, keep (B, H, W) bool)`` per source view; the rules of
    :func:`multiview_consistency_loss`."""
    mv = MultiView.coerce(multiview)
    if mv is None:
        raise DataError("multiview is None; expected the reference and source cameras and source depths")
    K_ref, E_ref, K_src, E_src = mv.K_ref, mv.E_ref, mv.K_src, mv.E_src
    depth_src = mv.require_depths("the multi-view consistency loss")
    depth_ref = _as_bhw(depth_ref, "depth_ref")
    B, H, W = depth_ref.shape
    if depth_src.dim() != 4 or depth_src.shape[0] != B:
        raise DataError(f"depth_src must be (B, S, H', W') with B = {B}, got shape {tuple(depth_src.shape)}")
    S, Hs, Ws = depth_src.shape[1:]
    if K_src.shape[:2] != (B, S) or E_src.shape[:2] != (B, S):
        raise DataError(
            f"K_src and E_src must start with (B, S) = ({B}, {S}), got {tuple(K_src.shape)} and {tuple(E_src.shape)}"
        )
    if mask is not None:
        mask = _as_bhw(mask, "mask").bool()
    src_valid = torch.isfinite(depth_src) & (depth_src > 0)
    depth_src = torch.where(src_valid, depth_src, torch.zeros_like(depth_src)).to(depth_ref.dtype)
    pairs = []
    for s in range(S):
        uv_src, z_src, valid = reproject(depth_ref, K_ref, E_ref, K_src[:, s], E_src[:, s], src_hw=(Hs, Ws))
        stacked = torch.stack([depth_src[:, s], src_valid[:, s].to(depth_ref.dtype)], dim=1)  # (B, 2, H', W')
        sampled = sample_pixels(stacked, uv_src, mode="bilinear", padding_mode="border")
        weight = sampled[:, 1]
        weight_ok = weight >= min_valid_weight
        d_s = sampled[:, 0] / torch.where(weight_ok, weight, torch.ones_like(weight))
        u, v = uv_src[..., 0], uv_src[..., 1]
        interpolable = (u >= 0) & (u <= Ws - 1) & (v >= 0) & (v <= Hs - 1)  # no border clamping
        keep = valid & interpolable & weight_ok & (d_s >= (1.0 - occlusion_tol_rel) * z_src)
        if mask is not None:
            keep = keep & mask
        pairs.append(((z_src - d_s).abs(), keep))
    return pairs
