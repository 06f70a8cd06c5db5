"""Self-supervised losses for test-time adaptation (``deltaz adapt``): no ground truth anywhere.

What a scene without ground truth still says about a refined depth map (docs/DESIGN.md §1 conventions: mm,
z-depth, 0 = hole, world-to-camera ``E``; every warp goes through :mod:`deltaz.core.geometry`):

==================  ===================================================================  ==========
term                per pixel (masked mean)                                              unit
==================  ===================================================================  ==========
``photometric``     ``min_s [α·(1 − SSIM)/2 + (1 − α)·|I_ref − I_s→ref|]``, α = 0.85       1 (image)
``geometric``       ``|z_src − d_src(uv_src)| / z_src`` against the sources' refined depths  1 (relative)
``smoothness``      :func:`deltaz.ops.losses.smoothness_loss` (edge-aware, image-guided)         1
``anchor``          ``c · |d_ref − d_init| / d_init`` where the input has a depth            1 (relative)
==================  ===================================================================  ==========

* ``photometric``: each source image is warped into the reference through the refined depth
  (:func:`deltaz.core.geometry.warp`); the error is SSIM (kornia, 3×3 window) + L1 in Monodepth2's 0.85/0.15 mix,
  averaged over the colour channels. Out-of-frame pixels and reference holes do not count; occlusions are
  handled as self-supervised depth methods do, by the per-pixel **minimum over the sources** (a point hidden
  in one source is usually visible in another), and — when the sources' refined depths are given — by a
  visibility test (a source whose depth is clearly in front of the point does not count; with one source, a
  stereo pair, this is the only occlusion handling). With ``normalise_exposure`` each image is divided by its
  per-channel mean first, so a per-view exposure/white-balance gain does not read as a depth error.
  (:func:`deltaz.core.geometry.warp` is ``reproject`` + ``sample_pixels``; the term backprojects the reference once
  and calls ``reproject_points`` + ``sample_pixels`` per source itself, to read the source image and the source depth
  at the same landing point.)
* ``geometric``: :func:`deltaz.ops.losses.multiview_consistency_loss_map` (its occlusion rule) divided by the
  reference depth, so the term is scale-free; differentiable w.r.t. both the reference and the sources.
* ``anchor``: keeps adaptation from drifting where the input is trustworthy; ``c ∈ [0, 1]`` is a confidence
  of the input (the plane sweep's own, :func:`deltaz.ops.mvs.load_sweep`, or the multi-view agreement of the
  inputs, :func:`input_agreement`).

Every term is 0 for a perfect, consistent scene (photometric, geometric: consistent images and depths;
smoothness: a constant depth; anchor: ``d_ref == d_init``) and returns a graph-connected 0 when nothing
counts. All terms are scale-free, so the weights of :class:`SelfSupWeights` hold at any scene scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from kornia.filters import get_gaussian_kernel2d
from kornia.losses import ssim_loss

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.core.geometry import backproject_depth, camera_to_world, reproject_points, sample_pixels
from deltaz.ops.losses import multiview_consistency_loss_map, smoothness_loss, weighted_total
from deltaz.ops.metrics import multiview_consistency

__all__ = [
    "SSIM_ALPHA",
    "SELFSUP_TERMS",
    "SelfSupWeights",
    "SelfSupInputs",
    "photometric_error",
    "masked_photometric_error",
    "photometric_loss_map",
    "photometric_loss",
    "geometric_loss",
    "anchor_loss",
    "input_agreement",
    "selfsup_losses",
]

#: Weight of the SSIM part of the photometric error (Monodepth2's 0.85; L1 gets the rest).
SSIM_ALPHA = 0.85
#: Keys of the terms dict of :func:`selfsup_losses` (besides ``total``).
SELFSUP_TERMS = ("photometric", "geometric", "smoothness", "anchor")


def _graph_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.zeros_like(x, dtype=torch.bool), x, torch.zeros_like(x)).sum()


def _masked_mean(values: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``values`` (optionally × ``weight``) over ``mask``; graph-connected 0 when empty, never NaN."""
    if weight is not None:
        values = values * weight
    total = torch.where(mask, values, torch.zeros_like(values)).sum()
    return total / mask.sum().clamp(min=1).to(values.dtype)


def _normalise(image: torch.Tensor) -> torch.Tensor:
    """``image (…, 3, H, W)`` divided by its per-channel mean, × 0.5 (a mid-grey image stays put)."""
    mean = image.mean(dim=(-2, -1), keepdim=True).clamp(min=1e-3)
    return image * (0.5 / mean)


def photometric_error(image_a: torch.Tensor, image_b: torch.Tensor, alpha: float = SSIM_ALPHA,
                      window: int = 3) -> torch.Tensor:
    """Per-pixel ``α·(1 − SSIM)/2 + (1 − α)·|a − b|`` averaged over channels: ``(B, 3, H, W)`` ×2 → ``(B, H, W)``.

    SSIM is :func:`kornia.losses.ssim_loss` (``reduction="none"``, which is ``(1 − SSIM)/2``) with a
    ``window``-pixel Gaussian window and ``max_val = 1``. Zero where the images agree on the whole window.
    """
    dssim = ssim_loss(image_a, image_b, window, max_val=1.0, reduction="none")
    l1 = (image_a - image_b).abs()
    return (alpha * dssim + (1.0 - alpha) * l1).mean(dim=1)


def masked_photometric_error(image_a: torch.Tensor, image_b: torch.Tensor, mask: torch.Tensor,
                             alpha: float = SSIM_ALPHA, window: int = 3) -> torch.Tensor:
    """:func:`photometric_error` with SSIM's window moments taken over the pixels of ``mask`` only:
    ``(B, 3, H, W)`` ×2 and ``mask (B, H, W)`` bool → ``(B, H, W)``.

    The same Gaussian window (σ 1.5), reflected border and constants as kornia's SSIM, each pixel's means,
    variances and covariance weighted by ``mask`` and renormalised: with ``mask`` all true it equals
    :func:`photometric_error` (to float rounding). A pixel outside ``mask`` adds nothing to its neighbours' SSIM.
    Fewer counted pixels in a window still leave smaller variances, so SSIM's structure term leans towards 1 there
    (a pixel with no counted neighbour scores its luminance and L1 only): the bias is smaller, not gone.
    """
    kernel = get_gaussian_kernel2d((window, window), (1.5, 1.5)).to(image_a)[0]
    pad, C = window // 2, image_a.shape[1]
    weight = mask.to(image_a.dtype).unsqueeze(1)
    # the six weighted maps in one grouped convolution: a, b, a², b², ab (C channels each) and the weight itself
    stack = torch.cat([image_a, image_b, image_a * image_a, image_b * image_b, image_a * image_b], 1) * weight
    stack = F.pad(torch.cat([stack, weight], 1), (pad, pad, pad, pad), mode="reflect")
    n = stack.shape[1]
    local = F.conv2d(stack, kernel.expand(n, 1, window, window), groups=n)
    norm = local[:, -1:].clamp_min(1e-6)
    mu_a, mu_b, m_aa, m_bb, m_ab = (local[:, i * C:(i + 1) * C] / norm for i in range(5))
    var_a, var_b, cov = m_aa - mu_a ** 2, m_bb - mu_b ** 2, m_ab - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2) + 1e-12)
    dssim = ((1.0 - ssim) / 2).clamp(0.0, 1.0)
    return (alpha * dssim + (1.0 - alpha) * (image_a - image_b).abs()).mean(dim=1)


def photometric_loss_map(
    depth_ref: torch.Tensor,
    image_ref: torch.Tensor,
    image_src: torch.Tensor,
    multiview: MultiView,
    alpha: float = SSIM_ALPHA,
    normalise_exposure: bool = True,
    occlusion_tol_rel: float = 0.02,
    mask_ssim: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel photometric reprojection error, minimum over the sources that see the point, and the pixels
    that count.

    Args:
        depth_ref: ``(B, H, W)`` refined reference z-depth, mm, 0 = hole.
        image_ref: ``(B, 3, H, W)`` in [0, 1].
        image_src: ``(B, S, 3, H', W')`` in [0, 1] (may be larger than the depth: ``K_src`` is for ``H'×W'``).
        multiview: :class:`deltaz.core.batch.MultiView`: ``K_ref (B, 3, 3)`` for ``H×W``, ``E_ref (B, 3|4, 4)``,
            ``K_src (B, S, 3, 3)``, ``E_src (B, S, 3|4, 4)`` world-to-camera, and ``depth_src``: None (no
            visibility test) or ``(B, S, h, w)`` mm, the sources' depths (detached here; ``h×w`` may be the image's
            grid or a coarser one, ``K`` scaled by ``w/W'``, ``h/H'``): a point is occluded in
            source ``s`` when the source's depth where it lands is in front of it by more than
            ``occlusion_tol_rel`` of its depth (``d_s < (1 − tol)·z_src``, holes count as visible); an occluded
            source does not count for that pixel. This matters with few sources (a stereo pair has one).
    Returns:
        ``error (B, H, W)`` (0 where nothing counts) and ``keep (B, H, W)`` bool: reference depth > 0 and the
        point lands in front of, inside and unoccluded in at least one source. A source pixel that does not
        count is filled with the reference colour before SSIM, so out-of-frame zeros do not leak into a valid
        pixel's window. That fill is a perfect match in its neighbours' windows, so a depth map with holes or
        unseen pixels beside a pixel scores better there; ``mask_ssim`` takes SSIM's window moments over the
        counted pixels only instead (:func:`masked_photometric_error`). The multi-view search
        (:mod:`deltaz.ops.mvs`), which compares candidate maps with different holes, uses it.
    """
    if image_src.dim() != 5 or image_src.shape[2] != 3:
        raise DataError(f"image_src must be (B, S, 3, H', W'), got shape {tuple(image_src.shape)}")
    mv = MultiView.coerce(multiview)
    K_ref, E_ref, K_src, E_src, depth_src = mv.K_ref, mv.E_ref, mv.K_src, mv.E_src, mv.depth_src
    depth_uv_scale = None
    if depth_src is not None:  # the sources' depths may be coarser than their images (K' = diag(s)·K)
        depth_uv_scale = torch.tensor([depth_src.shape[-1] / image_src.shape[-1],
                                       depth_src.shape[-2] / image_src.shape[-2]],
                                      dtype=depth_ref.dtype, device=depth_ref.device)
    if normalise_exposure:
        image_ref, image_src = _normalise(image_ref), _normalise(image_src)
    best = None
    points_world = camera_to_world(backproject_depth(depth_ref, K_ref), E_ref)  # once for every source
    for s in range(image_src.shape[1]):
        uv, z_src, valid = reproject_points(points_world, depth_ref, K_src[:, s], E_src[:, s], image_src.shape[-2:])
        warped = sample_pixels(image_src[:, s], uv)
        if depth_src is not None:
            d_s = sample_pixels(depth_src[:, s:s + 1].detach().to(depth_ref.dtype), uv * depth_uv_scale,
                                mode="nearest")[:, 0]
            valid = valid & ((d_s <= 0) | (d_s >= (1.0 - occlusion_tol_rel) * z_src.detach()))
        warped = torch.where(valid.unsqueeze(1), warped, image_ref)
        error = (masked_photometric_error(image_ref, warped, valid, alpha) if mask_ssim
                 else photometric_error(image_ref, warped, alpha))
        error = torch.where(valid, error, torch.full_like(error, float("inf")))
        best = error if best is None else torch.minimum(best, error)
    keep = torch.isfinite(best) & (depth_ref > 0)
    return torch.where(keep, best, torch.zeros_like(best)), keep


def photometric_loss(depth_ref: torch.Tensor, image_ref: torch.Tensor, image_src: torch.Tensor, multiview: MultiView,
                     alpha: float = SSIM_ALPHA, normalise_exposure: bool = True,
                     occlusion_tol_rel: float = 0.02) -> torch.Tensor:
    """Mean of :func:`photometric_loss_map` over the pixels that count (a scalar in image units)."""
    error, keep = photometric_loss_map(depth_ref, image_ref, image_src, multiview, alpha, normalise_exposure,
                                       occlusion_tol_rel)
    return _masked_mean(error, keep)


def geometric_loss(depth_ref: torch.Tensor, multiview: MultiView, occlusion_tol_rel: float = 0.02) -> torch.Tensor:
    """Relative geometric consistency of the reference depth with the sources' (refined) depths.

    :func:`deltaz.ops.losses.multiview_consistency_loss_map` (``|z_src − d_s|`` in mm, averaged over the sources
    that keep a pixel: in frame, not occluded by more than ``occlusion_tol_rel``) divided by the reference depth
    (detached), averaged over the kept pixels: dimensionless, 0.01 = 1 % of the depth. Shapes as there:
    ``depth_ref (B, H, W)``, ``multiview.depth_src (B, S, H', W')`` mm, 0 = hole.
    """
    residual, keep = multiview_consistency_loss_map(depth_ref, multiview, occlusion_tol_rel=occlusion_tol_rel)
    scale = torch.where(depth_ref > 0, depth_ref, torch.ones_like(depth_ref)).detach()
    return _masked_mean(residual / scale, keep & (depth_ref > 0))


def anchor_loss(depth_refined: torch.Tensor, depth_init: torch.Tensor, confidence: torch.Tensor | None = None
                ) -> torch.Tensor:
    """``mean over input pixels of c · |d_ref − d_init| / d_init`` (dimensionless), ``c`` = confidence in [0, 1].

    ``depth_refined``, ``depth_init``, ``confidence``: ``(B, H, W)``; pixels without an input depth (holes)
    do not count; ``confidence`` None = 1 everywhere. ``depth_init`` is a fixed reference (detached).
    """
    depth_init = depth_init.detach()
    has_input = torch.isfinite(depth_init) & (depth_init > 0)
    safe = torch.where(has_input, depth_init, torch.ones_like(depth_init))
    weight = None if confidence is None else confidence.detach().clamp(0.0, 1.0)
    return _masked_mean((depth_refined - safe).abs() / safe, has_input, weight)


@torch.no_grad()
def input_agreement(depth_init: torch.Tensor, multiview: MultiView, pix_thresh: float = 1.0,
                    rel_depth_thresh: float = 0.01) -> torch.Tensor:
    """A confidence of the input from its multi-view agreement: share of the sources whose input depth passes
    MVSNet's geometric check (:func:`deltaz.ops.metrics.multiview_consistency`) with the reference's, ``(B, H, W)``
    in [0, 1]; 0 at holes. ``depth_init (B, H, W)`` mm; ``multiview.depth_src (B, S, H, W)`` the sources' input
    depths (mm) with their cameras; None (no sources): 1 wherever the input has a depth."""
    mv = MultiView.coerce(multiview)
    S = 0 if mv is None else mv.num_sources
    if S == 0:
        return (depth_init > 0).to(depth_init.dtype)
    result = multiview_consistency(depth_init, mv, pix_thresh, rel_depth_thresh)
    return result.n_consistent.to(depth_init.dtype) / S


@dataclass
class SelfSupWeights:
    """Weights of the self-supervised terms; the total is ``Σ weight · term`` (0 drops a term).

    All terms are dimensionless. Defaults, chosen on ONE held-out synthetic scan with plane-sweep input (scan1 of
    ``benchmarks/bench_adapt.py``'s data; the other scans and Middlebury's right half are held out): the
    photometric error leads; the geometric term (relative, ~0.003 for a 2 mm disagreement at 700 mm) ties the
    views together; smoothness is a tie-breaker; the anchor at 0.3 keeps harm at or below the unadapted
    refiner's (at 1.0 adaptation barely moves, at 0.1 harm_pct rose 1.6–3.3 points).
    """

    photometric: float = 1.0
    geometric: float = 1.0
    smoothness: float = 0.1
    anchor: float = 0.3

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class SelfSupInputs:
    """``B`` reference views and their ``S`` source views, what :func:`selfsup_losses` needs besides the
    refined depths. mm, world-to-camera, images in [0, 1].

    ``depth_init (B, H, W)``, ``image (B, 3, H, W)``, ``K (B, 3, 3)``, ``E (B, 3, 4)``,
    ``image_src (B, S, 3, H, W)``, ``K_src (B, S, 3, 3)``, ``E_src (B, S, 3, 4)``,
    ``confidence (B, H, W)`` in [0, 1] (the anchor's weight) or None (1).
    """

    depth_init: torch.Tensor
    image: torch.Tensor
    K: torch.Tensor
    E: torch.Tensor
    image_src: torch.Tensor
    K_src: torch.Tensor
    E_src: torch.Tensor
    confidence: torch.Tensor | None = None

    def to(self, device) -> "SelfSupInputs":
        return SelfSupInputs(**{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in self.__dict__.items()})

    def multiview(self, depth_src: torch.Tensor | None = None) -> MultiView:
        """The references' and sources' cameras with the sources' depths ``depth_src (B, S, H, W)`` mm (None:
        cameras only)."""
        return MultiView(self.K, self.E, depth_src, self.K_src, self.E_src)


def selfsup_losses(
    depth_refined: torch.Tensor,
    inputs: SelfSupInputs,
    depth_src_refined: torch.Tensor | None = None,
    weights: SelfSupWeights | None = None,
    normalise_exposure: bool = True,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """All self-supervised terms of the reference views and their weighted sum.

    Args:
        depth_refined: ``(B, H, W)`` mm, the refined reference depths (with graph).
        inputs: :class:`SelfSupInputs`.
        depth_src_refined: ``(B, S, H, W)`` mm, the sources' refined depths (with or without graph), for the
            geometric term and the photometric term's visibility test; None = geometric reads 0, no visibility test.
        weights: :class:`SelfSupWeights` (defaults when None). A term of weight 0 is still computed (logged).
    Returns:
        ``total`` (scalar with graph) and detached scalars ``photometric, geometric, smoothness, anchor, total``.
    """
    weights = weights or SelfSupWeights()
    x = inputs
    multiview = x.multiview(depth_src_refined)
    terms = {
        "photometric": photometric_loss(depth_refined, x.image, x.image_src, multiview,
                                        normalise_exposure=normalise_exposure),
        "geometric": (geometric_loss(depth_refined, multiview)
                      if depth_src_refined is not None else _graph_zero(depth_refined)),
        "smoothness": smoothness_loss(depth_refined, x.image),
        "anchor": anchor_loss(depth_refined, x.depth_init, x.confidence),
    }
    return weighted_total(terms, weights, depth_refined)
