"""Photometric augmentation of training images: what a real camera changes and a renderer does not.

A refiner trained on rendered images learns their look: the demo's recipe without augmentation (900 steps),
given Middlebury Motorcycle's ground truth as its input, adds 1.16 mm of covered MAE on the left half (mostly at
depth edges) with the real image, and 2.4–4.0 mm with it blurred (σ 0.7–1.2 px) or half as bright.
:func:`photometric_augment` draws, per training sample, an exposure gain, a colour balance, a gamma, a Gaussian
blur, sensor noise and sometimes a monochrome image, so that training does not see one look only. What it measured
(docs/EXPERIMENTS.md, "Photometric augmentation"): lower covered MAE on the design half of Motorcycle's plane-sweep
rows and SGBM's ``planes+deltaz``, no change beyond run-to-run spread on the held-out half; the refiner's
sensitivity to blur and brightness stays. Depth, cameras and validation samples are untouched.
"""

from __future__ import annotations

import math

import kornia
import torch

from deltaz.core.errors import ConfigError

__all__ = ["photometric_augment", "check_strength", "RANGES"]

#: At strength 1: log exposure gain, log per-channel gain, log gamma, blur σ (px), noise σ (image units),
#: probability of a monochrome image. Strength ``s`` scales every range (and that probability) by ``s``.
RANGES = {"log_gain": (-0.7, 0.4), "log_channel": (-0.15, 0.15), "log_gamma": (-0.35, 0.35),
          "blur_sigma": (0.0, 1.2), "noise_sigma": (0.0, 0.03), "grey_p": 0.1}


def check_strength(strength: float) -> float:
    """``strength`` as a float in [0, 1]; anything else raises :class:`ConfigError` naming ``image_augment``."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"image_augment={strength!r}: expected a strength between 0 (off) and 1")
    return value


def _uniform(generator: torch.Generator, low: float, high: float, n: int = 1) -> torch.Tensor:
    """``(n,)`` values drawn uniformly between ``low`` and ``high``."""
    return low + (high - low) * torch.rand(n, generator=generator)


def _blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``image (V, 3, H, W)`` (``kornia.filters.gaussian_blur2d``, reflected borders, a kernel of
    ±⌈2.5σ⌉ px); ``sigma`` px. An image no larger than the kernel's radius is returned as it is."""
    radius = max(1, math.ceil(2.5 * sigma))
    if radius >= min(image.shape[-2:]):  # reflect padding needs a radius below the image size
        return image
    size = 2 * radius + 1
    return kornia.filters.gaussian_blur2d(image, (size, size), (sigma, sigma), border_type="reflect")


def photometric_augment(image: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """One random photometric change of a CPU tensor ``image (V, 3, H, W)`` in [0, 1].

    In order: a monochrome image (probability ``0.1·strength``; the colour balance then tints it), exposure gain
    and per-channel gain, gamma, Gaussian blur, additive Gaussian noise, clipped to [0, 1]. Every view gets the
    same gains, gamma and blur; the noise is drawn per pixel and view. Ranges: :data:`RANGES` times ``strength``.
    Deterministic for a given generator state (the global RNG is not used). Returns a new tensor of the same
    shape and dtype; strength 0 returns ``image`` itself.
    """
    s, r = check_strength(strength), RANGES
    if s == 0:
        return image
    out = image.clone()
    if float(torch.rand(1, generator=generator)) < r["grey_p"] * s:
        out = out.mean(dim=-3, keepdim=True).expand_as(out).clone()
    gain = torch.exp(_uniform(generator, *(s * v for v in r["log_gain"]))
                     + _uniform(generator, *(s * v for v in r["log_channel"]), n=3))
    out = (out * gain.view(1, 3, 1, 1).to(out.dtype)).clamp(0.0, 1.0)
    gamma = float(torch.exp(_uniform(generator, *(s * v for v in r["log_gamma"]))))
    out = out.clamp_min(1e-6) ** gamma
    sigma = float(_uniform(generator, *(s * v for v in r["blur_sigma"])))
    if sigma > 0.1:
        out = _blur(out, sigma)
    noise = float(_uniform(generator, *(s * v for v in r["noise_sigma"])))
    out = out + noise * torch.randn(out.shape, generator=generator, dtype=out.dtype)
    return out.clamp(0.0, 1.0)
