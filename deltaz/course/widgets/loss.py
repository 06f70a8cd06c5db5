"""The loss explorer: per-pixel loss maps of a sample, re-weighted live with one slider per term."""

from __future__ import annotations

import html
from typing import Any, Callable, Mapping

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from deltaz.core.errors import ConfigError, DataError
from deltaz.course.widgets.viewer import Viewer
from deltaz.viz import render_loss_maps, to_numpy

__all__ = ["loss_explorer"]


def loss_explorer(
    sample: Any,
    compute_maps: Callable[[dict[str, float], Any], Mapping[str, Any]],
    weights: Mapping[str, float],
    weight_max: float | Mapping[str, float] | None = None,
) -> Viewer:
    """Per-pixel loss maps of a sample, re-weighted live with one slider per term.

    Args:
        sample: whatever ``compute_maps`` takes (e.g. a data sample with the model's output).
        compute_maps: ``(weights, sample) -> {term: map}`` with **unweighted** per-pixel maps, each
            ``(H, W)`` or ``(V, H, W)`` (one per view); the viewer multiplies by the weights
            (:func:`deltaz.viz.render_loss_maps`). Pixels a term does not count must be holes (NaN or
            masked), not 0: the viewer's numbers average over the other pixels only. With
            :func:`deltaz.course.loss_lesson.contribution_maps` each map's mean over its pixels is the loss
            term, so the numbers are the weighted terms of :func:`deltaz.ops.losses.losses_for_batch`. It
            receives the current weights for terms whose maps depend on them; most implementations ignore
            them. Called on every change.
        weights: term → initial weight (one FloatSlider each, from 0 to ``weight_max``, default
            ``max(1, 10 × weight)``).
    Controls: ``view`` (Dropdown of view indices, ``[0]`` for ``(H, W)`` maps) and ``weight_<term>`` for each
    term. ``viewer.state``: ``view, weights, means {term: weight × the map's mean over its valid (not masked,
    finite) pixels}, total_mean`` (sum of the weighted means: the total loss, for contribution maps).
    """
    if not weights:
        raise ConfigError("weights: expected at least one loss term weight")
    weights = {name: float(w) for name, w in weights.items()}
    maps0 = compute_maps(dict(weights), sample)
    if not maps0:
        raise DataError("compute_maps: returned no loss maps")
    shapes = {name: to_numpy(m, name).shape for name, m in maps0.items()}
    n_views = max(shape[0] if len(shape) == 3 else 1 for shape in shapes.values())
    controls: dict[str, widgets.Widget] = {
        "view": widgets.Dropdown(options=list(range(n_views)), value=0, description="view")
    }
    for name, w in weights.items():
        top = weight_max.get(name) if isinstance(weight_max, Mapping) else weight_max
        top = float(top) if top else max(1.0, 10.0 * w)
        controls[f"weight_{name}"] = widgets.FloatSlider(
            value=w, min=0.0, max=top, step=top / 1000.0, description=name, readout_format=".3g",
            continuous_update=False,
        )

    def draw() -> tuple[Figure, dict, str]:
        current = {name: float(controls[f"weight_{name}"].value) for name in weights}
        view = int(controls["view"].value)
        maps = {}
        for name, m in compute_maps(dict(current), sample).items():
            arr = to_numpy(m, name)
            maps[name] = arr[view] if arr.ndim == 3 else arr
        fig = render_loss_maps(maps, current, title=f"view {view}")
        means = {}
        for name, arr in maps.items():
            data = np.ma.getdata(arr)
            ok = ~np.ma.getmaskarray(arr) & np.isfinite(data)
            means[name] = float(current.get(name, 1.0) * data[ok].mean()) if ok.any() else 0.0
        state = {"view": view, "weights": current, "means": means, "total_mean": float(sum(means.values()))}
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td style='text-align:right'>{m:.4g}</td></tr>" for k, m in means.items()
        )
        caption = f"<b>weight × term (mean over the pixels that count), view {view}</b><table>{rows}</table>"
        return fig, state, f"{caption}total {state['total_mean']:.4g}"

    viewer = Viewer(controls, draw)
    viewer.observe_controls()
    viewer.refresh()
    return viewer
