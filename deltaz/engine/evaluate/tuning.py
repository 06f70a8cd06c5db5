"""Baseline parameters chosen on the validation scans only (never on the evaluated scans)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from deltaz.engine.scans import chunks, load_scan_views
from deltaz.ops.baselines import tune_baseline

__all__ = ["tune_baselines", "tuning_samples"]


def tuning_samples(
    tune_root: str | Path,
    val_scans: Sequence[str],
    num_src_views: int = 4,
    preset: str = "mvs",
    use_images: bool = False,
    max_views_per_scan: int | None = 16,
    batch_size: int = 8,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Batches of up to ``max_views_per_scan`` evenly spaced reference views per validation scan (None = all):
    ``{"scene", "depth_init", "depth" (B, H, W) mm, "image" (B, 3, H, W) | None, "multiview" (MultiView)}``."""
    samples: list[dict[str, Any]] = []
    for scan in tqdm(list(val_scans), desc="load val scans", unit="scan", disable=not progress, leave=False):
        views = load_scan_views(tune_root, scan, num_src_views, preset, use_images)
        refs = list(range(len(views)))
        if max_views_per_scan is not None and len(refs) > max_views_per_scan:
            refs = sorted({int(round(x)) for x in np.linspace(0, len(refs) - 1, max_views_per_scan)})
        for idx in chunks(refs, batch_size):
            samples.append({
                "scene": scan,
                "depth_init": views.depth_init[idx],
                "depth": views.depth[idx],
                "image": None if views.image is None else views.image[idx],
                "multiview": views.multiview(idx),
            })
    return samples


def tune_baselines(
    names: Sequence[str],
    tune_root: str | Path,
    val_scans: Sequence[str],
    num_src_views: int = 4,
    preset: str = "mvs",
    use_images: bool = False,
    max_views_per_scan: int | None = 16,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Choose each baseline's parameters on the validation scans ``val_scans`` of ``tune_root``
    (:func:`deltaz.ops.baselines.tune_baseline`, by MAE in mm over :func:`tuning_samples`).

    Returns ``{name: {"params": {...}, "val_mae_mm": float, "tuned_on": [scans], "n_views": int}}``; without
    validation scans every baseline keeps its default parameters (``"tuned_on": []``).
    """
    names = [n for n in names if n != "identity"]
    if not names:
        return {}
    if not val_scans:
        return {n: {"params": {}, "val_mae_mm": None, "tuned_on": [], "n_views": 0} for n in names}
    samples = tuning_samples(tune_root, val_scans, num_src_views, preset, use_images, max_views_per_scan,
                             batch_size, progress)
    n_views = sum(len(s["depth"]) for s in samples)
    chosen: dict[str, dict[str, Any]] = {}
    for name in tqdm(names, desc="tune baselines (val)", unit="baseline", disable=not progress, leave=False):
        params, mae = tune_baseline(name, samples)
        chosen[name] = {"params": params, "val_mae_mm": mae, "tuned_on": list(val_scans), "n_views": n_views}
    return chosen
