"""The depth viewer: browse the layers of views (initial, refined, gt, Δz, error, confidence) by scan and view."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from deltaz.core.errors import ConfigError, DataError
from deltaz.course.widgets.sources import Views, ViewSource
from deltaz.course.widgets.viewer import Viewer, fit_pixel_sliders, pixel_sliders, readout_html, set_range
from deltaz.viz import LAYERS, default_range, layer_kind, layers_from_view, render_depth_panel, to_numpy, value_at

__all__ = ["depth_viewer"]


def depth_viewer(
    views: Views,
    scans: Sequence[str] | None = None,
    view_ids: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
    layers: Sequence[str] = LAYERS,
    layer: str | None = None,
    pixel: tuple[int, int] | None = None,
) -> Viewer:
    """Browse the depth layers of views: scan, view, layer, colour range and a picked pixel's readout.

    Args:
        views: a view dict, a list of them (keys of :func:`deltaz.viz.layers_from_view`, optional ``scan``
            and ``view_id``; see :func:`deltaz.viz.views_from_sample`), a
            :class:`~deltaz.core.batch.MultiViewBatch` (its first sample's views), or a loader
            ``(scan, view_id) -> dict`` together with ``scans`` and ``view_ids`` (a list or a dict
            scan → list). Loaded views are cached (16).
        layers: the layers offered (those a view lacks are skipped); ``layer`` the first one shown.
        pixel: the initial ``(u, v)``; default the image centre.
    Controls (``viewer.controls``, also ``viewer.children`` in this order): ``scan``, ``view_id``
    (Dropdowns), ``layer`` (ToggleButtons), ``range`` (FloatRangeSlider, mm; reset to the layer's default
    when the layer's kind or the view changes: shared depth range, or symmetric for Δz/error), ``u``,
    ``v`` (IntSliders, px). ``viewer.state``: ``scan, view_id, layer, layers (offered), vmin, vmax,
    pixel (u, v), readout {layer: value or None}, shape (H, W)``. The readout lists every layer's value
    at the pixel.
    """
    source = ViewSource(views, scans, view_ids)
    scan0 = source.scans[0]
    vid0 = source.view_ids(scan0)[0]
    maps0 = layers_from_view(source.get(scan0, vid0))
    layers0 = _offered(maps0, layers)
    layer0 = layer if layer is not None else layers0[0]
    if layer0 not in layers0:
        raise ConfigError(f"layer: expected one of {layers0}, got {layer0!r}")
    H, W = np.shape(maps0[layer0])
    controls = {
        "scan": widgets.Dropdown(options=source.scans, value=scan0, description="scan"),
        "view_id": widgets.Dropdown(options=source.view_ids(scan0), value=vid0, description="view"),
        "layer": widgets.ToggleButtons(options=layers0, value=layer0, description="layer"),
        "range": widgets.FloatRangeSlider(
            value=(0.0, 1.0), min=0.0, max=1.0, description="range", readout_format=".1f", continuous_update=False
        ),
    }
    controls["u"], controls["v"] = pixel_sliders(H, W, pixel)
    return _DepthBrowser(source, controls, layers).viewer


class _DepthBrowser:
    """The callbacks of :func:`depth_viewer`: load a view's layers, reset the range, draw."""

    def __init__(self, source: ViewSource, controls: dict[str, widgets.Widget], layers: Sequence[str]):
        self.source, self.controls, self.layers = source, controls, layers
        self.maps: dict[str, np.ndarray] = {}
        self.kind: str | None = None
        self.viewer = viewer = Viewer(controls, self.draw)
        with viewer.hold():
            self.load()
            self.reset_range()
        controls["scan"].observe(self.on_view, names="value")
        controls["view_id"].observe(lambda change: None if viewer._held else self.on_view(change), names="value")
        controls["layer"].observe(self.on_layer, names="value")
        viewer.observe_controls(["range", "u", "v"])
        viewer.refresh()

    def load(self) -> dict[str, np.ndarray]:
        c = self.controls
        view = self.source.get(c["scan"].value, c["view_id"].value)
        maps = {name: arr for name, arr in layers_from_view(view).items() if name in self.layers}
        if not maps:
            where = f"view {c['view_id'].value} of {c['scan'].value!r}"
            raise DataError(f"{where}: has none of the layers {list(self.layers)}")
        self.maps = maps
        return maps

    def reset_range(self) -> None:
        name = self.controls["layer"].value
        set_range(self.controls["range"], *_full_range(self.maps, name), default_range(self.maps, name))
        self.kind = layer_kind(name)

    def draw(self) -> tuple[Figure, dict, str]:
        c, maps = self.controls, self.maps
        name = c["layer"].value
        vmin, vmax = c["range"].value
        u, v = c["u"].value, c["v"].value
        scan, vid = c["scan"].value, c["view_id"].value
        fig = render_depth_panel(maps, name, vmin=vmin, vmax=vmax, pixel=(u, v), title=f"{scan} view {vid}: {name}")
        readout = value_at(maps, (u, v))
        state = {
            "scan": scan, "view_id": vid, "layer": name, "layers": list(maps), "vmin": vmin, "vmax": vmax,
            "pixel": (u, v), "readout": readout, "shape": np.shape(maps[name]),
        }
        return fig, state, readout_html(f"{scan} view {vid}, pixel (u, v) = ({u}, {v})", readout)

    def on_view(self, change: Any) -> None:
        c = self.controls
        with self.viewer.hold():
            if change is not None and change["owner"] is c["scan"]:
                ids = self.source.view_ids(c["scan"].value)
                c["view_id"].options = ids
                c["view_id"].value = ids[0]
            maps = self.load()
            offered = _offered(maps, self.layers)
            if list(c["layer"].options) != offered:
                keep = c["layer"].value if c["layer"].value in offered else offered[0]
                c["layer"].options = offered
                c["layer"].value = keep
            H, W = np.shape(next(iter(maps.values())))
            fit_pixel_sliders(c["u"], c["v"], H, W)
            self.reset_range()
        self.viewer.refresh()

    def on_layer(self, _change: Any) -> None:
        if self.viewer._held:
            return
        if layer_kind(self.controls["layer"].value) != self.kind:
            with self.viewer.hold():
                self.reset_range()
        self.viewer.refresh()


def _offered(maps: Mapping[str, Any], layers: Sequence[str]) -> list[str]:
    """The ``layers`` present in ``maps``, in order."""
    offered = [name for name in layers if name in maps]
    if not offered:
        raise DataError(f"view: has none of the layers {list(layers)} (it has {list(maps)})")
    return offered


def _full_range(layers: Mapping[str, Any], layer: str) -> tuple[float, float]:
    """Slider bounds: every valid value of the layer's kind (symmetric around 0 for Δz and error)."""
    kind = layer_kind(layer)
    names = [n for n in layers if layer_kind(n) == kind] if kind == "depth" else [layer]
    values = []
    for n in names:
        arr = to_numpy(layers[n], n)
        data = np.ma.getdata(arr)
        ok = ~np.ma.getmaskarray(arr) & np.isfinite(data)
        if kind == "depth":
            ok &= np.where(np.isfinite(data), data, 0) > 0
        values.append(data[ok])
    pooled = np.concatenate(values) if values else np.empty(0)
    if pooled.size == 0:
        return default_range(layers, layer)
    if kind == "diverging":
        a = float(np.abs(pooled).max()) or 1.0
        return -a, a
    lo, hi = float(pooled.min()), float(pooled.max())
    if kind == "confidence" and lo >= 0 and hi <= 1:
        return 0.0, 1.0
    return lo, hi

