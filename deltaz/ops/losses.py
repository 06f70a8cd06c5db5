"""The training losses of DeltaZ, each a function returning a scalar tensor.

Depths, Δz and residuals are in mm; the masked means divide by the number of valid pixels, so a loss does
not depend on the image size (any resolution works: a multi-scale pyramid calls the same functions with
the matching ``K``). With an all-invalid mask every loss returns a graph-connected 0, never NaN.

==================  ===============================================  ======================
term                formula (masked mean over valid pixels)          unit
==================  ===============================================  ======================
``depth``           ``|d_ref − d_gt|``                               mm
``improvement``     ``relu(|d_ref − d_gt| − |d_init − d_gt| − m)``    mm
``magnitude``       ``sqrt(Δz² + s²) − s`` (Charbonnier)             mm
``smoothness``      edge-aware ``|∇ d̂⁻¹| · exp(−|∇ guide|)``         1 (scale-free)
``multiview``       ``|z_src − d_src(uv_src)|`` over unoccluded      mm
``confidence``      ``|d_ref − d_gt| / b + log b`` (Laplacian NLL)    nats (optional)
==================  ===============================================  ======================

Explained in notebooks/03_losses.ipynb.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from deltaz.core.geometry import reproject, sample_pixels
from deltaz.core.gradients import gradient_pair_mask, image_gradients

__all__ = [
    "depth_loss",
    "improvement_loss",
    "magnitude_loss",
    "smoothness_loss",
    "multiview_consistency_loss",
    "laplacian_nll_loss",
    "LossWeights",
    "compute_losses",
    "losses_for_batch",
    "TERMS",
]

#: The keys of the terms dict returned by :func:`compute_losses` (``confidence`` only when used).
TERMS = ("depth", "improvement", "magnitude", "smoothness", "multiview", "total")


def _as_bhw(x: torch.Tensor, name: str) -> torch.Tensor:
    """``(B, H, W)`` or ``(B, 1, H, W)`` → ``(B, H, W)``."""
    if x.dim() == 3:
        return x
    if x.dim() == 4 and x.shape[1] == 1:
        return x[:, 0]
    raise ValueError(f"{name} must be (B, H, W) or (B, 1, H, W), got shape {tuple(x.shape)}")


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
            raise ValueError(f"mask must have depth_gt's shape {tuple(depth_gt.shape)}, got {tuple(mask.shape)}")
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
        raise ValueError(f"scale_mm must be > 0, got {scale_mm}")
    values = torch.sqrt(delta_z * delta_z + scale_mm**2) - scale_mm
    if mask is None:
        mask = torch.ones_like(delta_z, dtype=torch.bool)
    elif mask.shape != delta_z.shape:
        raise ValueError(f"mask must have delta_z's shape {tuple(delta_z.shape)}, got {tuple(mask.shape)}")
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
            raise ValueError(f"mask must be (B, H, W) = {tuple(depth.shape)}, got {tuple(mask.shape)}")
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
        raise ValueError(
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


def multiview_consistency_loss(
    depth_ref: torch.Tensor,
    K_ref: torch.Tensor,
    E_ref: torch.Tensor,
    depth_src: torch.Tensor,
    K_src: torch.Tensor,
    E_src: torch.Tensor,
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
        depth_ref: ``(B, H, W)`` mm, 0 = no value. K_ref ``(B, 3, 3)``, E_ref ``(B, 3|4, 4)`` world-to-camera.
        depth_src: ``(B, S, H', W')`` mm, 0 = hole (GT or refined depths of the source views).
        K_src: ``(B, S, 3, 3)`` for ``H'×W'``; E_src: ``(B, S, 3|4, 4)``.
        mask: ``(B, H, W)`` bool, reference pixels to use, or None for all.
    """
    pairs = _multiview_pairs(depth_ref, K_ref, E_ref, depth_src, K_src, E_src, mask, occlusion_tol_rel, min_valid_weight)
    total = _graph_zero(_as_bhw(depth_ref, "depth_ref"))
    count = 0
    for residual, keep in pairs:
        total = total + torch.where(keep, residual, torch.zeros_like(residual)).sum()
        count = count + keep.sum()
    return total / torch.as_tensor(count).clamp(min=1).to(total.dtype)


def multiview_consistency_loss_map(
    depth_ref, K_ref, E_ref, depth_src, K_src, E_src, mask=None, occlusion_tol_rel: float = 0.02,
    min_valid_weight: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel ``|z_src − d_s|`` (mm) averaged over the source views that keep the pixel, ``(B, H, W)``,
    and the mask of pixels kept by at least one source (see :func:`multiview_consistency_loss`)."""
    ref = _as_bhw(depth_ref, "depth_ref")
    total = torch.zeros_like(ref)
    count = torch.zeros_like(ref)
    for residual, keep in _multiview_pairs(
        depth_ref, K_ref, E_ref, depth_src, K_src, E_src, mask, occlusion_tol_rel, min_valid_weight
    ):
        total = total + torch.where(keep, residual, torch.zeros_like(residual))
        count = count + keep.to(ref.dtype)
    return total / count.clamp(min=1), count > 0


def _multiview_pairs(depth_ref, K_ref, E_ref, depth_src, K_src, E_src, mask, occlusion_tol_rel, min_valid_weight):
    """One ``(residual (B, H, W) mm, keep (B, H, W) bool)`` per source view; the rules of
    :func:`multiview_consistency_loss`."""
    depth_ref = _as_bhw(depth_ref, "depth_ref")
    B, H, W = depth_ref.shape
    if depth_src.dim() != 4 or depth_src.shape[0] != B:
        raise ValueError(f"depth_src must be (B, S, H', W') with B = {B}, got shape {tuple(depth_src.shape)}")
    S, Hs, Ws = depth_src.shape[1:]
    if K_src.shape[:2] != (B, S) or E_src.shape[:2] != (B, S):
        raise ValueError(
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


@dataclass
class LossWeights:
    """Weights of the loss terms; the total is ``Σ weight · term``. A weight of 0 drops the term.

    The defaults keep the mm L1 depth term in charge and give every other term a per-pixel pull well
    below it (see each field), so no term dominates and none can undo the supervision:

    * ``depth = 1.0`` — L1 in mm, gradient ±1 per supervised pixel: the reference.
    * ``improvement = 0.5`` — mm; adds half again of the L1 pull, only on pixels made worse than the input.
    * ``magnitude = 0.01`` — mm Charbonnier (gradient ≤ 1 per pixel) on pixels with an input depth (a hole's
      Δz is a fill, not a correction): 1 % of the L1 pull, so it never shrinks a supervised correction; on
      pixels without ground truth it keeps Δz near 0. A larger weight ``w`` (e.g. 0.3) is a do-no-harm
      knob: a pixel is only moved where the network is sure enough of the direction that the L1 pull
      (±1) outweighs ``w`` — a soft threshold that leaves uncertain (often already right) depth alone.
    * ``smoothness = 10.0`` — the term is scale-free: at DTU depths (~700 mm) a 1 mm change moves the
      normalised inverse depth by ~1/700, so weight 10 is a pull of ~3 % of L1's per pixel (a tie-breaker
      that shapes unsupervised pixels without blurring supervised ones).
    * ``multiview = 0.5`` — mm L1 against the source views: half the direct supervision, since it is
      indirect (through the source cameras) and noisier at occlusion boundaries.
    * ``confidence = 0.0`` — Laplacian NLL for a confidence head (needs ``log_b``); off by default.
    """

    depth: float = 1.0
    improvement: float = 0.5
    magnitude: float = 0.01
    smoothness: float = 10.0
    multiview: float = 0.5
    confidence: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Plain dict, e.g. to store in a checkpoint or log as hyper-parameters."""
        return asdict(self)


def loss_maps(
    depth_refined: torch.Tensor,
    delta_z: torch.Tensor,
    depth_init: torch.Tensor,
    depth_gt: torch.Tensor,
    mask: torch.Tensor,
    image: torch.Tensor | None = None,
    multiview: dict | None = None,
) -> dict[str, torch.Tensor]:
    """Unweighted per-pixel maps ``(B, H, W)`` of the five terms (0 where a pixel does not count), for
    display (the loss explorer of notebook 03). Arguments as in :func:`compute_losses`; each map's masked
    mean is its scalar loss, except smoothness and multiview, whose scalars average over pairs.
    """
    depth_refined = _as_bhw(depth_refined, "depth_refined")
    delta_z = _as_bhw(delta_z, "delta_z")
    guide = image if image is not None else depth_init
    maps = {
        "depth": depth_loss_map(depth_refined, depth_gt, mask),
        "improvement": improvement_loss_map(depth_refined, depth_init, depth_gt, mask),
        "magnitude": magnitude_loss_map(delta_z, _has_input(depth_init)),
        "smoothness": smoothness_loss_map(depth_refined, guide),
    }
    if multiview is not None:
        maps["multiview"] = multiview_consistency_loss_map(
            depth_refined, multiview["K_ref"], multiview["E_ref"], multiview["depth_src"], multiview["K_src"],
            multiview["E_src"],
        )
    return {name: torch.where(keep, values, torch.zeros_like(values)) for name, (values, keep) in maps.items()}


def compute_losses(
    depth_refined: torch.Tensor,
    delta_z: torch.Tensor,
    depth_init: torch.Tensor,
    depth_gt: torch.Tensor,
    mask: torch.Tensor | None,
    weights: LossWeights | None = None,
    image: torch.Tensor | None = None,
    multiview: dict[str, torch.Tensor] | None = None,
    log_b: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """All loss terms for the reference view and their weighted sum.

    Args:
        depth_refined, delta_z, depth_init, depth_gt: ``(B, H, W)`` (or ``(B, 1, H, W)``) mm, any ``H×W``.
        mask: ``(B, H, W)`` bool, ground-truth validity (None: ``depth_gt > 0``).
        weights: :class:`LossWeights` (defaults when None).
        image: ``(B, 3, H, W)`` in [0, 1], the smoothness guide; ``depth_init`` guides when None.
        multiview: None, or ``{"K_ref" (B,3,3), "E_ref" (B,3,4), "depth_src" (B,S,H',W'),
            "K_src" (B,S,3,3), "E_src" (B,S,3,4)}`` for :func:`multiview_consistency_loss`.
        log_b: ``(B, H, W)`` log Laplacian scale (mm) from a confidence head, or None.
    Returns:
        ``total`` (scalar, with graph) and ``terms``: detached scalars keyed ``depth, improvement,
        magnitude, smoothness, multiview, total`` (+ ``confidence`` when ``log_b`` is given). Every term is
        computed when its inputs exist (so it can be logged even at weight 0); ``multiview`` reads 0 without
        ``multiview`` inputs.
    """
    weights = weights or LossWeights()
    depth_refined = _as_bhw(depth_refined, "depth_refined")
    delta_z = _as_bhw(delta_z, "delta_z")
    depth_init = _as_bhw(depth_init, "depth_init")
    depth_gt = _as_bhw(depth_gt, "depth_gt")
    if mask is not None:
        mask = _as_bhw(mask, "mask").bool()
    terms: dict[str, torch.Tensor] = {
        "depth": depth_loss(depth_refined, depth_gt, mask),
        "improvement": improvement_loss(depth_refined, depth_init, depth_gt, mask),
        "magnitude": magnitude_loss(delta_z, _has_input(depth_init)),
        "smoothness": smoothness_loss(depth_refined, image if image is not None else depth_init),
    }
    if multiview is not None:
        terms["multiview"] = multiview_consistency_loss(
            depth_refined,
            multiview["K_ref"],
            multiview["E_ref"],
            multiview["depth_src"],
            multiview["K_src"],
            multiview["E_src"],
        )
    else:
        terms["multiview"] = _graph_zero(depth_refined)
    if log_b is not None:
        terms["confidence"] = laplacian_nll_loss(depth_refined, depth_gt, _as_bhw(log_b, "log_b"), mask)
    return weighted_total(terms, weights, depth_refined)


def weighted_total(terms: dict[str, torch.Tensor], weights, like: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """``Σ weight · term`` over ``terms`` (a weight of 0 drops its term; ``weights`` has one attribute per
    term name) and the detached terms plus ``"total"``, for logging. ``like`` carries the graph of a zero."""
    total = _graph_zero(like)
    for name, value in terms.items():
        w = getattr(weights, name)
        if w:
            total = total + w * value
    out = {name: value.detach() for name, value in terms.items()}
    out["total"] = total.detach()
    return total, out


def multiview_inputs(batch: dict, depth_src: torch.Tensor | None = None) -> dict[str, torch.Tensor] | None:
    """The ``multiview`` argument of :func:`compute_losses` / :func:`loss_maps` for a ``(B, V, …)`` batch:
    view 0 is the reference, views 1… the sources with their ground truth zeroed outside their masks, or
    ``depth_src (B, V−1, H, W)`` mm when given (e.g. the sources' refined depths). None when the batch has a
    single view."""
    depth, mask = batch["depth"], batch["mask"].bool()
    if depth.shape[1] < 2:
        return None
    if depth_src is None:
        depth_src = torch.where(mask[:, 1:], depth[:, 1:], torch.zeros_like(depth[:, 1:]))
    return {
        "K_ref": batch["intrinsics"][:, 0],
        "E_ref": batch["extrinsics"][:, 0],
        "depth_src": depth_src,
        "K_src": batch["intrinsics"][:, 1:],
        "E_src": batch["extrinsics"][:, 1:],
    }


def losses_for_batch(
    batch: dict, model_out: dict, weights: LossWeights | None = None, multiview_target: str = "gt"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`compute_losses` for a data-loader batch (DESIGN.md §4) and :func:`deltaz.model.refine`'s output.

    View 0 is the reference: ``batch["depth"][:, 0]`` is its ground truth, ``batch["depth_init"][:, 0]``
    its input, ``batch["mask"][:, 0]`` its mask and ``batch["image"][:, 0]`` (if present) the smoothness
    guide. Views 1… (when ``V > 1``) are the multi-view sources with their ground-truth depths (zeroed
    outside their masks). ``model_out["depth_refined"]``/``["delta_z"]`` are ``(B, H, W)`` for view 0.
    ``multiview_target``: what the multi-view term compares the reference with — ``"gt"`` (default) the sources'
    ground truth, ``"refined"`` the sources' refined depths ``model_out["depth_src_refined"] (B, V−1, H, W)``.
    """
    depth = batch["depth"]
    if depth.dim() != 4:
        raise ValueError(f"batch['depth'] must be (B, V, H, W), got shape {tuple(depth.shape)}")
    if multiview_target not in ("gt", "refined"):
        raise ValueError(f"multiview_target must be 'gt' or 'refined', got {multiview_target!r}")
    depth_src = None
    if multiview_target == "refined" and depth.shape[1] > 1:
        depth_src = model_out.get("depth_src_refined")
        if depth_src is None:
            raise ValueError("multiview_target='refined' needs model_out['depth_src_refined'] (B, V-1, H, W) mm")
    mask = batch["mask"].bool()
    image = batch.get("image")
    multiview = multiview_inputs(batch, depth_src)
    return compute_losses(
        model_out["depth_refined"],
        model_out["delta_z"],
        batch["depth_init"][:, 0],
        depth[:, 0],
        mask[:, 0],
        weights,
        image=None if image is None else image[:, 0],
        multiview=multiview,
        log_b=model_out.get("log_b"),
    )
