"""Depth maps as figures: one layer with a colour bar, a row of layers of one view, error histograms (mm)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from deltaz.core.errors import ConfigError
from deltaz.viz.figures import draw_map, new_figure, unit_suffix
from deltaz.viz.layers import (
    LAYER_LABELS,
    as_map,
    default_range,
    depth_range,
    layer_kind,
    masked,
    symmetric_range,
    to_numpy,
)

__all__ = ["render_depth_panel", "render_depth_row", "render_error_histogram"]


def render_depth_panel(
    layers: Mapping[str, Any],
    layer: str,
    vmin: float | None = None,
    vmax: float | None = None,
    pixel: tuple[float, float] | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (5.0, 4.0),
) -> Figure:
    """One layer of a view as an image with a colour bar.

    Args:
        layers: name → ``(H, W)`` map (numpy/torch/masked), e.g. from :func:`layers_from_view`.
        layer: which one to draw. Its *kind* (:func:`layer_kind`) picks the colours: depth-like layers use
            the range shared by all depth-like layers in ``layers`` (:func:`depth_range`); ``delta_z`` and
            ``error`` a symmetric range around 0 (:func:`symmetric_range`). ``vmin``/``vmax`` override it.
        pixel: ``(u, v)`` in pixels (column, row), marked with a red ``+`` (a line labelled ``"pixel"``).
        title: the axes title (default: the layer's description).
    Holes (``<= 0`` for depth layers, masked or non-finite for all) are drawn in :data:`HOLE_COLOR`.
    """
    if layer not in layers:
        raise ConfigError(f"layer: expected one of {sorted(layers)}, got {layer!r}")
    arr = as_map(layers[layer], layer)
    lo, hi = default_range(layers, layer)
    vmin = lo if vmin is None else float(vmin)
    vmax = hi if vmax is None else float(vmax)
    fig = new_figure(figsize)
    ax = fig.add_subplot()
    label = f"{LAYER_LABELS.get(layer, layer)}{unit_suffix(layer)}"
    draw_map(fig, ax, arr, layer_kind(layer), vmin, vmax, label, title or LAYER_LABELS.get(layer, layer), pixel)
    return fig


def render_depth_row(
    layers: Mapping[str, Any],
    names: Sequence[str] | None = None,
    pixel: tuple[float, float] | None = None,
    depth_vmin: float | None = None,
    depth_vmax: float | None = None,
    diverging_max: float | None = None,
    title: str | None = None,
    panel_size: tuple[float, float] = (3.4, 2.9),
) -> Figure:
    """Side-by-side panels for one view: by default initial / refined / gt / Δz / error (those present).

    Depth-like panels share one colour range (``depth_vmin``/``depth_vmax`` or :func:`depth_range`);
    ``delta_z`` and ``error`` share one symmetric range ``±diverging_max`` (default: the larger of their
    :func:`symmetric_range`), so a Δz and an error of the same size look the same. One colour bar per
    panel, ``title`` as the figure's suptitle, the ``pixel`` marked on every panel.
    """
    if names is None:
        names = [n for n in ("initial", "refined", "gt", "delta_z", "error") if n in layers]
    names = list(names)
    missing = [n for n in names if n not in layers]
    if missing or not names:
        raise ConfigError(f"names: expected layers among {sorted(layers)}, got {list(names)}")
    d_lo, d_hi = depth_range(layers, names)
    d_lo = d_lo if depth_vmin is None else float(depth_vmin)
    d_hi = d_hi if depth_vmax is None else float(depth_vmax)
    if diverging_max is None:
        diverging = [symmetric_range(layers[n])[1] for n in names if layer_kind(n) == "diverging"]
        diverging_max = max(diverging) if diverging else 1.0
    fig = new_figure((panel_size[0] * len(names), panel_size[1]))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        kind = layer_kind(name)
        if kind == "depth":
            lo, hi = d_lo, d_hi
        elif kind == "diverging":
            lo, hi = -float(diverging_max), float(diverging_max)
        else:
            lo, hi = default_range(layers, name)
        label = f"{name}{unit_suffix(name)}"
        draw_map(fig, ax, as_map(layers[name], name), kind, lo, hi, label, LAYER_LABELS.get(name, name), pixel)
    if title:
        fig.suptitle(title)
    return fig


def render_error_histogram(
    errors_by_method: Mapping[str, Any],
    bins: int = 50,
    max_mm: float | None = None,
    title: str = "Absolute depth error",
    figsize: tuple[float, float] = (6.0, 4.0),
) -> Figure:
    """Histograms (step lines) of ``|error|`` in mm, one per method, on shared bins ``[0, max_mm]``.

    Args:
        errors_by_method: method name → errors of the **valid pixels only** (any shape; signs are dropped,
            masked and non-finite entries ignored; a 0 counts as a perfect pixel, not as a hole).
        bins: number of bins; ``max_mm``: the last bin edge (default: 99th percentile of all errors).
            Larger errors are counted in the last bin (the axis label says so).
    The legend gives each method's median and pixel count.
    """
    if not errors_by_method:
        raise ConfigError("errors_by_method: expected at least one method")
    if bins < 1:
        raise ConfigError(f"bins: expected a positive number of bins, got {bins}")
    errors = {n: np.abs(masked(to_numpy(e, n), "diverging").compressed()) for n, e in errors_by_method.items()}
    pooled = np.concatenate(list(errors.values()))
    if max_mm is None:
        max_mm = float(np.percentile(pooled, 99.0)) if pooled.size else 1.0
    max_mm = float(max_mm) if max_mm > 0 else 1.0
    edges = np.linspace(0.0, max_mm, bins + 1)
    fig = new_figure(figsize)
    ax = fig.add_subplot()
    for name, err in errors.items():
        median = float(np.median(err)) if err.size else float("nan")
        label = f"{name} (median {median:.2f} mm, n={err.size})"
        ax.hist(np.minimum(err, max_mm), bins=edges, histtype="step", linewidth=1.5, label=label)
    ax.set_xlim(0.0, max_mm)
    ax.set_title(title)
    ax.set_xlabel(f"|depth − gt| [mm] (last bin: ≥ {max_mm:.3g} mm)")
    ax.set_ylabel("pixels")
    ax.legend()
    return fig

