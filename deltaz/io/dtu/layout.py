"""The train-ready layout (DESIGN.md §3): read it, and write it so that a crash never fakes a scan.

::

    <root>/scan{N}/
      depths/{vid:03d}.npy        (H, W) float32, mm, 0 = no value
      intrinsics/{vid:03d}.npy    (3, 3) float32, K for the depth's resolution
      extrinsics/{vid:03d}.npy    (3, 4) float32, world-to-camera [R | t], mm
      images/{vid:03d}.png        optional, RGB uint8 at the depth's resolution (one K serves both),
                                  under the scan's primary light (meta "light", DTU default 3)
      images_light/{L}/{vid:03d}.png   optional, the same view under each other kept light L (0..6)
      initial/{vid:03d}.npy       optional, (H, W) float32 real initial depth (e.g. MVS output), mm
      pair.txt                    view selection (see deltaz.io.dtu.formats.read_pair_file)
      meta.json                   source, resolution [H, W], depth_range_mm, units, version,
                                  light (primary), lights (every light kept, when several), …

Lights: readers that know nothing about lights keep reading ``images/`` (the primary light).
:func:`list_lights` says which lights a scan holds and ``load_view(..., light=L)`` reads one of them.

A scan is **complete** when its ``meta.json`` exists (and it is not a stale parse, see
:func:`is_complete_scan`). :class:`~deltaz.io.dtu.scan_writer.ScanWriter` (re-exported here) builds a
scan inside ``<root>/.tmp-scan{N}-<pid>``, writes ``meta.json`` last and only then renames the folder
to ``scan{N}``; so ``kill -9`` at any moment leaves either the old state or a hidden temporary folder,
never a folder that looks complete.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from deltaz.core.errors import DataError, FormatError
from deltaz.io.dtu.formats import Pairs, dataset_source, read_pair_file, read_png
from deltaz.io.dtu.scan_writer import (  # noqa: F401  (ScanWriter, write_scan, remove_stale_temp: public here too)
    LAYOUT_VERSION,
    LIGHT_DIR,
    ScanWriter,
    remove_stale_temp,
    view_name,
    write_scan,
)

__all__ = [
    "LAYOUT_VERSION",
    "META_KEYS",
    "ScanWriter",
    "write_scan",
    "list_scans",
    "is_complete_scan",
    "is_stale_parse",
    "read_meta",
    "list_views",
    "list_lights",
    "meta_lights",
    "LIGHT_DIR",
    "load_view",
    "read_scan_pairs",
    "remove_stale_temp",
]

#: Keys every ``meta.json`` holds.
META_KEYS = (
    "source",
    "resolution",
    "depth_range_mm",
    "units",
    "version",
    "n_views",
    "light",
    "has_images",
    "has_initial",
)

_VIEW_FILE = re.compile(r"(\d{3,})\.npy")
_SCAN_NUMBER = re.compile(r"scan(\d+)")


def _scan_sort_key(name: str) -> tuple[int, int, str]:
    match = _SCAN_NUMBER.fullmatch(name)
    return (0, int(match.group(1)), name) if match else (1, 0, name)


# -------------------------------------------------------------------------------------------- reading


def is_complete_scan(scan_dir: str | os.PathLike) -> bool:
    """True when ``scan_dir`` is a folder holding ``meta.json`` (written last by :class:`ScanWriter`)
    that is not a stale parse (:func:`is_stale_parse`; ``deltaz parse`` then redoes it)."""
    scan_dir = Path(scan_dir)
    return scan_dir.is_dir() and (scan_dir / "meta.json").is_file() and not is_stale_parse(scan_dir)


def is_stale_parse(scan_dir: str | os.PathLike) -> bool:
    """True for a scan that layout version 1 parsed from a ``deltaz synth`` folder as ``source: "dtu"``.

    Version 1 could not tell synthetic scans from real DTU, so ``split="auto"`` applied MVSNet's scan
    lists to them. Such a scan (``version`` < 2, ``source`` ``"dtu"``, and its ``src_path`` still holds
    the generator's ``synth.json``, :func:`deltaz.io.dtu.formats.dataset_source`) counts as incomplete:
    it is not listed and the next ``deltaz parse`` (or course/demo data step) writes it again. Parsed
    real DTU and every other source are never stale.
    """
    try:
        meta = json.loads((Path(scan_dir) / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(meta, dict) or meta.get("source") != "dtu" or int(meta.get("version") or 0) >= 2:
        return False
    return bool(meta.get("src_path")) and dataset_source(meta["src_path"]) == "synthetic"


def list_scans(root: str | os.PathLike) -> list[str]:
    """Names of the complete scans under ``root`` (folders with ``meta.json``), in scan-number order.

    ``scan2`` sorts before ``scan10``; names that are not ``scan{N}`` follow, alphabetically. Hidden
    folders (such as the temporary ``.tmp-scan{N}-<pid>``) are never listed.
    Raises DataError when ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder of train-ready scans, got no such folder")
    names = [p.name for p in root.iterdir() if not p.name.startswith(".") and is_complete_scan(p)]
    return sorted(names, key=_scan_sort_key)


def read_meta(scan_dir: str | os.PathLike) -> dict[str, Any]:
    """The scan's ``meta.json`` as a dict (holds at least :data:`META_KEYS`)."""
    path = Path(scan_dir) / "meta.json"
    if not path.is_file():
        raise DataError(f"{scan_dir}: not a complete scan (no meta.json); re-run `deltaz parse` to redo it")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FormatError(path, f"expected JSON, got a parse error: {error}") from None
    if not isinstance(meta, dict):
        raise FormatError(path, f"expected a JSON object, got {type(meta).__name__}")
    missing = [key for key in META_KEYS if key not in meta]
    if missing:
        raise FormatError(path, f"expected keys {list(META_KEYS)}, missing {missing}")
    return meta


def list_views(scan_dir: str | os.PathLike) -> list[int]:
    """Sorted view ids of a scan, from the files in ``depths/``."""
    depths = Path(scan_dir) / "depths"
    if not depths.is_dir():
        raise DataError(f"{scan_dir}: expected a depths/ folder, got none")
    ids = []
    for path in depths.iterdir():
        match = _VIEW_FILE.fullmatch(path.name)
        if match:
            ids.append(int(match.group(1)))
    if not ids:
        raise DataError(f"{depths}: expected depth files named NNN.npy, got none")
    return sorted(ids)


def meta_lights(meta: dict[str, Any]) -> list[int]:
    """The lights a scan's images exist for, from its ``meta.json`` dict (sorted).

    ``meta["lights"]`` when present; else ``[meta["light"]]`` for a scan with images and a known light;
    else ``[]`` (no images, or one ``images/`` of unknown light).
    """
    if meta.get("lights"):
        return sorted(int(v) for v in meta["lights"])
    if meta.get("has_images") and meta.get("light") is not None:
        return [int(meta["light"])]
    return []


def list_lights(scan_dir: str | os.PathLike) -> list[int]:
    """The lights a train-ready scan holds images for (see :func:`meta_lights`)."""
    return meta_lights(read_meta(scan_dir))


def _load_npy(path: Path, shape: tuple[int | None, ...], what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: missing {what}")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise FormatError(path, f"expected a .npy array ({what}), got an unreadable file: {error}") from None
    if (
        not isinstance(array, np.ndarray)
        or array.ndim != len(shape)
        or any(want is not None and got != want for got, want in zip(array.shape, shape))
    ):
        want_text = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise FormatError(path, f"expected {what} of shape {want_text}, got {getattr(array, 'shape', None)}")
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise FormatError(path, f"expected a numeric {what}, got dtype {array.dtype}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise FormatError(path, f"expected finite values in {what}, got {int((~np.isfinite(array)).sum())} NaN/inf")
    return array


def _load_png(path: Path, shape: tuple[int, int]) -> np.ndarray:
    image = read_png(path)
    if image.shape[:2] != tuple(shape):
        raise FormatError(
            path,
            f"expected an image of {shape[0]}x{shape[1]} (H x W, the depth's size)"
            f", got {image.shape[0]}x{image.shape[1]}",
        )
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / np.float32(scale)


def load_view(
    scan_dir: str | os.PathLike,
    view_id: int,
    with_image: bool = True,
    with_initial: bool = True,
    light: int | None = None,
) -> dict[str, np.ndarray]:
    """Load one view of a train-ready scan.

    ``light``: None reads ``images/`` (the primary light); an index reads
    ``images_light/{light}/{vid:03d}.png``, or ``images/`` when ``light`` is the primary one. A light
    the scan does not hold raises DataError naming the lights it has.

    Returns a dict of float32 numpy arrays:
        ``depth (H, W)`` mm, 0 = no value; ``intrinsics (3, 3)``; ``extrinsics (3, 4)``
        world-to-camera; ``image (3, H, W)`` in [0, 1] when ``images/`` has it and ``with_image``;
        ``initial (H, W)`` mm when ``initial/`` has it and ``with_initial``.
    Raises:
        DataError when a required file is missing; FormatError (naming the file) when one is
        misshapen, non-finite or has negative depths.
    """
    scan_dir = Path(scan_dir)
    name = view_name(view_id, ".npy")
    depth = _load_npy(scan_dir / "depths" / name, (None, None), "depth map (H, W)")
    if (depth < 0).any():
        raise FormatError(scan_dir / "depths" / name, "expected depths >= 0 (0 = no value), got negative values")
    view = {
        "depth": depth,
        "intrinsics": _load_npy(scan_dir / "intrinsics" / name, (3, 3), "intrinsics"),
        "extrinsics": _load_npy(scan_dir / "extrinsics" / name, (3, 4), "world-to-camera extrinsics"),
    }
    if with_image:
        png = scan_dir / "images" / view_name(view_id, ".png")
        if light is not None:
            other = scan_dir / LIGHT_DIR / str(int(light)) / png.name
            if other.is_file():
                png = other
            elif read_meta(scan_dir).get("light") != int(light):
                raise DataError(f"{scan_dir}: no image of view {view_id} under light {light}; "
                                f"the scan holds lights {list_lights(scan_dir)}")
        if png.is_file():
            view["image"] = _load_png(png, depth.shape)
    if with_initial:
        path = scan_dir / "initial" / name
        if path.is_file():
            initial = _load_npy(path, depth.shape, "initial depth")
            if (initial < 0).any():
                raise FormatError(path, "expected initial depths >= 0 (0 = no value), got negative values")
            view["initial"] = initial
    return view


def read_scan_pairs(scan_dir: str | os.PathLike) -> Pairs:
    """The scan's ``pair.txt`` as ``{ref view id: [(src view id, score), …]}``, best first."""
    path = Path(scan_dir) / "pair.txt"
    if not path.is_file():
        raise DataError(f"{scan_dir}: expected a pair.txt, got none")
    return read_pair_file(path)
