"""The single-view loss terms of :mod:`deltaz.ops.losses` and their per-pixel maps (mm unless stated).

Each ``*_loss`` is the masked mean of its ``*_loss_map``; with an all-invalid mask it is a graph-connected 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deltaz.core.errors import DataError
from deltaz.core.gradients import gradient_pair_mask, image_gradients


def _as_bhw(x: torch.Tensor, name: str) -> torch.Tensor:
    """``(B, H, W)`` or ``(B, 1, H, W)`` → ``(B, H, W)``."""
    if x.dim() == 3:
        return x
    if x.dim() == 4 and x.shape[1] == 1:
        return x[:, 0]
    raise DataError(f"{name} must be (B, H, W) or (B, 1, H, W), got shape {tuple(x.shape)}")


def _graph_zero(x: torch.Tensor) -> torch.Tensor:
    """A scalar 0 that is connected to ``x``'s graph (so ``backward`` works) and is never NaN."""
    return torch.where(torch.zeros_like(x, dtype=torch.bool), x, torch.zeros_like(x)).sum()


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` over ``mask`` (bool, same shape); a graph-connected 0 when the mask is empty.

    ``torch.where`` (not a product) keeps NaN/inf at masked pixels out of the value and the gradient.
    """
    total = torch.where(mask, values, torch.zeros_like(values)).sum()
    return total / mask.sum().clamp(min=1).to(values.dtype)


def _valid_gt(depth_gt: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    valid = torch.isfinite(depth_gt) & (depth_gt > 0)
    if mask is not None:
        if mask.shape != depth_gt.shape:
            raise DataError(f"mask must have depth_gt's shape {tuple(depth_gt.shape)}, got {tuple(mask.shape)}")
        valid = valid & mask.bool()
    return valid


def _has_input(depth_init: torch.Tensor) -> torch.Tensor:
    """Pixels with an initial depth: the magnitude term penalises corrections there. At a hole Δz is a fill
    (with ``prefill_holes`` it starts at a classical fill ~600 mm away from 0), not a correction."""
    return torch.isfinite(depth_init) & (depth_init > 0)


def depth_loss(depth_refined: torch.Tensor, depth_gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Masked L1: ``mean over valid pixels of |depth_refined − depth_gt|`` (mm).

    Args:
        depth_refined, depth_gt: same shape, e.g. ``(B, H, W)``, mm; ``depth_gt <= 0`` = no ground truth.
        mask: bool, same shape, or None; a pixel counts where ``mask`` and ``depth_gt > 0``.
    Values at excluded pixels (even NaN) do not affect the loss or its gradient.
    """
    return _masked_mean(*depth_loss_map(depth_refined, depth_gt, mask))


def depth_loss_map(depth_refined, depth_gt, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel ``|depth_refined − depth_gt|`` (mm) and the bool mask of pixels :func:`depth_loss` averages."""
    return (depth_refined - depth_gt).abs(), _valid_gt(depth_gt, mask)


def improvement_loss(
    depth_refined: torch.Tensor,
    depth_init: torch.Tensor,
    depth_gt: torch.Tensor,
    mask: torch.Tensor | None = None,
    margin_mm: float = 0.0,
) -> torch.Tensor:
    """One-sided "do no harm" term: ``mean over valid pixels of relu(|d_ref − d_gt| − |d_init − d_gt| − margin_mm)``.

    What it adds beyond the L1 :func:`depth_loss`: it is exactly zero wherever the refiner improves a pixel
    or keeps it as it was, so it never pulls on pixels the refiner already handles; its gradient is
    concentrated on the pixels the refiner made *worse* than its input, adding to L1's push there. L1 is
    blind to which pixels got worse (a mean can drop while some pixels regress); this term is not.
    ``margin_mm ≥ 0`` tolerates a worsening of up to ``margin_mm``; a negative margin demands an
    improvement of at least ``−margin_mm``. ``depth_init`` is a fixed reference (detached here).

    Shapes as in :func:`depth_loss`; result in mm.
    """
    return _masked_mean(*improvement_loss_map(depth_refined, depth_init, depth_gt, mask, margin_mm))


def improvement_loss_map(depth_refined, depth_init, depth_gt, mask=None, margin_mm: float = 0.0):
    """Per-pixel ``relu(|d_ref − d_gt| − |d_init − d_gt| − margin_mm)`` (mm) and the pixels averaged."""
    err_refined = (depth_refined - depth_gt).abs()
    err_init = (depth_init.detach() - depth_gt).abs()
    return F.relu(err_refined - err_init - margin_mm), _valid_gt(depth_gt, mask)


def magnitude_loss(delta_z: torch.Tensor, mask: torch.Tensor | None = None, scale_mm: float = 1.0) -> torch.Tensor:
    """Keep corrections small: Charbonnier ``mean of sqrt(Δz² + s²) − s`` with ``s = scale_mm`` (mm).

    Quadratic (``Δz²/2s``) below ``s``, about ``|Δz| − s`` above it, so its gradient never exceeds 1 and a
    weight below the depth term's cannot shrink a supervised correction; it mostly decides what happens
    where there is no ground truth. Zero iff ``Δz == 0``.

    Args:
        delta_z: any shape, mm. mask: bool, same shape, or None for every pixel.
    """
    return _masked_mean(*magnitude_loss_map(delta_z, mask, scale_mm))


def magnitude_loss_map(delta_z, mask=None, scale_mm: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel Charbonnier ``sqrt(Δz² + s²) − s`` (mm) and the pixels :func:`magnitude_loss` averages."""
    if scale_mm <= 0:
        raise DataError(f"scale_mm must be > 0, got {scale_mm}")
    values = torch.sqrt(delta_z * delta_z + scale_mm**2) - scale_mm
    if mask is None:
        mask = torch.ones_like(delta_z, dtype=torch.bool)
    elif mask.shape != delta_z.shape:
        raise DataError(f"mask must have delta_z's shape {tuple(delta_z.shape)}, got {tuple(mask.shape)}")
    return values, mask.bool()


def _mean_normalised_inverse_depth(depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1/depth) / mean(1/depth)`` per sample over ``depth > 0``; 0 elsewhere. ``depth (B, H, W)``."""
    valid = torch.isfinite(depth) & (depth > 0)
    safe = torch.where(valid, depth, torch.ones_like(depth))
    inv = torch.where(valid, 1.0 / safe, torch.zeros_like(depth))
    count = valid.flatten(1).sum(dim=1).clamp(min=1).to(depth.dtype)
    mean = (inv.flatten(1).sum(dim=1) / count).view(-1, 1, 1)
    mean = torch.where(mean > 0, mean, torch.ones_like(mean))
    return inv / mean, valid


def smoothness_loss(
    depth_refined: torch.Tensor,
    guide: torch.Tensor,
    mask: torch.Tensor | None = None,
    edge_sharpness: float = 1.0,
) -> torch.Tensor:
    """Edge-aware smoothness of the mean-normalised inverse depth (Monodepth2 style).

    With ``n = (1/d) / mean(1/d)`` (per sample, over ``d > 0``) and image gradients from
    :func:`deltaz.core.gradients.image_gradients` (x: ``(B, H, W−1)``, y: ``(B, H−1, W)``, paired, fix D):

    ``loss = mean_x(|∂x n| · exp(−a·|∂x g|)) + mean_y(|∂y n| · exp(−a·|∂y g|))``, ``a = edge_sharpness``,

    each mean over the neighbour pairs whose two pixels are valid (``d > 0`` and ``mask``). The guide ``g``:
    an image ``(B, 3, H, W)`` in [0, 1] (gradient magnitude averaged over channels) or a depth map
    ``(B, H, W)`` / ``(B, 1, H, W)`` such as ``depth_init``, taken as its mean-normalised inverse depth.
    Scale-free (invariant to multiplying the depth by a constant); zero for a constant depth.

    Args:
        depth_refined: ``(B, H, W)`` or ``(B, 1, H, W)`` mm.
        mask: ``(B, H, W)`` bool or None.
    """
    (term_x, mask_x), (term_y, mask_y) = _smoothness_terms(depth_refined, guide, mask, edge_sharpness)
    return _masked_mean(term_x, mask_x) + _masked_mean(term_y, mask_y)


def _smoothness_terms(depth_refined, guide, mask=None, edge_sharpness: float = 1.0):
    """The x and y terms of :func:`smoothness_loss`: ``((B, H, W−1), mask), ((B, H−1, W), mask)``."""
    depth = _as_bhw(depth_refined, "depth_refined")
    norm_inv, valid = _mean_normalised_inverse_depth(depth)
    if mask is not None:
        mask = _as_bhw(mask, "mask").bool()
        if mask.shape != depth.shape:
            raise DataError(f"mask must be (B, H, W) = {tuple(depth.shape)}, got {tuple(mask.shape)}")
        valid = valid & mask
    if guide.dim() == 4 and guide.shape[1] == 3:
        guide_x, guide_y = image_gradients(guide.to(depth.dtype))
        edge_x, edge_y = guide_x.abs().mean(dim=1), guide_y.abs().mean(dim=1)
    else:
        guide_depth, _ = _mean_normalised_inverse_depth(_as_bhw(guide, "guide").to(depth.dtype))
        guide_x, guide_y = image_gradients(guide_depth)
        edge_x, edge_y = guide_x.abs(), guide_y.abs()
    grad_x, grad_y = image_gradients(norm_inv)
    if edge_x.shape != grad_x.shape or edge_y.shape != grad_y.shape:
        raise DataError(
            f"guide must have depth_refined's batch and image size {tuple(depth.shape)}, "
            f"got guide shape {tuple(guide.shape)}"
        )
    mask_x, mask_y = gradient_pair_mask(valid)
    weight_x = torch.exp(-edge_sharpness * edge_x).detach()
    weight_y = torch.exp(-edge_sharpness * edge_y).detach()
    return (grad_x.abs() * weight_x, mask_x), (grad_y.abs() * weight_y, mask_y)


def smoothness_loss_map(depth_refined, guide, mask=None, edge_sharpness: float = 1.0):
    """Per-pixel smoothness ``(B, H, W)`` for display: each pixel holds the weighted x-term of the pair to its
    right plus the y-term of the pair below it (0 where no pair counts); and the mask of pixels with a term.
    """
    (term_x, mask_x), (term_y, mask_y) = _smoothness_terms(depth_refined, guide, mask, edge_sharpness)
    out = torch.zeros(*term_x.shape[:-1], term_x.shape[-1] + 1, dtype=term_x.dtype, device=term_x.device)
    used = torch.zeros_like(out, dtype=torch.bool)
    out[..., :, :-1] = out[..., :, :-1] + torch.where(mask_x, term_x, torch.zeros_like(term_x))
    out[..., :-1, :] = out[..., :-1, :] + torch.where(mask_y, term_y, torch.zeros_like(term_y))
    used[..., :, :-1] |= mask_x
    used[..., :-1, :] |= mask_y
    return out, used


def laplacian_nll_loss(
    depth_refined: torch.Tensor, depth_gt: torch.Tensor, log_b: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Laplacian negative log-likelihood for a confidence head: ``mean of |d_ref − d_gt|·exp(−log_b) + log_b``.

    ``log_b`` is the natural log of the Laplacian scale ``b`` in mm (:class:`deltaz.model.DeltaZUnet` with
    ``out_confidence=True``); the constant ``log 2`` is dropped. Minimised per pixel by ``b = |residual|``.
    Shapes as in :func:`depth_loss`.
    """
    valid = _valid_gt(depth_gt, mask)
    residual = (depth_refined - depth_gt).abs()
    return _masked_mean(residual * torch.exp(-log_b) + log_b, valid)
