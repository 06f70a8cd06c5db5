"""Train/validation split of scans by scene: MVSNet's lists for real DTU, a seeded shuffle otherwise."""

from __future__ import annotations

from typing import Sequence

import torch

from deltaz.core.errors import ConfigError
from deltaz.io.dtu import splits as dtu_splits

#: The values of ``split`` (``TrainConfig.split``, ``deltaz train --split``).
SPLIT_MODES = ("auto", "random", "mvsnet")


def resolve_split(split: str, sources: Sequence[str] | None, val_split: float | None = None) -> tuple[str, str]:
    """The split mode actually used for ``split`` and scans with ``meta.json`` ``sources``, and why.

    Returns ``(mode, reason)``: ``mode`` is ``"mvsnet"`` or ``"random"``; ``reason`` is one line for a
    log, e.g. ``"mvsnet: every scan is real DTU"``. ``split="auto"`` means ``mvsnet`` only when every
    source is real DTU (starts with ``"dtu"``; synthetic scans record ``"synthetic"``). When the mvsnet
    split is used and ``val_split`` is given, the reason says that MVSNet's lists fix the validation
    scenes and ``val_split`` only switches validation on (> 0) or off (0).

    Raises :class:`ConfigError` for an unknown ``split``.
    """
    if split not in SPLIT_MODES:
        raise ConfigError(f"split={split!r}: must be one of {', '.join(SPLIT_MODES)}")
    kinds = sorted({str(s) for s in sources or []})
    is_dtu = bool(sources) and all(str(s).lower().startswith("dtu") for s in sources)
    if split == "auto":
        if is_dtu:
            mode, reason = "mvsnet", "mvsnet: every scan is real DTU"
        else:
            mode = "random"
            if not sources:
                what = "no scan source is known"
            elif kinds == ["synthetic"]:
                what = "the scans are synthetic (source: synthetic)"
            else:
                what = f"the scans are not all real DTU (source: {', '.join(kinds)})"
            reason = f"random: {what}, MVSNet's lists apply only to real DTU"
    else:
        mode, reason = split, f"{split}: requested (--split {split})"
    if mode == "mvsnet" and val_split is not None:
        if val_split > 0:
            reason += f"; --val-split {val_split:g} has no effect on the scenes: MVSNet's validation list is used"
        else:
            reason += "; --val-split 0: no validation scenes"
    return mode, reason


def split_scans(
    scans: Sequence[str],
    val_split: float = 0.1,
    seed: int = 0,
    split: str = "auto",
    sources: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Split scan names into (train, val) by scene, never one scene in both.

    ``split="random"``: a seeded shuffle; ``round(val_split * n)`` scans (at least 1 when
    ``val_split > 0``) go to validation. ``split="mvsnet"``: MVSNet's official train/val lists
    (:mod:`deltaz.io.dtu.splits`); scans in its test list are left out. ``split="auto"``: ``mvsnet``
    when every scan's ``meta.json`` source is real DTU (``sources`` start with ``"dtu"``), else
    ``random`` (:func:`resolve_split` gives the mode and a one-line reason for a log).

    Raises :class:`ConfigError` when the split leaves no training scene, or no validation scene while
    ``val_split > 0``.
    """
    if not 0.0 <= val_split < 1.0:
        raise ConfigError(f"val_split={val_split!r}: must be in [0, 1)")
    split, _ = resolve_split(split, sources)
    scans = sorted(scans)
    if split == "mvsnet":
        train_set = set(dtu_splits.scan_list("train"))
        val_set = set(dtu_splits.scan_list("val"))
        train = [s for s in scans if s in train_set]
        val = [s for s in scans if s in val_set] if val_split > 0 else []
        if not train:
            raise ConfigError(
                f"split='mvsnet': none of the {len(scans)} scans ({', '.join(scans[:5])}...) is in MVSNet's "
                "training list; use --split random for other scan names"
            )
        if val_split > 0 and not val:
            raise ConfigError(
                "split='mvsnet': no scan of MVSNet's validation list is present; add them, "
                "use val_split=0, or use split='random'"
            )
        return train, val
    order = torch.randperm(len(scans), generator=torch.Generator().manual_seed(int(seed))).tolist()
    shuffled = [scans[i] for i in order]
    n_val = 0 if val_split == 0 else max(1, int(round(val_split * len(scans))))
    if n_val >= len(scans):
        raise ConfigError(
            f"val_split={val_split}: with {len(scans)} scan(s) it leaves no training scene; "
            f"lower --val-split or add scans (need at least 2 scans for a validation split)"
        )
    return sorted(shuffled[n_val:]), sorted(shuffled[:n_val])
