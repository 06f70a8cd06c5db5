"""``deltaz parse``: DTU (MVSNet's ``dtu_training``, or raw calibration) → the train-ready layout.

What it reads (DESIGN.md §2)::

    <src>/Cameras/pair.txt                                    view selection (or <src>/pair.txt)
    <src>/Cameras/train/{vid:08d}_cam.txt                     cameras valid for the depth maps
    <src>/Cameras/scan{N}_train/{vid:08d}_cam.txt             per-scan cameras (preferred when present;
                                                              synthetic "real" scans carry their own range)
    <src>/Calibration/cal18/pos_{vid+1:03d}.txt               raw 1600x1200 P, used when no cam file
    <src>/Depths/scan{N}_train/depth_map_{vid:04d}.pfm        ground truth, mm, 0 = no value
    <src>/Rectified/scan{N}_train/rect_{vid+1:03d}_{light}_r5000.png   optional images (note the +1)
    <initial>/scan{N}/{vid:08d}.pfm | depth_map_{vid:04d}.pfm | depth_est/{vid:08d}.pfm   optional

(``Depths/scan{N}`` and ``Rectified/scan{N}`` without ``_train`` are accepted too.) What it writes:
one ``<dst>/scan{N}`` per scan in the layout of :mod:`deltaz.io.dtu.layout`, atomically.

Rules:

* **Lights.** DTU has seven lighting conditions per view (``_{light}_`` in the image names, 0..6).
  ``lights`` chooses which are kept (default: every one present for the scan's first view); each kept
  light must exist for every view. The *primary* light (``light``; default 3 when kept, else the
  lowest kept) goes to ``images/{vid:03d}.png`` as before, every other kept light to
  ``images_light/{light}/{vid:03d}.png`` (:mod:`deltaz.io.dtu.layout`); ``meta.json`` records
  ``light`` (primary) and ``lights`` (all kept). ``light`` alone keeps that one light only.
* **Cameras.** A cam file in ``Cameras/scan{N}_train`` (or ``Cameras/scan{N}``) wins over one in
  ``Cameras/train``. A cam file is valid for the depth maps as stored (MVSNet's are
  160×128). A raw ``pos_NNN.txt`` is for the 1600×1200 images; it is decomposed and taken through
  halve → crop (80, 44) → resize to the depth map's size (:mod:`deltaz.io.dtu.cameras`).
* **Resolution.** The output has the depth map's size, or ``resolution=(H, W)``. Depths (and initial
  depths) are resized by nearest neighbour *without a half-pixel shift* (output pixel ``u`` takes the
  input pixel ``round(u·W_in/W_out)``, which is exactly what scaling ``K`` by ``W_out/W_in``
  describes); images by area averaging; ``K`` is scaled per axis (DESIGN.md §1). Raw 1600×1200
  images are first halved and cropped to MVSNet's 640×512 frame. Images must cover the depth's field
  of view (same aspect ratio).
* **Depth range.** From the cam file: ``depth_max`` if given, else ``depth_min +
  depth_interval·(depth_num − 1)`` if ``depth_num`` is given, else MVSNet-PyTorch's 192 planes at
  ``1.06·depth_interval`` (DTU: 425 → 931.15 mm). Raw calibration has no depth line: DTU's 425 / 2.5
  is used. Valid depths more than 5 % of the range outside it are *reported as a warning, not
  clipped* (real DTU depths reach ~935 mm). ``meta.json``'s ``depth_range_mm`` is that range widened to
  cover every valid depth of the scan, so it always contains the data.
* **Pairs.** ``pair.txt`` is filtered to the scan's views; a view without a row is a warning.
* **Failures.** NaN/inf or negative depths, missing cameras, missing images in a scan that has some,
  mismatched shapes: the scan fails with a reason and nothing is published for it; other scans go on.
  A view count other than 49 is a warning.
* **Source.** ``meta.json`` records ``source: "synthetic"`` when ``<src>/synth.json`` names the
  generator ``deltaz.synthetic`` (``deltaz synth`` writes it), else ``"dtu"`` (real DTU); training's
  ``split="auto"`` applies MVSNet's scan lists only to ``"dtu"``.
* **Re-runs.** A complete ``<dst>/scan{N}`` (with ``meta.json``) is skipped unless ``overwrite``; a
  partial one (interrupted run) is redone, and so is a synthetic scan that layout version 1 recorded as
  ``"dtu"`` (:func:`deltaz.io.dtu.layout.is_stale_parse`); stale temporary folders are removed.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm.auto import tqdm

from deltaz.io.dtu.cameras import resize_intrinsics
from deltaz.io.dtu.formats import Pairs, dataset_source, read_pair_file, read_pfm
from deltaz.io.dtu.layout import ScanWriter, is_complete_scan
from deltaz.io.dtu.parse_cameras import (  # noqa: F401  (the DTU constants: public here too)
    DTU_DEPTH_INTERVAL_MM,
    DTU_DEPTH_MIN_MM,
    MVSNET_INTERVAL_SCALE,
    MVSNET_PLANES,
    RANGE_TOLERANCE,
    RangeStats,
    camera_source,
    load_camera,
)
from deltaz.io.dtu.parse_inputs import (  # noqa: F401  (resize_depth_nearest, resize_image_area: public here too)
    DTU_LIGHTS,
    parse_lights,
    read_initial,
    read_view_images,
    resize_depth_nearest,
    resize_image_area,
    scan_lights,
)
from deltaz.io.dtu.splits import SPLITS, scan_list
from deltaz.core.errors import ConfigError, DataError, DeltaZError, FormatError
from deltaz.core.options import parse_hw

__all__ = [
    "ParseSummary",
    "parse_dtu",
    "parse_lights",
    "add_arguments",
    "run",
    "DTU_DEPTH_MIN_MM",
    "DTU_DEPTH_INTERVAL_MM",
    "DTU_LIGHTS",
]

DTU_VIEWS = 49  #: views per DTU scan


@dataclass
class ParseSummary:
    """What :func:`parse_dtu` did: scans ``written``, ``skipped`` (already complete), ``failed``
    (``{scan: reason}``) and ``warnings`` (``[(scan, message)]``)."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        lines = [f"parsed {len(self.written)} scan(s), skipped {len(self.skipped)} complete, {len(self.failed)} failed"]
        lines += [f"  warning {scan}: {message}" for scan, message in self.warnings]
        lines += [f"  FAILED {scan}: {reason}" for scan, reason in self.failed.items()]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------ locating


def _scan_name(item: int | str) -> str:
    text = str(item).strip()
    if re.fullmatch(r"\d+", text):
        return f"scan{int(text)}"
    if re.fullmatch(r"scan\d+", text):
        return f"scan{int(text[4:])}"
    raise ConfigError(f"scans: expected scan numbers or names like 'scan1', got {item!r}")


def _first_dir(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.is_dir()), None)


def _depth_dir(src: Path, scan: str) -> Path | None:
    return _first_dir(src / "Depths" / f"{scan}_train", src / "Depths" / scan)


def _available_scans(src: Path) -> list[str]:
    depths = src / "Depths"
    names = set()
    for path in depths.iterdir() if depths.is_dir() else []:
        match = re.fullmatch(r"(scan\d+)(_train)?", path.name)
        if match and path.is_dir():
            names.add(match.group(1))
    return sorted(names, key=lambda n: int(n[4:]))


def _resolve_scans(src: Path, scans: None | str | Iterable[int | str]) -> list[str]:
    if scans is None:
        found = _available_scans(src)
        if not found:
            raise DataError(f"{src}: expected scan folders under Depths/ (e.g. Depths/scan1_train), found none")
        return found
    if isinstance(scans, str):
        if scans in SPLITS:
            return scan_list(scans)
        scans = [s for s in re.split(r"[,\s]+", scans) if s]
    names = [_scan_name(s) for s in scans]
    return list(dict.fromkeys(names))


def _read_pairs(src: Path) -> Pairs:
    for path in (src / "Cameras" / "pair.txt", src / "pair.txt"):
        if path.is_file():
            return read_pair_file(path)
    raise DataError(f"{src}: expected a view selection at Cameras/pair.txt (or pair.txt), found none")


# ---------------------------------------------------------------------------------------------- a scan


def _depth_files(src: Path, scan: str) -> dict[int, Path]:
    """``{view_id: depth_map_NNNN.pfm}`` of a scan; DataError when there is none."""
    depth_dir = _depth_dir(src, scan)
    if depth_dir is None:
        raise DataError(f"no depth folder, expected {src / 'Depths' / (scan + '_train')}")
    view_files = {}
    for path in depth_dir.iterdir():
        match = re.fullmatch(r"depth_map_(\d{4,})\.pfm", path.name)
        if match:
            view_files[int(match.group(1))] = path
    if not view_files:
        raise DataError(f"{depth_dir}: expected depth_map_NNNN.pfm files, found none")
    return view_files


def _read_depth(depth_path: Path, depth_hw: tuple[int, int] | None) -> np.ndarray:
    """A ground-truth depth map, checked: one channel, ``depth_hw`` (when known), no negative value."""
    depth = read_pfm(depth_path)
    if depth.ndim != 2:
        raise FormatError(depth_path, f"expected a one-channel depth map (Pf), got shape {depth.shape}")
    if depth_hw is not None and depth.shape != depth_hw:
        raise FormatError(
            depth_path,
            f"expected {depth_hw[0]}x{depth_hw[1]} like the scan's first view, got {depth.shape[0]}x{depth.shape[1]}",
        )
    if (depth < 0).any():
        raise FormatError(
            depth_path, f"expected depths >= 0 (0 = no value), got {int((depth < 0).sum())} negative values"
        )
    return depth


def _scan_pairs(pairs: Pairs, view_ids: list[int], warn) -> Pairs:
    """``pair.txt`` filtered to the scan's views; warns about views without a row."""
    present = set(view_ids)
    scan_pairs = {
        ref: [(s, score) for s, score in sources if s in present] for ref, sources in pairs.items() if ref in present
    }
    missing_refs = sorted(present - set(scan_pairs))
    if missing_refs:
        warn(f"pair.txt has no row for view(s) {missing_refs}: they serve only as source views")
    return scan_pairs


def _initial_folder(initial_root: Path | None, scan: str, warn) -> Path | None:
    """``initial_root/scan`` when it exists; warns (and returns None) when it does not."""
    if initial_root is None:
        return None
    folder = initial_root / scan
    if not folder.is_dir():
        warn(f"no initial depths at {folder}: the scan is written without initial/")
        return None
    return folder


def _write_views(writer: ScanWriter, src: Path, scan: str, view_files: dict[int, Path], lights: tuple,
                 resolution: tuple[int, int] | None, initial_root: Path | None) -> RangeStats:
    """Read, check, resize and add every view of a scan; ``lights = (primary, kept)``."""
    primary, kept = lights
    depth_hw = out_hw = None
    stats = RangeStats()
    for view_id in sorted(view_files):
        depth = _read_depth(view_files[view_id], depth_hw)
        if depth_hw is None:
            depth_hw = depth.shape
            out_hw = tuple(resolution) if resolution is not None else depth_hw
        camera = load_camera(src, view_id, depth_hw, scan)
        stats.add(camera, depth)
        images = read_view_images(src, scan, view_id, kept, depth_hw, out_hw)
        initial = None if initial_root is None else read_initial(initial_root, scan, view_id, depth_hw, out_hw)
        writer.add_view(
            view_id,
            depth=resize_depth_nearest(depth, out_hw),
            intrinsics=resize_intrinsics(camera.K, depth_hw, out_hw),
            extrinsics=camera.E[:3, :4],
            image=images.pop(primary, None),
            initial=initial,
            light_images=images,
        )
    return stats


def _parse_scan(
    src: Path,
    dst: Path,
    scan: str,
    pairs: Pairs,
    light: int | None,
    resolution: tuple[int, int] | None,
    initial_root: Path | None,
    warn,
    lights: list[int] | None = None,
) -> Path:
    view_files = _depth_files(src, scan)
    view_ids = sorted(view_files)
    if len(view_ids) != DTU_VIEWS:
        warn(f"{len(view_ids)} views instead of DTU's {DTU_VIEWS}")
    primary, kept = scan_lights(src, scan, view_ids[0], lights, light)
    if primary is None:
        warn("no Rectified/ images: the scan is written without images")
    initial_root = initial_root if _initial_folder(initial_root, scan, warn) is not None else None
    with ScanWriter(dst, scan) as writer:
        stats = _write_views(writer, src, scan, view_files, (primary, kept), resolution, initial_root)
        if stats.out_of_range:
            warn(
                f"{stats.out_of_range} valid depth(s)"
                f" more than {RANGE_TOLERANCE:.0%} outside [{stats.low:.1f}, {stats.high:.1f}] mm (kept)"
            )
        range_low, range_high = stats.low, stats.high
        if writer.valid_max > writer.valid_min:
            range_low, range_high = min(range_low, writer.valid_min), max(range_high, writer.valid_max)
        meta = {
            "source": dataset_source(src),
            "src_path": str(src.resolve()),
            "scan": scan,
            "light": primary,
            "lights": kept,
            "depth_range_mm": [float(range_low), float(range_high)],
            "depth_interval_mm": float(stats.interval),
            "cameras": camera_source(src, scan),
        }
        return writer.finish(_scan_pairs(pairs, view_ids, warn), meta)


def parse_dtu(
    src: str | Path,
    dst: str | Path,
    scans: None | str | Iterable[int | str] = None,
    light: int | None = None,
    resolution: tuple[int, int] | None = None,
    progress: bool = True,
    initial: str | Path | None = None,
    overwrite: bool = False,
    lights: None | int | str | Iterable[int] = None,
) -> ParseSummary:
    """Convert DTU scans under ``src`` to train-ready scans under ``dst`` (see the module docstring).

    Args:
        src: a ``dtu_training`` folder (``Cameras/``, ``Depths/``, optional ``Rectified/``) or raw DTU
            calibration (``Calibration/cal18``) next to ``Depths/``.
        dst: the train-ready root; each scan becomes ``dst/scan{N}``.
        scans: None (every scan under ``Depths/``), a split name ("train", "val", "test"), or scan
            numbers/names (``[1, "scan4"]`` or ``"1,4"``).
        light: the primary DTU lighting index 0..6, written to ``images/`` (default: 3 when kept, else
            the lowest kept light).
        lights: the lights to keep (:func:`parse_lights`: ``"all"``, ``"0-6"``, ``[0, 3]``, …). Default:
            every light present when ``light`` is None, else only ``light`` (the behaviour before
            lights were kept together).
        resolution: output ``(H, W)``; None keeps the depth maps' size.
        progress: show a tqdm bar over scans.
        initial: optional folder of real MVS outputs, ``initial/scan{N}/{vid:08d}.pfm`` or
            ``…/depth_map_{vid:04d}.pfm``, written to ``initial/``.
        overwrite: redo scans that are already complete.
    Returns:
        A :class:`ParseSummary`; failed scans are listed with their reason, never half-written.
    Raises:
        DataError / ConfigError when ``src`` is unusable as a whole (no pair.txt, no scans, bad args).
    """
    src = Path(src)
    dst = Path(dst)
    if not src.is_dir():
        raise DataError(f"{src}: expected a DTU folder (dtu_training with Cameras/ and Depths/), got no such folder")
    if light is not None and (not isinstance(light, (int, np.integer)) or int(light) not in DTU_LIGHTS):
        raise ConfigError(f"light: expected a DTU lighting index 0..6, got {light!r}")
    kept_lights = parse_lights(lights)
    if lights is None and light is not None:
        kept_lights = [int(light)]
    if resolution is not None and (len(resolution) != 2 or min(resolution) < 1):
        raise ConfigError(f"resolution: expected (H, W) with positive sizes, got {resolution}")
    initial_root = None if initial is None else Path(initial)
    if initial_root is not None and not initial_root.is_dir():
        raise ConfigError(f"initial: expected a folder of initial depths (scan{{N}}/…pfm), got {initial_root}")
    names = _resolve_scans(src, scans)
    pairs = _read_pairs(src)
    summary = ParseSummary()
    bar = tqdm(names, desc="parse", unit="scan", disable=not progress)
    for scan in bar:
        bar.set_postfix_str(scan)
        if is_complete_scan(dst / scan) and not overwrite:
            summary.skipped.append(scan)
            continue
        scan_warnings: list[str] = []
        try:
            _parse_scan(src, dst, scan, pairs, None if light is None else int(light), resolution, initial_root,
                        scan_warnings.append, kept_lights)
        except (DeltaZError, OSError, ValueError) as error:
            summary.failed[scan] = str(error)
        else:
            summary.written.append(scan)
        summary.warnings += [(scan, message) for message in scan_warnings]
    bar.close()
    return summary


# --------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``deltaz parse``."""
    parser.add_argument(
        "--src", required=True, type=Path, help="DTU folder: MVSNet's dtu_training (Cameras/, Depths/, Rectified/)"
    )
    parser.add_argument(
        "--dst", required=True, type=Path, help="train-ready output root; each scan becomes DST/scan{N}"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--scans",
        nargs="+",
        metavar="SCAN",
        help="scan numbers or names (1 4 scan9); default: every scan under Depths/",
    )
    which.add_argument("--split", choices=sorted(SPLITS), help="MVSNet's train/val/test scan list")
    parser.add_argument("--light", type=int, default=None,
                        help="primary DTU lighting index 0..6, written to images/ (default 3); alone it keeps "
                             "only this light")
    parser.add_argument("--lights", default=None, metavar="SPEC",
                        help="lights to keep, e.g. 0-6, 0,3,5 or all (default: all present, or only --light); "
                             "the others go to images_light/{light}/")
    parser.add_argument(
        "--resolution",
        type=parse_hw,
        default=None,
        metavar="HxW",
        help="output size, e.g. 128x160 (default: the depth maps' size)",
    )
    parser.add_argument(
        "--initial",
        type=Path,
        default=None,
        metavar="DIR",
        help="real MVS depths to import into initial/: DIR/scan{N}/{vid:08d}.pfm or depth_map_{vid:04d}.pfm",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="redo scans that are already complete (default: skip them)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``deltaz parse``; prints a summary; exit status 1 when any scan failed (or none was found)."""
    scans = args.split if args.split else args.scans
    try:
        summary = parse_dtu(
            args.src,
            args.dst,
            scans=scans,
            light=args.light,
            lights=args.lights,
            resolution=args.resolution,
            progress=not args.no_progress,
            initial=args.initial,
            overwrite=args.overwrite,
        )
    except DeltaZError as error:
        print(f"deltaz parse: error: {error}", file=sys.stderr)
        return 1
    print(summary)
    return 0 if summary.ok else 1
