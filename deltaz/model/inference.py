"""Running a refiner: :func:`refine` adds its correction to the input depth (``depth_refined = depth_init + Δz``).

Training and every inference path (evaluation's rows, ``deltaz refine``, adaptation, the benchmarks) call it; the
inference dials — holes kept or filled, the dead zone (:mod:`deltaz.ops.dead_zone`), the mirror agreement
(:mod:`deltaz.ops.agreement`), the selection head's weighted median (:mod:`deltaz.model.selection`), the surface
smoothing (:mod:`deltaz.ops.smooth`) — are its arguments.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from deltaz.ops.agreement import mirror_agree
from deltaz.ops.dead_zone import apply_dead_zone
from deltaz.ops.smooth import smooth_delta_z

__all__ = ["refine", "median_selection"]


def _delta_z(model: nn.Module, depth_init: torch.Tensor, image: torch.Tensor | None,
             depth_range: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The model's ``(Δz, log_b or None)``, shaped like ``depth_init``."""
    out = model(depth_init, image=image, depth_range=depth_range)
    delta_z, log_b = out if isinstance(out, tuple) else (out, None)
    if depth_init.dim() == 3:
        delta_z = delta_z.squeeze(1)
        log_b = None if log_b is None else log_b.squeeze(1)
    return delta_z, log_b


@contextlib.contextmanager
def median_selection(model: nn.Module, on: bool = True):
    """Within the block every selection model in ``model`` (itself, or both networks of a blended refiner) copies
    the weighted median of its candidates' depths instead of their weighted mean when ``on``
    (:func:`deltaz.model.selection.weighted_median`); other models are left as they are. Restored on exit."""
    parts = [m for m in model.modules() if hasattr(m, "median")] if on else []
    before = [m.median for m in parts]
    for m in parts:
        m.median = True
    try:
        yield
    finally:
        for m, value in zip(parts, before):
            m.median = value


def refine(
    model: nn.Module,
    depth_init: torch.Tensor,
    image: torch.Tensor | None = None,
    depth_range: torch.Tensor | None = None,
    keep_holes: bool = False,
    dead_zone: tuple[float, float] | None = None,
    mirror_agreement: bool = False,
    weighted_median: bool = False,
    smooth: bool = False,
) -> dict[str, torch.Tensor | None]:
    """Run a refiner and add its correction: the ONE place that applies prototype fix E.

    ``depth_init`` is an input, not something to optimise: it is detached before the model sees it and
    before Δz is added, so no gradient reaches whatever produced it.

    Args:
        model: a :class:`~deltaz.model.DeltaZUnet` / :class:`~deltaz.model.MVSNetRefine` (or anything with the
            same forward).
        depth_init: ``(B, H, W)`` or ``(B, 1, H, W)`` mm, 0 = hole.
        image: ``(B, 3, H, W)`` in [0, 1] when the model takes one.
        depth_range: ``(B, 2)`` mm ``[min, max]`` or None.
        keep_holes: when True, Δz is zeroed where ``depth_init <= 0`` so holes stay holes.
        dead_zone: ``(farther, nearer)`` fractions of the depth (:mod:`deltaz.ops.dead_zone`; inference passes
            its ``DEAD_ZONE``, training None).
        mirror_agreement: also run the model on the left-right mirror of ``depth_init`` and ``image`` and keep
            only the correction the two agree on (:mod:`deltaz.ops.agreement`; before the dead zone). Inference
            only.
        weighted_median: a selection model (:class:`deltaz.model.SelectUnet`) copies the weighted median of its
            candidates' depths instead of their weighted mean (:func:`deltaz.model.selection.weighted_median`; in
            both passes of the agreement). Other models ignore it. Inference only; an option (``--weighted-median``),
            off by default.
        smooth: after the dead zone, the refined depth goes through the surface smoothing
            (:func:`deltaz.ops.smooth.smooth_surfaces`, its range scale from ``depth_init``); ``delta_z`` then
            includes it. Inference only (inference passes :data:`deltaz.ops.smooth.SURFACE_SMOOTHING`).
    Returns:
        ``{"depth_refined", "delta_z"}`` shaped like ``depth_init`` (mm); ``"log_b"`` (natural log of the
        Laplacian scale in mm) and ``"confidence" = 1/(1 + b/1 mm)`` in (0, 1], both shaped like
        ``depth_init``, or None when the model has no confidence head (with ``mirror_agreement``: the first
        pass's).
    """
    depth_init = depth_init.detach()  # fix E
    with median_selection(model, weighted_median):
        delta_z, log_b = _delta_z(model, depth_init, image, depth_range)
        if mirror_agreement:
            mirrored, _ = _delta_z(model, depth_init.flip(-1), None if image is None else image.flip(-1), depth_range)
            delta_z = mirror_agree(delta_z, mirrored.flip(-1), depth_init)
    if keep_holes:
        delta_z = torch.where(depth_init > 0, delta_z, torch.zeros_like(delta_z))
    delta_z = apply_dead_zone(delta_z, depth_init, dead_zone)
    if smooth:
        delta_z = smooth_delta_z(depth_init, delta_z)
    confidence = None if log_b is None else torch.sigmoid(-log_b)  # = 1 / (1 + b)
    return {
        "depth_refined": depth_init + delta_z,
        "delta_z": delta_z,
        "log_b": log_b,
        "confidence": confidence,
    }
