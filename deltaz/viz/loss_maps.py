"""The loss terms of a training step as per-pixel maps: one panel per weighted term, and their total."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from matplotlib.figure import Figure

from deltaz.core.errors import ConfigError
from deltaz.viz.figures import colormap, new_figure
from deltaz.viz.layers import as_map, masked, symmetric_range

__all__ = ["render_loss_maps"]


def render_loss_maps(
    maps: Mapping[str, Any],
    weights: Mapping[str, float] | None = None,
    show_total: bool = True,
    title: str | None = None,
    panel_size: tuple[float, float] = (3.4, 2.9),
) -> Figure:
    """One panel per loss term showing its **weighted** per-pixel map ``weight · map`` with a colour bar.

    Args:
        maps: term name → unweighted per-pixel map ``(H, W)`` (maps may differ in shape, e.g. gradient
            terms ``(H, W−1)``); masked or non-finite pixels are drawn as holes.
        weights: term name → weight; a term without a weight gets 1.
        show_total: add a ``total`` panel (the sum of the weighted maps) when every map has one shape.
    Non-negative maps use ``magma`` from 0; maps with negative values a symmetric diverging range. Each
    panel's title gives the weight and the weighted mean over valid pixels.
    """
    if not maps:
        raise ConfigError("maps: expected at least one loss term")
    weights = dict(weights or {})
    weighted = {}
    for name, m in maps.items():
        arr = masked(as_map(m, name), "diverging")
        weighted[name] = arr * float(weights.get(name, 1.0))
    shapes = {a.shape for a in weighted.values()}
    if show_total and len(weighted) > 1 and len(shapes) == 1:
        total = sum(np.ma.filled(a, 0.0) for a in weighted.values())
        all_masked = np.logical_and.reduce([np.ma.getmaskarray(a) for a in weighted.values()])
        weighted["total"] = np.ma.MaskedArray(total, mask=all_masked)
    fig = new_figure((panel_size[0] * len(weighted), panel_size[1]))
    axes = fig.subplots(1, len(weighted), squeeze=False)[0]
    for ax, (name, arr) in zip(axes, weighted.items()):
        valid = arr.compressed()
        mean = float(valid.mean()) if valid.size else 0.0
        if valid.size and valid.min() < 0:
            lo, hi = symmetric_range(arr)
            cmap = colormap("diverging")
        else:
            lo, hi = 0.0, (float(np.percentile(valid, 99.0)) if valid.size else 1.0)
            hi = hi if hi > 0 else 1.0
            cmap = colormap("confidence")
        im = ax.imshow(arr, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        fig.colorbar(im, ax=ax, shrink=0.85).set_label("weighted loss per pixel")
        is_total = name == "total" and name not in maps
        head = "total (sum)" if is_total else f"{name} × {float(weights.get(name, 1.0)):.3g}"
        ax.set_title(f"{head}\nmean {mean:.4g}")
        ax.set_xlabel("u [px]")
        ax.set_ylabel("v [px]")
    if title:
        fig.suptitle(title)
    return fig

