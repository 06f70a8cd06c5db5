"""The weighted training loss of :mod:`deltaz.ops.losses`: :class:`LossWeights`, :func:`compute_losses` and
:func:`losses_for_batch` for a :class:`deltaz.core.batch.MultiViewBatch`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from deltaz.core.batch import MultiView, MultiViewBatch
from deltaz.core.errors import ConfigError, DataError
from deltaz.ops.losses.multiview import multiview_consistency_loss, multiview_consistency_loss_map
from deltaz.ops.losses.terms import (
    _as_bhw,
    _graph_zero,
    _has_input,
    depth_loss,
    depth_loss_map,
    improvement_loss,
    improvement_loss_map,
    laplacian_nll_loss,
    magnitude_loss,
    magnitude_loss_map,
    smoothness_loss,
    smoothness_loss_map,
)

#: The keys of the terms dict returned by :func:`compute_losses` (``confidence`` only when used).
TERMS = ("depth", "improvement", "magnitude", "smoothness", "multiview", "total")


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
    multiview: MultiView | None = None,
) -> dict[str, torch.Tensor]:
    """Unweighted per-pixel maps ``(B, H, W)`` of the five terms (0 where a pixel does not count), for
    display (the loss explorer of notebooks/05_losses.ipynb). Arguments as in :func:`compute_losses`; each map's masked
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
        maps["multiview"] = multiview_consistency_loss_map(depth_refined, multiview)
    return {name: torch.where(keep, values, torch.zeros_like(values)) for name, (values, keep) in maps.items()}


def compute_losses(
    depth_refined: torch.Tensor,
    delta_z: torch.Tensor,
    depth_init: torch.Tensor,
    depth_gt: torch.Tensor,
    mask: torch.Tensor | None,
    weights: LossWeights | None = None,
    image: torch.Tensor | None = None,
    multiview: MultiView | None = None,
    log_b: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """All loss terms for the reference view and their weighted sum.

    Args:
        depth_refined, delta_z, depth_init, depth_gt: ``(B, H, W)`` (or ``(B, 1, H, W)``) mm, any ``H×W``.
        mask: ``(B, H, W)`` bool, ground-truth validity (None: ``depth_gt > 0``).
        weights: :class:`LossWeights` (defaults when None).
        image: ``(B, 3, H, W)`` in [0, 1], the smoothness guide; ``depth_init`` guides when None.
        multiview: None, or the :class:`deltaz.core.batch.MultiView` (or its dict form) of
            :func:`multiview_consistency_loss`: reference and source cameras, sources' depths ``(B, S, H', W')`` mm.
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
        terms["multiview"] = multiview_consistency_loss(depth_refined, multiview)
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


def multiview_inputs(batch: MultiViewBatch | dict, depth_src: torch.Tensor | None = None) -> MultiView | None:
    """The ``multiview`` argument of :func:`compute_losses` / :func:`loss_maps` for a ``(B, V, …)`` batch:
    view 0 is the reference, views 1… the sources with their ground truth zeroed outside their masks, or
    ``depth_src (B, V−1, H, W)`` mm when given (e.g. the sources' refined depths). None when the batch has a
    single view. :meth:`deltaz.core.batch.MultiViewBatch.multiview` of the batch."""
    return MultiViewBatch.from_mapping(batch).multiview("depth" if depth_src is None else depth_src)


def losses_for_batch(
    batch: MultiViewBatch | dict, model_out: dict, weights: LossWeights | None = None, multiview_target: str = "gt"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`compute_losses` for a data-loader batch (docs/DESIGN.md §4) and :func:`deltaz.model.refine`'s output.

    ``batch``: a :class:`deltaz.core.batch.MultiViewBatch` (or its dict form) with ground truth. View 0 is the
    reference: ``batch.depth[:, 0]`` is its ground truth, ``batch.depth_init[:, 0]`` its input,
    ``batch.mask[:, 0]`` its mask and ``batch.image[:, 0]`` (if present) the smoothness guide. Views 1… (when
    ``V > 1``) are the multi-view sources with their ground-truth depths (zeroed outside their masks).
    ``model_out["depth_refined"]``/``["delta_z"]`` are ``(B, H, W)`` for view 0.
    ``multiview_target``: what the multi-view term compares the reference with — ``"gt"`` (default) the sources'
    ground truth, ``"refined"`` the sources' refined depths ``model_out["depth_src_refined"] (B, V−1, H, W)``.
    """
    batch = MultiViewBatch.from_mapping(batch)
    if batch.depth is None or batch.mask is None:
        raise DataError("losses_for_batch needs the batch's ground truth: batch.depth and batch.mask (B, V, H, W)")
    if multiview_target not in ("gt", "refined"):
        raise ConfigError(f"multiview_target must be 'gt' or 'refined', got {multiview_target!r}")
    depth_src: torch.Tensor | str = "depth"
    if multiview_target == "refined" and batch.num_views > 1:
        depth_src = model_out.get("depth_src_refined")
        if depth_src is None:
            raise DataError("multiview_target='refined' needs model_out['depth_src_refined'] (B, V-1, H, W) mm")
    ref = batch.ref
    return compute_losses(
        model_out["depth_refined"],
        model_out["delta_z"],
        ref.depth_init,
        ref.depth,
        ref.mask,
        weights,
        image=ref.image,
        multiview=batch.multiview(depth_src),
        log_b=model_out.get("log_b"),
    )
