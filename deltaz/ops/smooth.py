"""Surface smoothing: the last inference step, a bilateral filter on depth scaled by the input's own noise level.

The refiner fixes wrong values — outliers, fattened edges — by copying depth that is already right a few pixels away,
and the dead zone (:mod:`deltaz.ops.dead_zone`) drops its small moves. What neither touches is noise-level error on
smooth surfaces: a matcher's quantisation and sensor noise. On a real DTU depth map (MVSNet's ground truth of a real
scan) a median filter beats the refiner on such input (docs/EXPERIMENTS.md, "Surface smoothing"). A bilateral filter
on depth averages each pixel with the neighbours within a few σ of its own depth — the same surface — and not with
the other side of a depth edge::

    depth_out(p) = Σ_q w(p, q) · d(q) / Σ_q w(p, q),   w = exp(−|p − q|² / 2·1.5²) · exp(−(d(q) − d(p))² / 2·σ_c²)

over the valid pixels ``q`` of a 5×5 window (:func:`deltaz.ops.baselines.bilateral`), holes kept as holes. The range
scale comes from the input itself, so the step does not depend on the scene's scale::

    σ_c = min(NOISE_FACTOR · σ̂, CAP_REL · median depth)

``σ̂`` (:func:`noise_sigma`) is the input's noise level, a robust deviation of its second differences (a surface
that is locally linear has none); the cap keeps a blocky or heavily structured input, whose second differences are
not noise, from being blurred. Chosen by a rule written before the runs, on design data only, and checked once on
held-out data (docs/EXPERIMENTS.md, "Surface smoothing"); the inference default (:data:`SURFACE_SMOOTHING`,
``--no-smooth`` turns it off). Training never applies it.
"""

from __future__ import annotations

import argparse
import math

import torch

from deltaz.ops.align import MAD_TO_SIGMA
from deltaz.ops.baselines import bilateral

__all__ = ["SURFACE_SMOOTHING", "SMOOTH_HELP", "NOISE_FACTOR", "CAP_REL", "add_smooth_flags", "noise_sigma",
           "range_sigma", "smooth_surfaces", "smooth_delta_z"]

#: The inference default (``deltaz evaluate``, ``deltaz refine``, ``deltaz.refine_depth``, ``deltaz demo``, the
#: benchmarks); :func:`deltaz.model.refine` itself, which training calls, defaults to off.
SURFACE_SMOOTHING = True
#: ``σ_c`` = this many noise levels ``σ̂`` ...
NOISE_FACTOR = 1.5
#: ... at most this fraction of the input's median depth (2 mm at 680 mm).
CAP_REL = 0.003
KERNEL_SIZE = 5
SIGMA_SPACE_PX = 1.5
#: The ``--smooth`` / ``--no-smooth`` flags' help.
SMOOTH_HELP = ("smooth the refined depth with a bilateral filter on depth whose range scale is the input's own noise "
               "level: it averages noise on smooth surfaces and keeps depth edges (default on)")


def add_smooth_flags(parser: argparse.ArgumentParser) -> None:
    """``--smooth`` (the default, :data:`SURFACE_SMOOTHING`) and ``--no-smooth``, both setting ``args.smooth``."""
    parser.add_argument("--smooth", dest="smooth", action="store_true", default=SURFACE_SMOOTHING, help=SMOOTH_HELP)
    parser.add_argument("--no-smooth", dest="smooth", action="store_false",
                        help="leave the refined depth as the refiner (and its dead zone) made it")


def noise_sigma(depth: torch.Tensor) -> float:
    """The noise level (mm) of one depth map ``(H, W)`` mm, 0 = hole: ``1.4826 · median |d(x−1) − 2·d(x) + d(x+1)|
    / √6`` over the valid triples of its rows and columns (Gaussian noise of σ gives σ; a plane gives 0); 0.0 when it
    has no valid triple."""
    diffs = []
    for a, b, c in ((depth[:, :-2], depth[:, 1:-1], depth[:, 2:]), (depth[:-2], depth[1:-1], depth[2:])):
        valid = (a > 0) & (b > 0) & (c > 0)
        diffs.append((a - 2 * b + c)[valid].abs())
    second = torch.cat(diffs)
    if second.numel() == 0:
        return 0.0
    return MAD_TO_SIGMA * second.double().median().item() / math.sqrt(6.0)


def range_sigma(depth_init: torch.Tensor) -> float:
    """``σ_c`` (mm) for one input ``(H, W)`` mm: ``min(NOISE_FACTOR · σ̂, CAP_REL · median depth)``; 0.0 when the
    input has no valid pixel."""
    valid = depth_init[depth_init > 0]
    if valid.numel() == 0:
        return 0.0
    return min(NOISE_FACTOR * noise_sigma(depth_init), CAP_REL * valid.double().median().item())


@torch.no_grad()
def smooth_surfaces(depth: torch.Tensor, depth_init: torch.Tensor) -> torch.Tensor:
    """``depth (B, H, W)`` mm after the bilateral filter of the module docstring, each map with the ``σ_c`` of its
    ``depth_init (B, H, W)`` mm; holes (``depth <= 0``) stay holes, a map whose ``σ_c`` is 0 stays as it is."""
    out = depth.clone()
    for i in range(depth.shape[0]):
        sigma = range_sigma(depth_init[i])
        if sigma <= 0:
            continue
        params = {"kernel_size": KERNEL_SIZE, "sigma_color_mm": sigma, "sigma_space": SIGMA_SPACE_PX}
        smoothed = bilateral(depth[i:i + 1].float(), None, params)[0].to(depth.dtype)
        out[i] = torch.where(depth[i] > 0, smoothed, depth[i])
    return out


def smooth_delta_z(depth_init: torch.Tensor, delta_z: torch.Tensor) -> torch.Tensor:
    """Δz after the surface smoothing of ``depth_init + Δz`` (:func:`smooth_surfaces`, its ``σ_c`` from
    ``depth_init``): both ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)`` mm, the result shaped like ``depth_init``."""
    init = depth_init.reshape(-1, *depth_init.shape[-2:])
    smoothed = smooth_surfaces(init + delta_z.reshape(init.shape), init)
    return smoothed.reshape(depth_init.shape) - depth_init
