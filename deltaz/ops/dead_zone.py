"""The dead zone: a refiner's smallest corrections are dropped at inference.

A refiner trained on simulated scenes moves nearly every pixel a little, and many of those small moves are noise:
on the design data below, 72–96 % of the covered pixels moved by less than :data:`DEAD_ZONE`, 39–48 % of those
moves made the depth worse, and they were 25–49 % of the pixels made more than 1 mm worse (the ``harm_pct`` of
:func:`deltaz.ops.metrics.harm_metrics`). The dead zone keeps a correction only where it is larger than a fraction
of the input's own depth, and keeps the input elsewhere::

    Δz_kept = Δz   where  Δz > farther · depth_init  or  Δz < −nearer · depth_init
              0    elsewhere (and Δz as it is at holes, depth_init <= 0)

The zone is asymmetric: corrections *towards* the camera must be larger to stand. Real matchers' large errors
are mostly too near (a foreground's depth spread over the background beside it), so a true correction is more
often farther; a small nearer move is more often noise. Fractions of the depth, not mm: the rule does not depend
on the scene's scale.

:data:`DEAD_ZONE` was chosen by a rule written before the runs (docs/EXPERIMENTS.md, "The dead zone"): on the design
data (the synthetic validation scans with raw plane-sweep and ``mvs`` input, seeds 5, 7 and 31 with raw plane-sweep
input, the left half of Middlebury's Motorcycle) the candidate that cut ``harm_pct`` most while no set's covered MAE
rose by more than 1 % (its good pixels were 0.002 mm worse on one set, which that rule did not allow), then
confirmed on a fresh synthetic set (seed 13): harm × 0.52–0.59, covered MAE × 1.002–1.009, ``mae_good_mm`` −0.005 to
−0.020 mm. Training never applies it (a zero correction has no gradient).
"""

from __future__ import annotations

import torch

from deltaz.core.errors import ConfigError

__all__ = ["DEAD_ZONE", "DEAD_ZONE_HELP", "check_dead_zone", "apply_dead_zone"]

#: ``(farther, nearer)``: the fractions of the input depth a correction must exceed to stand (module docstring).
DEAD_ZONE = (0.002, 0.010)
#: The ``--dead-zone`` flag's help (``deltaz evaluate``, ``deltaz refine``, the Middlebury benchmark).
DEAD_ZONE_HELP = ("drop the refiner's corrections smaller than these fractions of the input depth, farther,nearer "
                  f"(default {DEAD_ZONE[0]:g},{DEAD_ZONE[1]:g}; off = keep every correction)")


def check_dead_zone(dead_zone: tuple[float, float] | None, name: str = "dead_zone") -> tuple[float, float] | None:
    """``dead_zone`` as a ``(farther, nearer)`` pair of finite fractions in [0, 1), or None (no dead zone);
    a :class:`~deltaz.core.errors.ConfigError` naming ``name`` otherwise."""
    if dead_zone is None:
        return None
    try:
        farther, nearer = (float(v) for v in dead_zone)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected two fractions (farther, nearer), got {dead_zone!r}") from None
    if not (0 <= farther < 1 and 0 <= nearer < 1):
        raise ConfigError(f"{name}: expected fractions of the depth in [0, 1), got ({farther}, {nearer})")
    return farther, nearer


def apply_dead_zone(delta_z: torch.Tensor, depth_init: torch.Tensor,
                    dead_zone: tuple[float, float] | None = DEAD_ZONE) -> torch.Tensor:
    """``delta_z`` with the corrections inside the dead zone set to 0 (module docstring).

    Args:
        delta_z, depth_init: mm, one shape (any); ``depth_init <= 0`` marks holes, whose Δz is kept.
        dead_zone: ``(farther, nearer)`` fractions of ``depth_init``, or None (``delta_z`` unchanged).
    """
    farther, nearer = check_dead_zone(dead_zone) or (0.0, 0.0)
    if farther == 0 and nearer == 0:
        return delta_z
    inside = (depth_init > 0) & (delta_z <= farther * depth_init) & (delta_z >= -nearer * depth_init)
    return torch.where(inside, torch.zeros_like(delta_z), delta_z)
