"""Exercises of ``04_multiview_stereo``: the depth planes, the matching cost and the winner of a plane sweep.

Each reference computes what :mod:`deltaz.ops.mvs` computes (``tests/test_solutions_nb04.py`` checks it):

* :func:`inverse_depth_planes` — :func:`deltaz.ops.mvs.plane_depths` with ``spacing="inverse"``;
* :func:`zncc` — one window of the sweep's ZNCC (its cost is ``1 − zncc``);
* :func:`winner_take_all` — the sweep's winner with parabola sub-plane refinement (planes uniform in depth).
"""

from __future__ import annotations

import torch

from deltaz.course.solutions.base import Case, Exercise

__all__ = ["EXERCISES", "inverse_depth_planes", "zncc", "winner_take_all"]


def inverse_depth_planes(depth_min_mm: float, depth_max_mm: float, num_planes: int) -> torch.Tensor:
    """``(num_planes,)`` plane depths in mm, first ``depth_min_mm``, last ``depth_max_mm``, equally spaced in 1/z."""
    t = torch.arange(num_planes, dtype=torch.float64) / (num_planes - 1)
    inverse = 1.0 / depth_min_mm + t * (1.0 / depth_max_mm - 1.0 / depth_min_mm)
    return (1.0 / inverse).float()


def _wrong_inverse_depth_planes(depth_min_mm: float, depth_max_mm: float, num_planes: int) -> torch.Tensor:
    """The easy slip: planes equally spaced in depth (``linspace``), not in inverse depth."""
    return torch.linspace(depth_min_mm, depth_max_mm, num_planes)


def _plane_cases() -> list[Case]:
    return [((425.0, 931.15, 48), {}), ((500.0, 800.0, 5), {}), ((1.0, 100.0, 12), {})]


def zncc(patch_a: torch.Tensor, patch_b: torch.Tensor, var_floor: float = 1e-4) -> torch.Tensor:
    """Zero-mean normalised cross-correlation of two patches of the same shape: a 0-d tensor in [−1, 1].

    Each variance is floored at ``var_floor`` (intensities in [0, 1]), so a flat patch gives 0, not NaN.
    """
    a, b = patch_a.double(), patch_b.double()
    a, b = a - a.mean(), b - b.mean()
    var_a = (a * a).mean().clamp_min(var_floor)
    var_b = (b * b).mean().clamp_min(var_floor)
    return ((a * b).mean() / torch.sqrt(var_a * var_b)).clamp(-1.0, 1.0)


def _wrong_zncc(patch_a: torch.Tensor, patch_b: torch.Tensor, var_floor: float = 1e-4) -> torch.Tensor:
    """The classic slip: normalised but not zero-mean (NCC), so a brightness offset changes the score."""
    a, b = patch_a.double(), patch_b.double()
    return ((a * b).sum() / torch.sqrt((a * a).sum() * (b * b).sum())).clamp(-1.0, 1.0)


def _zncc_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    a = torch.rand(7, 7, generator=g, dtype=torch.float64)
    b = torch.rand(7, 7, generator=g, dtype=torch.float64)
    mixed = 0.6 * a + 0.4 * b
    return [((a, b), {}), ((a, 0.5 * a + 0.3), {}), ((a, 1.0 - a), {}), ((a, mixed), {}),
            ((torch.full((5, 5), 0.4, dtype=torch.float64), a[:5, :5]), {}), ((a, mixed + 0.2), {"var_floor": 1e-2})]


def winner_take_all(cost: torch.Tensor, plane_depths: torch.Tensor) -> torch.Tensor:
    """Depth ``(H, W)`` mm of the lowest cost in ``cost (D, H, W)`` over planes ``plane_depths (D,)``
    (equally spaced in depth), refined by the parabola through the winner and its two neighbours.

    The parabola's vertex is ``offset = (c₋ − c₊) / (2 (c₋ − 2c₀ + c₊))`` planes from the winner; it is
    used only when both neighbours exist and the curvature is positive (else the offset is 0).
    """
    D = cost.shape[0]
    i = cost.argmin(0, keepdim=True)  # (1, H, W)
    c0 = cost.gather(0, i)[0]
    c_lo, c_hi = cost.gather(0, (i - 1).clamp_min(0))[0], cost.gather(0, (i + 1).clamp_max(D - 1))[0]
    curvature = c_lo - 2 * c0 + c_hi
    inner = (i[0] > 0) & (i[0] < D - 1) & (curvature > 1e-9)
    offset = torch.where(inner, 0.5 * (c_lo - c_hi) / curvature.clamp_min(1e-9), torch.zeros_like(c0))
    step = plane_depths[1] - plane_depths[0]
    return plane_depths[i[0]] + offset.clamp(-0.5, 0.5) * step


def _wrong_winner_take_all(cost: torch.Tensor, plane_depths: torch.Tensor) -> torch.Tensor:
    """No sub-plane refinement: the depth is quantised to the planes."""
    return plane_depths[cost.argmin(0)]


def _winner_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    depths = torch.linspace(500.0, 800.0, 16, dtype=torch.float64)
    centre = 15 * torch.rand(6, 7, generator=g, dtype=torch.float64)  # true index, ends included
    index = torch.arange(16, dtype=torch.float64).view(16, 1, 1)
    smooth = 1.0 - torch.exp(-0.5 * (index - centre) ** 2 / 1.5 ** 2)
    noisy = smooth + 0.05 * torch.rand(16, 6, 7, generator=g, dtype=torch.float64)
    flat = torch.ones(16, 3, 4, dtype=torch.float64)
    return [((smooth, depths), {}), ((noisy, depths), {}), ((flat, depths), {})]


EXERCISES = (
    Exercise(
        name="inverse_depth_planes",
        notebook="04_multiview_stereo",
        reference=inverse_depth_planes,
        cases=_plane_cases,
        mistake=_wrong_inverse_depth_planes,
        hint="Space 1/z evenly: 1/d_i = 1/d_min + i/(D − 1) · (1/d_max − 1/d_min), then invert.",
    ),
    Exercise(
        name="zncc",
        notebook="04_multiview_stereo",
        reference=zncc,
        cases=_zncc_cases,
        mistake=_wrong_zncc,
        hint="Subtract each patch's mean first; ZNCC = mean(a·b) / sqrt(var(a)·var(b)), each variance "
             "floored at var_floor, clamped to [−1, 1].",
    ),
    Exercise(
        name="winner_take_all",
        notebook="04_multiview_stereo",
        reference=winner_take_all,
        cases=_winner_cases,
        mistake=_wrong_winner_take_all,
        hint="argmin over dim 0, gather the costs at i − 1, i, i + 1; offset = (c₋ − c₊) / (2(c₋ − 2c₀ + c₊)) "
             "where 0 < i < D − 1 and the curvature is positive; depth = d[i] + offset · (d[1] − d[0]).",
    ),
)
