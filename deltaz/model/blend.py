"""Two refiners of one architecture whose corrections are mixed: ``Δz = (1 − α)·Δz_base + α·Δz_adapted``.

Test-time adaptation (:mod:`deltaz.engine.adapt`) fine-tunes a copy of a refiner on one scene with
self-supervised losses. The adapted network fixes errors the original missed, and also drifts on pixels the
original had right; averaging the two corrections keeps most of the first and damps the second (an output
ensemble; averaging the *weights* instead, WiSE-FT's recipe, damped the drift less in our measurements, see the
docs/EXPERIMENTS.md, "Adaptation"). Since ``depth_refined = depth_init + Δz``, mixing the corrections mixes the
refined depths: ``(1 − α)·depth_base + α·depth_adapted``.

A checkpoint stores such a pair as an ordinary adapted checkpoint (``"model"``: the adapted weights) plus
``"blend": {"alpha": α, "base": the original weights}``; :func:`deltaz.engine.refine.load_refiner` rebuilds it.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from deltaz.core.errors import ConfigError

__all__ = ["BlendedRefiner"]


class BlendedRefiner(nn.Module):
    """``forward(depth_init, image=None, depth_range=None)`` like its two refiners; returns the mixed Δz
    ``(B, 1, H, W)`` mm (with the adapted refiner's ``log_b`` when the refiners have a confidence head).

    Args:
        base: the original refiner (frozen: no gradients). adapted: its adapted copy (same architecture).
        alpha: the adapted refiner's share in [0, 1] (1 = the adapted refiner alone, 0 = the original).
    """

    def __init__(self, base: nn.Module, adapted: nn.Module, alpha: float):
        super().__init__()
        if type(base) is not type(adapted) or isinstance(base, BlendedRefiner):
            raise ConfigError(f"BlendedRefiner: two refiners of one architecture expected, got "
                              f"{type(base).__name__} and {type(adapted).__name__}")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ConfigError(f"blend alpha must be in [0, 1], got {alpha}")
        self.base = copy.deepcopy(base).requires_grad_(False)
        self.adapted = adapted
        self.alpha = float(alpha)

    @property
    def in_channels(self) -> int:
        return self.adapted.in_channels

    @property
    def out_confidence(self) -> bool:
        return self.adapted.out_confidence

    def forward(self, depth_init: torch.Tensor, image: torch.Tensor | None = None,
                depth_range: torch.Tensor | None = None):
        out_base = self.base(depth_init, image=image, depth_range=depth_range)
        out_adapted = self.adapted(depth_init, image=image, depth_range=depth_range)
        if isinstance(out_adapted, tuple):
            return (1 - self.alpha) * out_base[0] + self.alpha * out_adapted[0], out_adapted[1]
        return (1 - self.alpha) * out_base + self.alpha * out_adapted
