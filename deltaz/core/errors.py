"""The errors DeltaZ raises for bad input. Each message names the file or argument and what was expected."""

from __future__ import annotations

from pathlib import Path


class DeltaZError(Exception):
    """Base class of every error DeltaZ raises on purpose."""


class FormatError(DeltaZError, ValueError):
    """A file does not follow its format (DTU PFM, cam file, pair.txt, projection, train-ready layout).

    ``FormatError(path, "line 3: expected 4 numbers, got 3")`` reads
    ``"<path>: line 3: expected 4 numbers, got 3"``.
    """

    def __init__(self, path: str | Path | None, message: str):
        self.path = None if path is None else Path(path)
        self.detail = message
        super().__init__(f"{path}: {message}" if path is not None else message)


class DataError(DeltaZError, ValueError):
    """A dataset is incomplete or inconsistent (missing views, mismatched shapes, empty root)."""


class ConfigError(DeltaZError, ValueError):
    """An impossible option or combination of options; the message names the argument."""
