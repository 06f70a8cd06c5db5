"""Exercises of ``05_losses``: a masked L1, the edge-aware smoothness weight, the improvement term.

Each reference equals the package's loss (``tests/test_solutions_nb05.py`` checks it): :func:`masked_l1` is
:func:`deltaz.ops.losses.depth_loss`, :func:`edge_weights` the weights inside
:func:`deltaz.ops.losses.smoothness_loss` (``edge_sharpness = alpha``), :func:`improvement_loss`
:func:`deltaz.ops.losses.improvement_loss` with no margin.
"""

from __future__ import annotations

import torch

from deltaz.course.solutions.base import Case, Exercise

__all__ = ["EXERCISES", "masked_l1", "edge_weights", "improvement_loss"]


def masked_l1(depth_refined: torch.Tensor, depth_gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``|depth_refined − depth_gt|`` (mm) over the pixels where ``mask`` and ``depth_gt > 0``.

    ``(B, H, W)`` each (``mask`` bool); values at the other pixels, even NaN, must not matter. Scalar tensor.
    """
    valid = mask & (depth_gt > 0)
    error = torch.where(valid, (depth_refined - depth_gt).abs(), torch.zeros_like(depth_gt))
    return error.sum() / valid.sum().clamp(min=1)


def _wrong_masked_l1(depth_refined, depth_gt, mask):
    """The explorer's old bug: zeroing the excluded pixels by a product and averaging over all ``H·W``."""
    return ((depth_refined - depth_gt).abs() * (mask & (depth_gt > 0))).mean()


def _l1_cases() -> list[Case]:
    g = torch.Generator().manual_seed(5)
    cases = []
    for B, H, W in ((1, 4, 5), (2, 6, 7), (3, 8, 8)):
        gt = 600 + 200 * torch.rand(B, H, W, generator=g, dtype=torch.float64)
        gt[torch.rand(B, H, W, generator=g) < 0.2] = 0.0  # no ground truth
        refined = gt + 5 * torch.randn(B, H, W, generator=g, dtype=torch.float64)
        refined[gt == 0] = float("nan")  # anything at the holes
        mask = torch.rand(B, H, W, generator=g) < 0.8
        cases.append(((refined, gt, mask), {}))
    return cases


def edge_weights(image: torch.Tensor, alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge-aware smoothness weights ``exp(−alpha·|∂I|)`` of an image ``(B, 3, H, W)`` in [0, 1].

    ``|∂I|``: the absolute forward difference to the right (x) or below (y), averaged over the 3 channels.
    Returns ``(w_x (B, H, W−1), w_y (B, H−1, W))``, each in ``(0, 1]`` (1 where the image is flat).
    """
    grad_x = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(dim=1)
    grad_y = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(dim=1)
    return torch.exp(-alpha * grad_x), torch.exp(-alpha * grad_y)


def _wrong_edge_weights(image, alpha=1.0):
    """Summing the channels' differences instead of averaging them: edges count three times as strong."""
    grad_x = (image[..., :, 1:] - image[..., :, :-1]).abs().sum(dim=1)
    grad_y = (image[..., 1:, :] - image[..., :-1, :]).abs().sum(dim=1)
    return torch.exp(-alpha * grad_x), torch.exp(-alpha * grad_y)


def _edge_cases() -> list[Case]:
    g = torch.Generator().manual_seed(6)
    cases = []
    for B, H, W, alpha in ((1, 4, 6, 1.0), (2, 5, 7, 1.0), (1, 6, 6, 10.0)):
        image = torch.rand(B, 3, H, W, generator=g, dtype=torch.float64)
        image[..., : H // 2, :] = 0.5  # a flat region: weight 1 there
        cases.append(((image,), {"alpha": alpha}))
    return cases


def improvement_loss(
    depth_refined: torch.Tensor, depth_init: torch.Tensor, depth_gt: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """"Do no harm": mean over the pixels where ``mask`` and ``depth_gt > 0`` of
    ``max(0, |depth_refined − depth_gt| − |depth_init − depth_gt|)`` (mm). ``(B, H, W)`` each; scalar tensor.
    """
    valid = mask & (depth_gt > 0)
    worse = torch.relu((depth_refined - depth_gt).abs() - (depth_init - depth_gt).abs())
    return torch.where(valid, worse, torch.zeros_like(worse)).sum() / valid.sum().clamp(min=1)


def _wrong_improvement_loss(depth_refined, depth_init, depth_gt, mask):
    """Forgetting the ``max(0, ·)``: improved pixels then cancel worsened ones (it is L1(refined) − L1(init))."""
    valid = mask & (depth_gt > 0)
    change = (depth_refined - depth_gt).abs() - (depth_init - depth_gt).abs()
    return torch.where(valid, change, torch.zeros_like(change)).sum() / valid.sum().clamp(min=1)


def _improvement_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)
    cases = []
    for B, H, W in ((1, 4, 5), (2, 6, 6), (1, 8, 9)):
        gt = 600 + 200 * torch.rand(B, H, W, generator=g, dtype=torch.float64)
        gt[torch.rand(B, H, W, generator=g) < 0.2] = 0.0
        init = gt + 4 * torch.randn(B, H, W, generator=g, dtype=torch.float64)
        refined = gt + 3 * torch.randn(B, H, W, generator=g, dtype=torch.float64)  # some better, some worse
        mask = torch.rand(B, H, W, generator=g) < 0.9
        cases.append(((refined, init, gt, mask), {}))
    return cases


EXERCISES = (
    Exercise(
        name="masked_l1",
        notebook="05_losses",
        reference=masked_l1,
        cases=_l1_cases,
        mistake=_wrong_masked_l1,
        hint="select the valid pixels (mask & depth_gt > 0) with torch.where or indexing — a product lets NaN "
             "through — and divide by how many there are, not by B·H·W.",
    ),
    Exercise(
        name="edge_weights",
        notebook="05_losses",
        reference=edge_weights,
        cases=_edge_cases,
        mistake=_wrong_edge_weights,
        hint="x: image[..., :, 1:] − image[..., :, :-1] (W−1 columns), y: rows likewise; take abs, average "
             "over the channel dimension (dim=1), then exp(−alpha · that).",
    ),
    Exercise(
        name="improvement_loss",
        notebook="05_losses",
        reference=improvement_loss,
        cases=_improvement_cases,
        mistake=_wrong_improvement_loss,
        hint="per pixel: how much worse the refined error is than the initial one, clipped at 0 "
             "(torch.relu); then the mean over the valid pixels only, as in masked_l1.",
    ),
)
