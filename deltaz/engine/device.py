"""Which torch device a command runs on: one rule for training, evaluation, refinement and adaptation."""

from __future__ import annotations

import torch

from deltaz.core.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``, ``""`` or ``"auto"`` → ``cuda`` when available, else ``cpu``; otherwise ``torch.device(device)``.

    Raises :class:`ConfigError` naming ``device`` for an unknown name, or for CUDA on a machine without it.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() in ("", "auto")):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device={device!r}: expected auto, cpu, cuda or cuda:N") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r}: CUDA is not available on this machine; use --device cpu")
    return dev
