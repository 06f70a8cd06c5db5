"""One forward pass of training: view 0 of a batch through :func:`deltaz.model.refine`, AMP and the loss mask.

Batches are the loader's ``(B, V, ...)`` dicts (:class:`deltaz.core.batch.MultiViewBatch` reads alike): depths
in mm, 0 = hole; view 0 is the reference the network refines, views 1…V−1 its sources.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch
import torch.nn as nn

from deltaz.core.errors import ConfigError
from deltaz.model import refine

__all__ = ["unwrap", "amp_settings", "drop_images", "forward_batch", "forward_sources", "loss_batch"]


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a ``DistributedDataParallel`` wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def amp_settings(device: torch.device, amp: bool) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use GradScaler). AMP is CUDA-only: bf16 where supported, else fp16 + scaler;
    on a CPU ``amp=True`` warns and trains in float32."""
    if not amp:
        return None, False
    if device.type != "cuda":
        warnings.warn("--amp is CUDA-only; training in float32 on the CPU", stacklevel=3)
        return None, False
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, False
    return torch.float16, True


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype``, or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def drop_images(image: torch.Tensor, p: float) -> torch.Tensor:
    """``image (B, 3, H, W)`` with each sample replaced, with probability ``p``, by a uniform grey (0.5); drawn
    from torch's global generator (seeded by ``--seed``). ``p`` 0 returns ``image`` itself."""
    if p <= 0:
        return image
    drop = torch.rand(image.shape[0], device=image.device) < p
    return torch.where(drop[:, None, None, None], torch.full_like(image, 0.5), image)


def forward_batch(
    model: nn.Module, batch: dict[str, Any], amp_dtype: torch.dtype | None = None, keep_holes: bool = True,
    image_dropout: float = 0.0,
) -> dict[str, Any]:
    """:func:`deltaz.model.refine` on view 0 of a batch; outputs ``(B, H, W)`` float32 (mm).

    The image goes in when the model takes one (``in_channels == 4``); ``depth_range`` always does.
    ``keep_holes=True`` (default) zeroes Δz where ``depth_init`` has no value, so holes stay holes;
    ``False`` lets the model fill them (``TrainConfig.fill_holes``). ``image_dropout`` (``TrainConfig``'s) greys
    the network's image per sample with that probability while the model is in training mode (:func:`drop_images`).
    """
    net = unwrap(model)
    if getattr(net, "in_channels", 1) == 4 and "image" not in batch:
        raise ConfigError("the model takes an image (use_images=True) but the batch has none")
    image = batch["image"][:, 0] if getattr(net, "in_channels", 1) == 4 else None
    if image is not None and net.training:
        image = drop_images(image, image_dropout)
    device = batch["depth_init"].device
    with autocast(device, amp_dtype):
        out = refine(model, batch["depth_init"][:, 0], image=image, depth_range=batch["depth_range"],
                     keep_holes=keep_holes)
    return {k: (v.float() if torch.is_tensor(v) else v) for k, v in out.items()}


@torch.no_grad()
def forward_sources(model: nn.Module, batch: dict[str, Any], amp_dtype: torch.dtype | None = None,
                    keep_holes: bool = True) -> torch.Tensor:
    """The source views' (1…V−1) refined depths ``(B, V−1, H, W)`` mm, without gradient: the multi-view
    target of ``TrainConfig.multiview_target = "refined"``."""
    B, V = batch["depth_init"].shape[:2]
    flat = {k: (v[:, 1:].reshape(B * (V - 1), 1, *v.shape[2:]) if k in ("depth_init", "image") else v)
            for k, v in batch.items()}
    flat["depth_range"] = batch["depth_range"].repeat_interleave(V - 1, dim=0)
    depth = forward_batch(model, flat, amp_dtype, keep_holes)["depth_refined"]
    return torch.where(depth > 0, depth, torch.zeros_like(depth)).reshape(B, V - 1, *depth.shape[1:])


def loss_batch(batch: dict[str, Any], keep_holes: bool = True) -> dict[str, Any]:
    """The batch as the losses see it: with holes kept, reference pixels without an initial depth leave
    the mask (their error, the full ground-truth depth, is a constant no correction can change; left in,
    it would add ~70 mm to the logged depth loss for 10 % holes). The loader's batch is not modified."""
    if not keep_holes:
        return batch
    mask = batch["mask"].clone()
    mask[:, 0] &= batch["depth_init"][:, 0] > 0
    return {**batch, "mask": mask}
