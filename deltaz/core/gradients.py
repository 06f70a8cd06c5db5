"""Finite-difference image gradients with paired shapes (DESIGN.md §1, prototype fix D).

For any tensor ``x (…, H, W)``:

* ``grad_x = x[…, :, 1:] − x[…, :, :-1]`` has shape ``(…, H, W−1)`` (between horizontal neighbours);
* ``grad_y = x[…, 1:, :] − x[…, :-1, :]`` has shape ``(…, H−1, W)`` (between vertical neighbours).

No padding and no ``torch.gradient`` (whose shapes and central differences differ): a depth gradient and an
image gradient computed here line up element by element, and pairing an x-gradient with a y-gradient fails
loudly on shape instead of silently broadcasting. Explained in notebooks/05_losses.ipynb.
"""

from __future__ import annotations

import torch

from deltaz.core.errors import DataError

__all__ = ["image_gradients", "gradient_pair_mask"]


def image_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences of ``x (…, H, W)``: ``grad_x (…, H, W−1)`` and ``grad_y (…, H−1, W)``.

    Units are those of ``x`` per pixel. Works for any leading shape (``(B, C, H, W)``, ``(B, H, W)``, …).
    """
    if x.dim() < 2:
        raise DataError(f"image_gradients expects a tensor (..., H, W), got shape {tuple(x.shape)}")
    grad_x = x[..., :, 1:] - x[..., :, :-1]
    grad_y = x[..., 1:, :] - x[..., :-1, :]
    return grad_x, grad_y


def gradient_pair_mask(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validity of each gradient of :func:`image_gradients`: both neighbours valid.

    Args:
        mask: ``(…, H, W)`` bool (or 0/1) pixel validity.
    Returns:
        ``mask_x (…, H, W−1)`` and ``mask_y (…, H−1, W)``, bool, shaped like the gradients they gate.
    """
    if mask.dim() < 2:
        raise DataError(f"gradient_pair_mask expects a mask (..., H, W), got shape {tuple(mask.shape)}")
    mask = mask.bool()
    return mask[..., :, 1:] & mask[..., :, :-1], mask[..., 1:, :] & mask[..., :-1, :]
