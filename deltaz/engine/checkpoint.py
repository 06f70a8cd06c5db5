"""Resumable training checkpoints: one dict, written atomically, loaded with ``weights_only=True``.

A checkpoint holds everything needed to continue a run exactly where it stopped::

    {"format": 1, "model": state_dict, "optimizer": ..., "scheduler": ..., "scaler": ...,
     "epoch": completed epochs, "batch_in_epoch": batches done in the unfinished epoch (0 at a boundary),
     "step": optimizer steps so far, "best_val_mae": float | None,
     "config": TrainConfig.to_dict(), "model_config": deltaz.model.model_config(model),
     "rng": {"torch": ByteTensor, "cuda": [ByteTensor, ...], "numpy": {...}, "python": {...}}}

Every value is a tensor or a plain Python type, so ``torch.load(path, weights_only=True)`` reads it.
Explained in notebooks/06_training.ipynb.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deltaz.core.atomic import atomic_path
from deltaz.core.errors import ConfigError, DataError

#: 2: confidence heads start at ``b`` = 1 mm (``deltaz.model.CONFIDENCE_INIT_MM``); a format-1 checkpoint with a
#: confidence head is read with ``model_config["confidence_init_mm"] = None`` (the old start), see :func:`_migrate`.
CHECKPOINT_FORMAT = 2
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"


# --------------------------------------------------------------------------- RNG states
def capture_rng_state() -> dict[str, Any]:
    """torch, CUDA, numpy and Python RNG states as tensors and plain types (weights_only-safe)."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "python": {
            "version": int(py_version),
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss_next": py_gauss,
        },
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`. CUDA states are restored only when CUDA is present."""
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available():
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])
        else:  # a different number of GPUs: restore what matches
            for index, s in enumerate(cuda_states[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(s.cpu(), index)
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss_next"]))


# --------------------------------------------------------------------------- save / load
def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (temporary file in the same folder, then
    ``os.replace``), so a crash never leaves a half-written ``last.pt``. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {"format": CHECKPOINT_FORMAT, **checkpoint}
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises :class:`DataError` naming the path when the file is missing or not a DeltaZ checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found; pass an existing .pt file or a folder holding {LAST_NAME}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise DataError(f"{path}: cannot read as a DeltaZ checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise DataError(f"{path}: not a DeltaZ checkpoint (expected a dict with a 'model' entry)")
    if checkpoint.get("format", CHECKPOINT_FORMAT) > CHECKPOINT_FORMAT:
        raise DataError(
            f"{path}: checkpoint format {checkpoint['format']} is newer than this deltaz "
            f"(reads up to {CHECKPOINT_FORMAT}); update deltaz"
        )
    return _migrate(checkpoint)


def _migrate(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Older formats read as they were written: a format-1 confidence head keeps its old start (b = h)."""
    model_config = checkpoint.get("model_config")
    if checkpoint.get("format", 1) < 2 and model_config and model_config.get("out_confidence"):
        checkpoint["model_config"] = {**model_config, "confidence_init_mm": None}
    return checkpoint


def find_checkpoint(candidate: str | Path, names: tuple[str, ...] = (BEST_NAME, LAST_NAME)) -> Path | None:
    """The one checkpoint finder: the file a path names, or ``None`` when there is none.

    A file is itself; a folder gives the first of ``names`` (default ``best.pt``, then ``last.pt``) found
    in the folder, then in its ``checkpoints/`` (a run folder). Resuming asks for ``names=(LAST_NAME,)``.
    """
    path = Path(candidate)
    if path.is_file():
        return path
    for folder in (path, path / "checkpoints"):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def resolve_resume_path(resume: str | Path, checkpoint_dir: str | Path) -> Path:
    """Which file ``--resume`` means: ``""``/``"latest"`` -> ``<checkpoint_dir>/last.pt``; a folder ->
    its ``last.pt`` (:func:`find_checkpoint`); a file -> itself. Raises :class:`DataError` when nothing is there."""
    if resume in ("", "latest", None):
        folder, where = Path(checkpoint_dir), f"--checkpoint-dir {checkpoint_dir}"
    else:
        folder, where = Path(resume), f"--resume {resume}"
    found = find_checkpoint(folder, (LAST_NAME,))
    candidate = found or (folder if folder.suffix == ".pt" else folder / LAST_NAME)
    if found is None:
        raise DataError(f"{candidate}: no checkpoint to resume from ({where}); train without --resume first")
    return candidate


def check_compatible(checkpoint: dict[str, Any], model_config: dict[str, Any], path: str | Path = "checkpoint") -> None:
    """Refuse a checkpoint whose model configuration differs from ``model_config``.

    Raises :class:`ConfigError` listing each differing key with both values and what to change.
    """
    saved = checkpoint.get("model_config")
    if saved is None:
        return
    keys = sorted(set(saved) | set(model_config))
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs requested {model_config.get(k)!r}" for k in keys
             if _plain(saved.get(k)) != _plain(model_config.get(k))]
    if diffs:
        raise ConfigError(
            f"{path}: checkpoint was trained with a different model configuration ("
            + "; ".join(diffs)
            + "). Use the same --model/--base-channel/--unet-depth/--images as that run, "
            "or start a new run in another --checkpoint-dir."
        )


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal (JSON and torch.save may turn one into the other)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
