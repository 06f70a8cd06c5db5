"""Where things live: the project root, the data and run folders, and the real DTU sample.

Notebooks call these instead of hard-coding ``../data`` (their working directory is ``notebooks/``).
Environment variables override the defaults:

* ``DELTAZ_DATA``       — where generated and parsed datasets go (default ``<project>/data``);
* ``DELTAZ_RUNS``       — where training runs and reports go (default ``<project>/runs``);
* ``DELTAZ_DTU_SAMPLE`` — a folder of real DTU fragments (calibration, ``pair.txt``, a depth map, images), used by tests when set;
* ``DELTAZ_DTU_ROOT``   — a real DTU ``dtu_training`` folder, used by the course when set.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository root when running from a checkout, else the current directory."""
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def data_dir() -> Path:
    """Folder for generated (synthetic) and parsed datasets."""
    return Path(os.environ.get("DELTAZ_DATA", project_root() / "data"))


def runs_dir() -> Path:
    """Folder for training runs, checkpoints, logs and reports."""
    return Path(os.environ.get("DELTAZ_RUNS", project_root() / "runs"))


def dtu_sample_dir() -> Path | None:
    """The real DTU fragments folder from ``DELTAZ_DTU_SAMPLE``, or None when unset or missing."""
    value = os.environ.get("DELTAZ_DTU_SAMPLE")
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None


def dtu_root() -> Path | None:
    """A real DTU ``dtu_training`` folder from ``DELTAZ_DTU_ROOT``, or None."""
    value = os.environ.get("DELTAZ_DTU_ROOT")
    if not value:
        return None
    path = Path(value)
    return path if path.is_dir() else None
