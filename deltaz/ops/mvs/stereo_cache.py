"""Run two-view SGBM (:func:`deltaz.ops.mvs.stereo.stereo_depth`) on every view of a train-ready scan, cached::

    <scan>/sgbm/
      depth/{vid:03d}.npy   (H, W) float32 z-depth, mm, 0 = hole
      settings.json         the options that made it, written last: the completion marker

Each reference view is matched against ``pair.txt``'s best source whose disparity range fits the rectified
image (up to ``num_src`` are tried). When none fits (a near scene), the best source is matched over the part
of the range that fits, its far end; a view even that fails is all holes. The depth range searched is the scan's
``meta.json`` range widened as the plane sweep's (:func:`deltaz.ops.mvs.scan.widened_range`). Built in
``<scan>/.tmp-sgbm-<pid>`` and renamed when complete; a call with the same options reuses it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from deltaz.core.cache import marker_matches, write_marker
from deltaz.core.errors import ConfigError, DataError
from deltaz.io.dtu.layout import list_views, load_view, read_meta, read_scan_pairs, remove_stale_temp
from deltaz.ops.mvs.scan import SCAN_DEFAULTS, load_depth_file, publish, widened_range
from deltaz.ops.mvs.stereo import STEREO_DEFAULTS, stereo_depth

__all__ = ["STEREO_DIR", "stereo_scan", "load_stereo"]

#: Name of the cache folder inside a scan.
STEREO_DIR = "sgbm"
#: Version of what :func:`stereo_scan` writes; a change recomputes old caches.
_VERSION = 2


def _settings(scan_dir: Path, num_src: int, upsample: int) -> dict:
    if not (isinstance(num_src, int) and num_src >= 1):
        raise ConfigError(f"num_src: expected an integer >= 1 (source views tried per reference), got {num_src!r}")
    low, high = (float(v) for v in read_meta(scan_dir)["depth_range_mm"])
    return {"version": _VERSION, "num_src": num_src, "upsample": upsample, "views": list_views(scan_dir),
            "depth_range_mm": list(widened_range(low, high, SCAN_DEFAULTS["range_margin"]))}


def _view_depth(scan_dir: Path, view_id: int, sources: list[int], settings: dict) -> np.ndarray:
    ref = load_view(scan_dir, view_id, with_image=True, with_initial=False)
    if "image" not in ref:
        raise DataError(f"{scan_dir / 'images' / f'{view_id:03d}.png'}: missing image; SGBM needs images/")
    low, high = settings["depth_range_mm"]
    tries = [(src_id, False) for src_id in sources] + [(sources[0], True)]
    for src_id, clip_range in tries:
        src = load_view(scan_dir, src_id, with_image=True, with_initial=False)
        depth = stereo_depth(ref["image"], ref["intrinsics"], ref["extrinsics"], src["image"], src["intrinsics"],
                             src["extrinsics"], low, high, upsample=settings["upsample"], clip_range=clip_range)
        if depth is not None:
            return depth
    return np.zeros_like(ref["depth"])


def stereo_scan(scan_dir, num_src: int = 4, upsample: int = STEREO_DEFAULTS["upsample"], progress: bool = True) -> Path:
    """SGBM depth of every view of a train-ready scan (with ``images/`` and ``pair.txt``) into ``scan_dir/sgbm``.

    Returns the folder; a later call with equal settings returns at once, different settings recompute.
    """
    scan_dir = Path(scan_dir)
    settings = _settings(scan_dir, num_src, upsample)
    out = scan_dir / STEREO_DIR
    if marker_matches(out / "settings.json", settings):
        return out
    remove_stale_temp(scan_dir, STEREO_DIR)
    pairs = read_scan_pairs(scan_dir)
    available = set(settings["views"])
    tmp = scan_dir / f".tmp-{STEREO_DIR}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "depth").mkdir(parents=True)
        for v in tqdm(settings["views"], desc=f"sgbm {scan_dir.name}", disable=not progress):
            sources = [s for s, _ in pairs.get(v, []) if s in available and s != v][:num_src]
            if not sources:
                raise DataError(f"{scan_dir / 'pair.txt'}: view {v} has no source views in the scan")
            np.save(tmp / "depth" / f"{v:03d}.npy", _view_depth(scan_dir, v, sources, settings))
        write_marker(tmp / "settings.json", settings)
        return publish(scan_dir, tmp, STEREO_DIR)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_stereo(scan_dir, view_id: int) -> np.ndarray:
    """The cached SGBM depth of one view: float32 ``(H, W)`` mm, 0 = hole (DataError naming a bad file)."""
    path = Path(scan_dir) / STEREO_DIR / "depth" / f"{int(view_id):03d}.npy"
    depth = load_depth_file(path, "SGBM depth", "deltaz.ops.mvs.stereo_scan")
    if (depth < 0).any():
        raise DataError(f"{path}: expected depths >= 0 (0 = hole), got negatives")
    return depth
