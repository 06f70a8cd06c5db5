"""Exercises of ``06_training``: one optimiser step's gradient clipping and the learning-rate schedule."""

from __future__ import annotations

import math

import torch

from deltaz.course.solutions.base import Case, Exercise

__all__ = ["EXERCISES", "clip_gradients", "cosine_lr"]

#: torch's ``clip_grad_norm_`` divides by ``total_norm + 1e-6``: the same here, so the two agree exactly.
_EPS = 1e-6


def clip_gradients(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """Gradients scaled by ``min(1, c / ‖g‖)``, ``‖g‖`` the norm of ALL of them together (``grad_clip``)."""
    total = torch.sqrt(sum((g.double() ** 2).sum() for g in grads))
    scale = min(1.0, float(max_norm) / (float(total) + _EPS))
    return [g * scale for g in grads]


def _wrong_clip_gradients(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    """A common slip: clipping each tensor by its own norm (changes the direction of the whole step)."""
    return [g * min(1.0, float(max_norm) / (float(g.norm()) + _EPS)) for g in grads]


def _clip_cases() -> list[Case]:
    g = torch.Generator().manual_seed(6)
    shapes = [(8, 4, 3, 3), (8,), (1, 8, 3, 3)]
    cases = []
    for spread, max_norm in ((0.01, 1.0), (1.0, 1.0), (3.0, 0.5)):  # one below the threshold, two above
        grads = [spread * torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes]
        cases.append(((grads, max_norm), {}))
    return cases


def cosine_lr(lr0: float, epoch: int, t0: int) -> float:
    """Learning rate after ``epoch`` epochs of ``CosineAnnealingWarmRestarts(T_0=t0)`` (minimum 0)."""
    return 0.5 * lr0 * (1.0 + math.cos(math.pi * (epoch % t0) / t0))


def _wrong_cosine_lr(lr0: float, epoch: int, t0: int) -> float:
    """Forgetting the restart: the cosine keeps going past ``t0`` and the rate climbs back slowly."""
    return 0.5 * lr0 * (1.0 + math.cos(math.pi * epoch / t0))


def _cosine_cases() -> list[Case]:
    return [((1e-3, e, t0), {}) for t0, epochs in ((8, (0, 3, 7)), (3, (3, 4, 8))) for e in epochs]


EXERCISES = (
    Exercise(
        name="clip_gradients",
        notebook="06_training",
        reference=clip_gradients,
        cases=_clip_cases,
        mistake=_wrong_clip_gradients,
        hint="one norm for all the gradients together: sqrt of the sum of every squared entry; "
             "multiply every tensor by min(1, max_norm / (norm + 1e-6)).",
        rtol=1e-6, atol=1e-9,
    ),
    Exercise(
        name="cosine_lr",
        notebook="06_training",
        reference=cosine_lr,
        cases=_cosine_cases,
        mistake=_wrong_cosine_lr,
        hint="the schedule restarts every t0 epochs: use (epoch mod t0) in the cosine.",
        rtol=1e-6, atol=1e-12,
    ),
)
