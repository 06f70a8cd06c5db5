"""MVSNet's DTU scan split: 79 training, 18 validation and 22 test scans (119 in all, disjoint).

The numbers are those of ``lists/dtu/{train,val,test}.txt`` in MVSNet (YoYo000/MVSNet's
``preprocess.py`` hard-codes the same sets; xy-guo/MVSNet_pytorch and CasMVSNet ship them as lists).
"""

from __future__ import annotations

from deltaz.core.errors import ConfigError

__all__ = ["SPLITS", "TRAIN_SCANS", "VAL_SCANS", "TEST_SCANS", "scan_list", "scan_numbers"]

TRAIN_SCANS: tuple[int, ...] = (
    2, 6, 7, 8, 14, 16, 18, 19, 20, 22, 30, 31, 36, 39, 41, 42, 44, 45, 46, 47,
    50, 51, 52, 53, 55, 57, 58, 60, 61, 63, 64, 65, 68, 69, 70, 71, 72, 74, 76, 83,
    84, 85, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104,
    105, 107, 108, 109, 111, 112, 113, 115, 116, 119, 120, 121, 122, 123, 124, 125, 126, 127, 128,
)  # fmt: skip

VAL_SCANS: tuple[int, ...] = (3, 5, 17, 21, 28, 35, 37, 38, 40, 43, 56, 59, 66, 67, 82, 86, 106, 117)

TEST_SCANS: tuple[int, ...] = (
    1, 4, 9, 10, 11, 12, 13, 15, 23, 24, 29, 32, 33, 34, 48, 49, 62, 75, 77, 110, 114, 118,
)  # fmt: skip

SPLITS: dict[str, tuple[int, ...]] = {"train": TRAIN_SCANS, "val": VAL_SCANS, "test": TEST_SCANS}


def scan_numbers(split: str) -> list[int]:
    """Scan numbers of ``split`` ("train", "val" or "test"), in MVSNet's list order."""
    if split not in SPLITS:
        raise ConfigError(f"split: expected one of {sorted(SPLITS)}, got {split!r}")
    return list(SPLITS[split])


def scan_list(split: str) -> list[str]:
    """Scan folder names of ``split``, e.g. ``scan_list("val")[0] == "scan3"``."""
    return [f"scan{n}" for n in scan_numbers(split)]
