"""The photometric gate: keep a refiner's correction only where the source views confirm it.

A refiner trained on simulated scenes also "corrects" depth that was already right, most of all on images
unlike its training data (on Middlebury's Motorcycle it made 5–16 % of the pixels worse by more than 1 mm).
Where other calibrated views of the scene exist, each pixel can be checked without ground truth: warp the
sources into the reference through the input depth and through the refined depth, and compare the
photometric errors (:func:`deltaz.ops.selfsup.photometric_loss_map`: SSIM + L1, exposure-normalised, the
minimum over the sources that see the point). The gate keeps ``depth_refined`` where its error is lower than
the input's by more than ``margin`` and the input's elsewhere::

    depth_gated = where(err(depth_refined) < err(depth_init) − margin, depth_refined, depth_init)

Pixels that no source sees (out of frame) keep the input; holes of the input keep the refiner's value (a fill,
or a hole). Optionally (``trust_rel``) a correction larger than that fraction of the input depth stands without
confirmation: where a plane sweep's outliers live — texture-less surfaces — the photometric comparison is blind,
so a refiner fitted to the scene's own views (``deltaz adapt``) is trusted there for large moves.

What it cannot do: confirm a correction at a pixel the sources do not see — an occluded background pixel next
to a foreground edge, where stereo's fattening errors live — so it keeps the input there.
"""

from __future__ import annotations

import torch

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.ops.selfsup import photometric_loss_map

__all__ = ["GATE_MARGIN", "photometric_gate", "gate_correction"]

#: Default margin (photometric error units, ~[0, 1]): 0, any photometric improvement. Chosen on the design data
#: with the checkpoint of ``make demo`` at commit 6ea4209 (3 lights): the demo's synthetic validation scans 9
#: and 10 (raw plane-sweep input: covered MAE 11.68 -> 11.47 mm ungated and gated, harm 4.5 -> 1.0 %, good
#: pixels 1.18 -> 0.88 mm against the input's 0.90) and the left half of Middlebury's Motorcycle (SGBM input:
#: harm 14.0 -> 3.3 %, good pixels 3.40 -> 1.26 mm against 1.00). A margin of 0.01 harmed less (0.3 %, 0.5 %)
#: but gave back half the synthetic gain (11.57 mm).
GATE_MARGIN = 0.0


def photometric_gate(depth_init: torch.Tensor, depth_refined: torch.Tensor, image_ref: torch.Tensor,
                     image_src: torch.Tensor, multiview: MultiView, margin: float = GATE_MARGIN) -> torch.Tensor:
    """``(B, H, W)`` bool: where the sources confirm the refined depth (see the module docstring).

    Args:
        depth_init, depth_refined: ``(B, H, W)`` reference z-depth, mm, 0 = hole.
        image_ref: ``(B, 3, H, W)`` in [0, 1]; image_src: ``(B, S, 3, H', W')`` in [0, 1].
        multiview: the reference's and sources' cameras (:class:`deltaz.core.batch.MultiView`; its
            ``depth_src`` may be None).
        margin: the photometric improvement required (≥ 0).
    """
    if depth_init.shape != depth_refined.shape:
        raise DataError(f"depth_init {tuple(depth_init.shape)} and depth_refined {tuple(depth_refined.shape)} "
                        "must have the same (B, H, W) shape")
    if not margin >= 0:
        raise DataError(f"margin must be >= 0, got {margin}")
    with torch.no_grad():
        error_init, seen_init = photometric_loss_map(depth_init, image_ref, image_src, multiview)
        error_refined, seen_refined = photometric_loss_map(depth_refined, image_ref, image_src, multiview)
    return seen_init & seen_refined & (error_refined < error_init - margin)


def gate_correction(depth_init: torch.Tensor, depth_refined: torch.Tensor, image_ref: torch.Tensor,
                    image_src: torch.Tensor, multiview: MultiView, margin: float = GATE_MARGIN,
                    trust_rel: float | None = None) -> torch.Tensor:
    """``(B, H, W)`` mm: ``depth_refined`` where :func:`photometric_gate` confirms it, the input is a hole, or
    (``trust_rel``, a fraction) ``|depth_refined − depth_init| > trust_rel · depth_init``; ``depth_init`` elsewhere."""
    if trust_rel is not None and not trust_rel >= 0:
        raise DataError(f"trust_rel must be >= 0 or None, got {trust_rel}")
    keep = photometric_gate(depth_init, depth_refined, image_ref, image_src, multiview, margin) | (depth_init <= 0)
    if trust_rel is not None:
        keep = keep | ((depth_refined - depth_init).abs() > trust_rel * depth_init)
    return torch.where(keep, depth_refined, depth_init)
