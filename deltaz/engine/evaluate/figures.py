"""The evaluation's PNG figures (matplotlib): a depth row per scan, the error histogram, sparsification.

Each function writes one PNG under ``out_dir/figures/`` and returns its path relative to ``out_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from deltaz.engine.scans import ScanViews
from deltaz.engine.report import save_figure
from deltaz.ops.confidence import Sparsification
from deltaz.ops.metrics import depth_metrics
from deltaz.viz import layers_from_view, render_depth_row, render_error_histogram, render_sparsification

__all__ = ["HISTOGRAM_METHODS", "depth_figure", "histogram_figure", "sparsification_figure"]

#: Methods drawn in the error histogram (when evaluated).
HISTOGRAM_METHODS = ("identity", "median", "bilateral", "guided", "geometric_averaging", "mvsnet_refine", "deltaz")


def _save(fig, out_dir: Path, name: str) -> str:
    return str(save_figure(fig, out_dir / "figures" / name).relative_to(out_dir))


def depth_figure(views: ScanViews, refined: torch.Tensor, out_dir: Path, scan_index: int) -> str:
    """Initial / refined / ground truth / Δz / error of one view (the first, or the middle one for odd
    ``scan_index``); ``refined (N, H, W)`` mm is ``deltaz``'s output."""
    i = len(views) // 2 if scan_index % 2 else 0
    layers = layers_from_view({
        "depth_init": views.depth_init[i].numpy(),
        "depth_refined": refined[i].numpy(),
        "depth": views.depth[i].numpy(),
        "delta_z": (refined[i] - views.depth_init[i]).numpy(),
    })
    mae_init = depth_metrics(views.depth_init[i], views.depth[i])["mae_mm"]
    mae_ref = depth_metrics(refined[i], views.depth[i])["mae_mm"]
    title = f"{views.scan} view {views.view_ids[i]}: MAE initial {mae_init:.2f} mm -> refined {mae_ref:.2f} mm"
    return _save(render_depth_row(layers, title=title), out_dir, f"{views.scan}_view{views.view_ids[i]:03d}.png")


def histogram_figure(errors: Mapping[str, list[np.ndarray]], order: Sequence[str], out_dir: Path) -> str:
    """Histogram of the signed errors (mm) ``errors[method]`` of the :data:`HISTOGRAM_METHODS` in ``order``."""
    shown = [m for m in order if m in HISTOGRAM_METHODS]
    data = {m: np.concatenate(errors[m]) if errors[m] else np.zeros(0) for m in shown}
    fig = render_error_histogram(data, title="|depth - gt| over pixels with a depth (holes excluded)")
    return _save(fig, out_dir, "error_histogram.png")


def sparsification_figure(spars: Sparsification, split: str, out_dir: Path) -> str:
    """Sparsification curve of ``deltaz``'s confidence (``figures/sparsification.png``)."""
    fig = render_sparsification({"deltaz": spars}, title=f"Sparsification of deltaz's confidence ({split})")
    return _save(fig, out_dir, "sparsification.png")
