"""The refiner weights that ship with the package (``deltaz refine``'s default ``--checkpoint``).

``deltaz_refiner.pt`` is a checkpoint in the format of :mod:`deltaz.engine.checkpoint` (read with
``weights_only=True``), installed as package data (``pyproject.toml``: ``[tool.setuptools.package-data]``).
A checkout without it still works: pass ``--checkpoint`` (``checkpoint=`` in Python) explicitly.
"""

from __future__ import annotations

from pathlib import Path

from deltaz.core.errors import ConfigError

__all__ = ["DEFAULT_WEIGHTS", "default_checkpoint"]

#: Where the shipped weights live inside the installed package.
DEFAULT_WEIGHTS = Path(__file__).parent / "deltaz_refiner.pt"


def default_checkpoint() -> Path:
    """The shipped weights' path; :class:`ConfigError` when this checkout has none."""
    if DEFAULT_WEIGHTS.is_file():
        return DEFAULT_WEIGHTS
    raise ConfigError(
        f"--checkpoint: no weights ship in this checkout ({DEFAULT_WEIGHTS} is missing); pass --checkpoint "
        "PATH to a trained checkpoint (e.g. runs/demo/checkpoints/best.pt from `make demo`)"
    )
