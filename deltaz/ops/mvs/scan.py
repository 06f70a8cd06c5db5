"""Run the plane sweep on a train-ready scan and cache the result beside it.

::

    <scan>/planesweep/
      depth/{vid:03d}.npy        (H, W) float32 z-depth, mm, 0 = hole (after the geometric filter)
      depth_raw/{vid:03d}.npy    the same before the filter (with apply_filter): what a matcher without a
                                 consistency check outputs — foreground fattening, wrong matches and all
      confidence/{vid:03d}.npy   (H, W) float32 in [0, 1], the sweep's confidence (holes included)
      settings.json              the options that made it, written last: the completion marker

The folder is built as ``<scan>/.tmp-planesweep-<pid>`` and renamed when complete, so a kill never
leaves a ``planesweep/`` that looks finished. A call with the same options reuses it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from deltaz.core.atomic import atomic_write_text
from deltaz.io.dtu.layout import list_views, load_view, read_meta, read_scan_pairs, remove_stale_temp
from deltaz.core.errors import ConfigError, DataError
from deltaz.ops.mvs.filter import FILTER_DEFAULTS, geometric_filter
from deltaz.ops.mvs.sweep import SWEEP_DEFAULTS, plane_sweep

__all__ = ["SWEEP_DIR", "SCAN_DEFAULTS", "sweep_scan", "load_sweep", "sweep_settings", "widened_range", "publish",
           "load_depth_file"]

#: Name of the cache folder inside a scan.
SWEEP_DIR = "planesweep"
#: Version of what :func:`sweep_scan` writes; a change recomputes old caches.
_VERSION = 2
#: Options of :func:`sweep_scan` beyond the sweep's and the filter's.
SCAN_DEFAULTS = {"range_margin": 0.05, "filter_sources": 10, "apply_filter": True}
#: Options that change nothing in the result (not recorded in settings.json).
_RUN_ONLY = ("chunk_planes", "progress")


def sweep_settings(scan_dir, num_src: int = 4, num_planes: int = 48, views=None, **options) -> dict:
    """The complete, JSON-ready settings of a :func:`sweep_scan` call (defaults filled in).

    ``depth_range_mm`` is the scan's ``meta.json`` range widened by ``range_margin`` × its span on both sides.
    """
    known = {**SWEEP_DEFAULTS, **FILTER_DEFAULTS, **SCAN_DEFAULTS}
    unknown = sorted(set(options) - set(known) - set(_RUN_ONLY))
    if unknown:
        raise ConfigError(f"sweep_scan: unknown option(s) {', '.join(unknown)}; expected among "
                          f"{', '.join(sorted([*known, *_RUN_ONLY]))}")
    if not (isinstance(num_src, int) and num_src >= 1):
        raise ConfigError(f"num_src: expected an integer >= 1 (source views per reference), got {num_src!r}")
    settings = {**known, **{k: v for k, v in options.items() if k in known}}
    margin = settings["range_margin"]
    if not (isinstance(margin, (int, float)) and 0 <= margin < 0.5):
        raise ConfigError(f"range_margin: expected a fraction in [0, 0.5) of the depth span, got {margin!r}")
    low, high = (float(v) for v in read_meta(scan_dir)["depth_range_mm"])
    all_views = list_views(scan_dir)
    chosen = all_views if views is None else sorted({int(v) for v in views})
    missing = sorted(set(chosen) - set(all_views))
    if missing or not chosen:
        raise ConfigError(f"views: expected view ids of {scan_dir} ({all_views[0]}..{all_views[-1]}), "
                          f"got {missing or 'none'}")
    settings.update(version=_VERSION, num_src=num_src, num_planes=num_planes, views=chosen,
                    depth_range_mm=list(widened_range(low, high, margin)))
    return settings


def widened_range(low_mm: float, high_mm: float, margin: float = SCAN_DEFAULTS["range_margin"]) -> tuple[float, float]:
    """The planes' depth range: a scan's ``[low, high]`` mm widened by ``margin`` × its span on both sides
    (never below 1e-3 mm), so surfaces at the range's ends still get a cost minimum inside it."""
    span = float(high_mm) - float(low_mm)
    return max(float(low_mm) - margin * span, 1e-3), float(high_mm) + margin * span


def _read_settings(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _is_cached(out: Path, settings: dict) -> bool:
    if _read_settings(out / "settings.json") != settings:
        return False
    return all((out / kind / f"{v:03d}.npy").is_file() for v in settings["views"] for kind in ("depth", "confidence"))


def _view_tensors(scan_dir: Path, view_id: int, device) -> dict:
    view = load_view(scan_dir, view_id, with_image=True, with_initial=False)
    if "image" not in view:
        raise DataError(f"{scan_dir / 'images' / f'{view_id:03d}.png'}: missing image; the plane sweep needs images/")
    return {k: torch.from_numpy(view[k]).to(device) for k in ("image", "intrinsics", "extrinsics")}


def _sweep_views(scan_dir: Path, settings: dict, device, chunk_planes, progress) -> dict[int, tuple]:
    """``{view_id: (depth, confidence)}`` of the unfiltered sweep, tensors on ``device``."""
    pairs = read_scan_pairs(scan_dir)
    available = set(list_views(scan_dir))
    cache: dict[int, dict] = {}

    def view(v):
        if v not in cache:
            cache[v] = _view_tensors(scan_dir, v, device)
        return cache[v]

    sweep_opts = {k: settings[k] for k in SWEEP_DEFAULTS}
    low, high = settings["depth_range_mm"]
    results = {}
    for v in tqdm(settings["views"], desc=f"plane sweep {scan_dir.name}", disable=not progress):
        srcs = [s for s, _ in pairs.get(v, []) if s in available and s != v][: settings["num_src"]]
        if not srcs:
            raise DataError(f"{scan_dir / 'pair.txt'}: view {v} has no source views in the scan")
        ref = view(v)
        result = plane_sweep(
            ref["image"], ref["intrinsics"], ref["extrinsics"],
            torch.stack([view(s)["image"] for s in srcs]), torch.stack([view(s)["intrinsics"] for s in srcs]),
            torch.stack([view(s)["extrinsics"] for s in srcs]), low, high, settings["num_planes"],
            chunk_planes=chunk_planes, **{**sweep_opts, "min_sources": min(sweep_opts["min_sources"], len(srcs))},
        )
        results[v] = (result.depth, result.confidence, ref["intrinsics"], ref["extrinsics"])
    return results


def _filter(scan_dir: Path, settings: dict, results: dict) -> dict[int, torch.Tensor]:
    """Filtered depths per view: sources for the check are ``pair.txt``'s, among the swept views."""
    views = settings["views"]
    position = {v: i for i, v in enumerate(views)}
    pairs = read_scan_pairs(scan_dir)
    src_lists = [[position[s] for s, _ in pairs.get(v, []) if s in position and s != v][: settings["filter_sources"]]
                 for v in views]
    depths = torch.stack([results[v][0] for v in views])
    masks = geometric_filter(depths, torch.stack([results[v][2] for v in views]),
                             torch.stack([results[v][3] for v in views]), src_lists,
                             settings["min_consistent"], settings["pixel_tol"], settings["rel_depth_tol"])
    return {v: torch.where(masks[i], depths[i], torch.zeros_like(depths[i])) for i, v in enumerate(views)}


def publish(scan_dir: Path, tmp: Path, name: str = SWEEP_DIR) -> Path:
    """Rename the finished temporary folder to ``scan_dir/name`` (``planesweep/``), replacing an older one."""
    out = scan_dir / name
    old = scan_dir / f".old-{name}-{os.getpid()}"
    if out.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def sweep_scan(scan_dir, num_src: int = 4, num_planes: int = 48, views=None, device="cpu", **options) -> Path:
    """Plane-sweep every view (or ``views``) of a train-ready scan, filter, and write ``planesweep/``.

    Args:
        scan_dir: a complete train-ready scan with ``images/`` (at the depth resolution) and ``pair.txt``.
        num_src: source views per reference, ``pair.txt``'s best first.
        num_planes: planes over ``meta.json``'s ``depth_range_mm`` widened by ``range_margin`` (default
            0.05 of the span) on both sides.
        views: view ids to sweep (default: all); the geometric filter only compares swept views.
        device: where the sweep runs (``"cpu"``, ``"cuda"``, …).
        **options: :func:`~deltaz.ops.mvs.plane_sweep` options (``window``, ``agg_window``, ``top_k``,
            ``spacing``, ``temperature``, ``min_confidence``, ``min_sources``, ``chunk_planes``),
            :func:`~deltaz.ops.mvs.geometric_filter` options (``min_consistent``, ``pixel_tol``,
            ``rel_depth_tol``), ``filter_sources`` (pair.txt sources checked, default 10),
            ``apply_filter`` (default True), ``progress`` (tqdm bar, default True).
    Returns:
        ``scan_dir/planesweep``. ``settings.json`` there (written last) holds the options that change
        the result; a later call with equal settings returns at once, different settings recompute.
    """
    scan_dir = Path(scan_dir)
    chunk_planes, progress = options.pop("chunk_planes", None), options.pop("progress", True)
    settings = sweep_settings(scan_dir, num_src, num_planes, views, **options)
    out = scan_dir / SWEEP_DIR
    if _is_cached(out, settings):
        return out
    remove_stale_temp(scan_dir, SWEEP_DIR)
    results = _sweep_views(scan_dir, settings, torch.device(device), chunk_planes, progress)
    depths = (_filter(scan_dir, settings, results) if settings["apply_filter"]
              else {v: r[0] for v, r in results.items()})
    tmp = scan_dir / f".tmp-{SWEEP_DIR}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        kinds = {"depth": depths, "confidence": {v: r[1] for v, r in results.items()}}
        if settings["apply_filter"]:
            kinds["depth_raw"] = {v: r[0] for v, r in results.items()}
        for kind, maps in kinds.items():
            (tmp / kind).mkdir(parents=True)
            for v in settings["views"]:
                np.save(tmp / kind / f"{v:03d}.npy", maps[v].cpu().numpy().astype(np.float32))
        atomic_write_text(tmp / "settings.json", json.dumps(settings, indent=2, sort_keys=True) + "\n")
        return publish(scan_dir, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_depth_file(path: Path, what: str, maker: str = "deltaz.ops.mvs.sweep_scan") -> np.ndarray:
    """A cached ``(H, W)`` float map from ``path``; DataError naming the file (and ``maker``, the function
    that writes it) when it is missing or malformed."""
    if not path.is_file():
        raise DataError(f"{path}: missing {what}; run {maker} on the scan first")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path}: expected a .npy {what} (H, W), got an unreadable file: {error}") from None
    if not isinstance(array, np.ndarray) or array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise DataError(f"{path}: expected a float {what} of shape (H, W), got {getattr(array, 'dtype', '?')} "
                        f"{getattr(array, 'shape', '?')}")
    if not np.isfinite(array).all():
        raise DataError(f"{path}: expected finite values in the {what}, got NaN/inf")
    return array.astype(np.float32, copy=False)


def load_sweep(scan_dir, view_id: int, filtered: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(depth, confidence)`` of one view from ``scan_dir/planesweep/``: float32 ``(H, W)`` arrays.

    ``filtered=False`` reads the depth before the geometric filter (``depth_raw/``; the sweep's own holes
    only). Raises DataError naming the file when it is missing or malformed.
    """
    out = Path(scan_dir) / SWEEP_DIR
    depth = load_depth_file(out / ("depth" if filtered else "depth_raw") / f"{int(view_id):03d}.npy", "plane-sweep depth")
    confidence = load_depth_file(out / "confidence" / f"{int(view_id):03d}.npy", "plane-sweep confidence")
    if confidence.shape != depth.shape:
        raise DataError(f"{out / 'confidence' / f'{int(view_id):03d}.npy'}: expected shape {depth.shape} like "
                        f"the depth, got {confidence.shape}")
    if (depth < 0).any():
        raise DataError(f"{out / 'depth' / f'{int(view_id):03d}.npy'}: expected depths >= 0 (0 = hole), got negatives")
    return depth, confidence
