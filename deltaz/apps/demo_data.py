"""The data stages of ``deltaz demo``: render, split and parse the scans, then plane-sweep them.

1. **synth** — :func:`deltaz.io.synthetic.generate_dataset` renders ``scans`` DTU-like scans (realistic style:
   walls, photo textures, shadows, speculars, camera noise; ``lights`` illuminations per view) into
   ``<data>/synth``; skipped when the folder was made with the same settings and is complete.
2. **parse** — a seeded scene split (:func:`deltaz.data.split_scans`, ``split="random"``): ``test_scans``
   held-out scans go to ``<data>/test_ready``, the others to ``<data>/train_ready``, every light kept.
3. **sweep** — :func:`deltaz.ops.mvs.sweep_scan` (plane sweep, ``planesweep/``) and/or
   :func:`deltaz.ops.mvs.stereo_scan` (OpenCV SGBM, ``sgbm/``) on every scan of both folders, as the training
   mix and the evaluation preset need them: the real-algorithm initial depths (cached in each scan).

Each stage returns its wall time in seconds, or None when it reused earlier results.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from deltaz.core.cache import marker_matches, read_marker, write_marker
from deltaz.core.errors import DeltaZError
from deltaz.data import split_scans
from deltaz.io.dtu.layout import list_scans
from deltaz.io.dtu.parse import parse_dtu
from deltaz.io.synthetic.writer import depth_path, generate_dataset
from deltaz.ops.corrupt import parse_initial_mix
from deltaz.ops.mvs import stereo_scan, sweep_scan

if TYPE_CHECKING:  # the settings class lives in deltaz.apps.demo, which imports this module
    from deltaz.apps.demo import DemoSettings

__all__ = ["stage_synth", "split_demo_scans", "data_stamp", "stage_parse", "stage_sweep", "stereo_kinds"]


def _synth_settings(settings: DemoSettings) -> dict:
    """The ``synth.json`` entries that must match for a rendered folder to be reused."""
    return {"seed": settings.seed, "n_views": settings.views, "n_lights": settings.lights,
            "width": settings.image_size[1], "height": settings.image_size[0], "style": settings.style,
            "supersample": settings.supersample}


def data_stamp(settings: DemoSettings) -> dict:
    """What the demo trains on: the rendering settings and the scan split. A finished training run is reused only
    with the same stamp (another split could put its training scans among the held-out ones)."""
    return {"render": {**_synth_settings(settings), "n_scans": settings.scans},
            "split": {"seed": settings.seed, "resolution": settings.resolution, **split_demo_scans(settings)}}


def _synth_complete(root: Path, settings: DemoSettings) -> bool:
    saved = read_marker(root / "synth.json")  # the generator's manifest: a superset of the demo's settings
    if not isinstance(saved, dict):
        return False
    if any(saved.get(k) != v for k, v in _synth_settings(settings).items()):
        return False
    if int(saved.get("n_scans", 0)) < settings.scans or not (root / "Cameras" / "pair.txt").is_file():
        return False
    scans = range(1, settings.scans + 1)
    return all(depth_path(root, scan, v).is_file() for scan in scans for v in range(settings.views))


def stage_synth(settings: DemoSettings, data: Path) -> float | None:
    """Render the synthetic dataset into ``data/synth`` unless it is complete. Returns seconds or None (cached)."""
    root = data / "synth"
    if not settings.force and _synth_complete(root, settings):
        print(f"[1/6] synth: reusing {root} ({settings.scans} scans x {settings.views} views)")
        return None
    print(f"[1/6] synth: rendering {settings.scans} scans x {settings.views} views x {settings.lights} lights "
          f"({settings.style} style) into {root}")
    start = time.perf_counter()
    generate_dataset(
        root, settings.scans, seed=settings.seed, n_views=settings.views, n_lights=settings.lights,
        width=settings.image_size[1], height=settings.image_size[0], progress=settings.progress,
        overwrite=True, style=settings.style, supersample=settings.supersample,
    )
    return time.perf_counter() - start


def split_demo_scans(settings: DemoSettings) -> dict[str, list[str]]:
    """Seeded scene split of ``scan1..scanN`` into train+val and test (``deltaz.data.split_scans``)."""
    names = [f"scan{k}" for k in range(1, settings.scans + 1)]
    train_val, test = split_scans(names, settings.test_scans / settings.scans, seed=settings.seed, split="random")
    return {"train_val": train_val, "test": test}


def ready_roots(data: Path) -> dict[str, Path]:
    """The train-ready folders of the demo: ``train_val`` (training + validation) and ``test`` (held out)."""
    return {"train_val": data / "train_ready", "test": data / "test_ready"}


def stage_parse(settings: DemoSettings, data: Path, synth_time: float | None) -> tuple[float | None, dict]:
    """Parse the held-out scans into ``test_ready`` and the others into ``train_ready`` (all lights).

    A new rendering (``synth_time`` not None), another split or ``--force`` re-parses from scratch."""
    groups = split_demo_scans(settings)
    record = {"seed": settings.seed, "resolution": settings.resolution, **groups}
    split_file = data / "split.json"
    roots = ready_roots(data)
    stale = settings.force or synth_time is not None or (split_file.is_file() and not marker_matches(split_file, record))
    if stale:
        for root in roots.values():
            shutil.rmtree(root, ignore_errors=True)
    done = all(root.is_dir() and set(groups[key]) <= set(list_scans(root)) for key, root in roots.items())
    if done:
        print(f"[2/6] parse: reusing {roots['train_val']} and {roots['test']}")
        return None, groups
    print(f"[2/6] parse: {len(groups['train_val'])} scans -> {roots['train_val']}, "
          f"{len(groups['test'])} held-out scans -> {roots['test']}")
    start = time.perf_counter()
    for key, root in roots.items():
        summary = parse_dtu(data / "synth", root, scans=groups[key], resolution=settings.resolution,
                            progress=settings.progress)
        if not summary.ok:
            raise DeltaZError(f"parse failed for {sorted(summary.failed)}: {summary.failed}")
    write_marker(split_file, record)
    return time.perf_counter() - start, groups


def stereo_kinds(settings: DemoSettings) -> list[str]:
    """The stereo caches training or evaluation reads: a subset of ``["planesweep", "sgbm"]``."""
    names = [*parse_initial_mix(settings.train.preset), *parse_initial_mix(settings.eval_preset)]
    return [kind for kind in ("planesweep", "sgbm") if any(name.startswith(kind) for name in names)]


def stage_sweep(settings: DemoSettings, data: Path, groups: dict, device: str) -> float | None:
    """Run the stereo the mix needs on every scan of both folders (cached per scan; see the module doc)."""
    kinds = stereo_kinds(settings)
    if not kinds:
        return None
    roots = ready_roots(data)
    scans = [(roots[key], scan) for key in ("train_val", "test") for scan in groups[key]]
    fresh = sum(not (root / scan / kind / "settings.json").is_file() for root, scan in scans for kind in kinds)
    label = " and ".join({"planesweep": "plane-sweep", "sgbm": "SGBM"}[kind] for kind in kinds)
    print(f"[3/6] sweep: {label} stereo on {len(scans)} scans x {settings.views} views "
          f"({len(scans) * len(kinds) - fresh} cached)")
    start = time.perf_counter()
    sweep_device = device if device.startswith("cuda") else "cpu"
    for root, scan in scans:  # a cached scan with the same options returns at once
        if "planesweep" in kinds:
            sweep_scan(root / scan, device=sweep_device, progress=settings.progress)
        if "sgbm" in kinds:
            stereo_scan(root / scan, progress=settings.progress)
    if sweep_device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start if fresh else None
