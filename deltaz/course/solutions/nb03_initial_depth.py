"""Exercises of ``03_initial_depth``: three effects of the initial-depth model, written by hand.

Each reference equals what :mod:`deltaz.ops.corrupt` computes (``tests/test_solutions_nb03.py`` checks it):
``behind_edge`` is the set of pixels :func:`~deltaz.ops.corrupt.fatten_edges` may move, ``quantize_depth`` is
:func:`~deltaz.ops.corrupt.quantize` and ``noisy_depth`` is :func:`~deltaz.ops.corrupt.depth_noise` with a seed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deltaz.course.solutions.base import Case, Exercise

__all__ = ["EXERCISES", "behind_edge", "quantize_depth", "noisy_depth"]


def behind_edge(depth: torch.Tensor, width_px: int = 2, jump_mm: float = 10.0) -> torch.Tensor:
    """Valid pixels of ``depth (H, W)`` (mm, 0 = hole) with a valid pixel nearer by more than ``jump_mm``
    within the ``(2·width_px + 1)²`` window around them: ``(H, W)`` bool."""
    valid = depth > 0
    far_holes = torch.where(valid, depth, torch.full_like(depth, float("inf")))  # a hole is never "nearer"
    nearest = -F.max_pool2d(-far_holes[None, None], 2 * width_px + 1, stride=1, padding=width_px)[0, 0]
    return valid & (depth - nearest > jump_mm)


def _wrong_behind_edge(depth: torch.Tensor, width_px: int = 2, jump_mm: float = 10.0) -> torch.Tensor:
    """The classic slip: holes (0) count as the nearest depth, so every pixel next to a hole is "behind"."""
    nearest = -F.max_pool2d(-depth[None, None], 2 * width_px + 1, stride=1, padding=width_px)[0, 0]
    return (depth > 0) & (depth - nearest > jump_mm)


def quantize_depth(depth: torch.Tensor, step_mm: float = 2.65, depth_min_mm: float = 425.0) -> torch.Tensor:
    """Depths ``(H, W)`` mm snapped to the nearest plane ``depth_min_mm + k·step_mm``; 0 (no value) stays 0."""
    planes = torch.round((depth - depth_min_mm) / step_mm)
    return torch.where(depth > 0, depth_min_mm + planes * step_mm, torch.zeros_like(depth))


def _wrong_quantize_depth(depth: torch.Tensor, step_mm: float = 2.65, depth_min_mm: float = 425.0) -> torch.Tensor:
    """Rounding down (``floor``) instead of to the nearest plane: a bias of −step/2 on average."""
    planes = torch.floor((depth - depth_min_mm) / step_mm)
    return torch.where(depth > 0, depth_min_mm + planes * step_mm, torch.zeros_like(depth))


def noisy_depth(depth: torch.Tensor, seed: int, sigma0_mm: float = 0.5, sigma_quad_mm: float = 1.2) -> torch.Tensor:
    """``depth (H, W)`` mm plus Gaussian noise of std ``σ(z) = σ₀ + σ₂·(z / 1000 mm)²``, drawn with
    ``torch.randn(depth.shape, generator=torch.Generator().manual_seed(seed))``; 0 stays 0, results ≤ 0 become 0."""
    generator = torch.Generator().manual_seed(seed)
    sigma = sigma0_mm + sigma_quad_mm * (depth / 1000.0) ** 2
    noisy = depth + sigma * torch.randn(depth.shape, generator=generator, dtype=depth.dtype)
    return torch.where((depth > 0) & (noisy > 0), noisy, torch.zeros_like(depth))


def _wrong_noisy_depth(depth: torch.Tensor, seed: int, sigma0_mm: float = 0.5, sigma_quad_mm: float = 1.2) -> torch.Tensor:
    """Noise growing linearly with depth, ``σ₀ + σ₂·z/1 m``: too much noise everywhere (stereo error grows with z²)."""
    generator = torch.Generator().manual_seed(seed)
    sigma = sigma0_mm + sigma_quad_mm * depth / 1000.0
    noisy = depth + sigma * torch.randn(depth.shape, generator=generator, dtype=depth.dtype)
    return torch.where((depth > 0) & (noisy > 0), noisy, torch.zeros_like(depth))


def _depth_maps(seed: int = 3, count: int = 3) -> list[torch.Tensor]:
    """Small scenes ``(24, 32)`` mm: a slanted background, a nearer box, and holes."""
    g = torch.Generator().manual_seed(seed)
    maps = []
    v, u = torch.meshgrid(torch.arange(24.0), torch.arange(32.0), indexing="ij")
    for _ in range(count):
        depth = 600 + 150 * torch.rand(1, generator=g) + 2.0 * u + 1.5 * v
        top, left = (int(x) for x in torch.randint(2, 12, (2,), generator=g))
        depth[top : top + 9, left : left + 12] -= 40 + 40 * torch.rand(1, generator=g)
        depth[torch.rand(24, 32, generator=g) < 0.05] = 0.0
        depth[:, :2] = 0.0  # an invalid border, as DTU's backdrop
        maps.append(depth)
    return maps


def _behind_cases() -> list[Case]:
    maps = _depth_maps()
    return [((maps[0],), {}), ((maps[1],), {"width_px": 1, "jump_mm": 5.0}), ((maps[2], 3, 30.0), {})]


def _quantize_cases() -> list[Case]:
    maps = _depth_maps(seed=4)
    return [((maps[0],), {}), ((maps[1], 2.5), {}), ((maps[2],), {"step_mm": 5.0, "depth_min_mm": 500.0})]


def _noise_cases() -> list[Case]:
    maps = _depth_maps(seed=5)
    far = maps[2] * 1.5  # up to about 1.4 m: σ grows with z²
    return [((maps[0], 0), {}), ((maps[1], 7), {"sigma0_mm": 1.0}), ((far, 11), {"sigma_quad_mm": 3.0})]


EXERCISES = (
    Exercise(
        name="behind_edge",
        notebook="03_initial_depth",
        reference=behind_edge,
        cases=_behind_cases,
        mistake=_wrong_behind_edge,
        hint="take the minimum depth over the window with -max_pool2d(-d) (stride 1, padding width_px), but "
        "first replace holes (0) by +inf so that they are never the nearest; then keep valid pixels with "
        "depth - nearest > jump_mm.",
    ),
    Exercise(
        name="quantize_depth",
        notebook="03_initial_depth",
        reference=quantize_depth,
        cases=_quantize_cases,
        mistake=_wrong_quantize_depth,
        hint="k = torch.round((depth - depth_min_mm) / step_mm) is the nearest plane (not floor); return "
        "depth_min_mm + k * step_mm where depth > 0 and 0 elsewhere.",
    ),
    Exercise(
        name="noisy_depth",
        notebook="03_initial_depth",
        reference=noisy_depth,
        cases=_noise_cases,
        mistake=_wrong_noisy_depth,
        hint="σ = sigma0_mm + sigma_quad_mm * (depth / 1000) ** 2 (z in metres, squared); draw "
        "torch.randn(depth.shape, generator=torch.Generator().manual_seed(seed), dtype=depth.dtype) once, "
        "add σ·noise, and keep 0 where depth is 0 or the result is ≤ 0.",
    ),
)
