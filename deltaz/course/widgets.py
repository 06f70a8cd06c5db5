"""Thin ipywidgets viewers over the pure renderers of :mod:`deltaz.viz`.

Each factory returns a :class:`Viewer` — an ``ipywidgets.VBox`` whose children are its controls (in the
order of ``viewer.controls``), then a readout (``ipywidgets.HTML``) and the picture
(``ipywidgets.Image`` holding PNG bytes, so it shows in any browser without a matplotlib extension).

Headless-friendly by design (STYLE.md, "Widgets that run headless"): the viewer draws once when it is
created, redraws on every control change through ``.observe`` (no ``interact_manual``), and exposes what
it last drew, so a notebook cell can drive it and assert::

    viewer = depth_viewer(views)
    viewer.controls["layer"].value = "delta_z"      # or viewer.children[2].value = ...
    assert viewer.state["layer"] == "delta_z" and viewer.last_png

``viewer.state`` is a plain dict (current selection, colour range, pixel readout, …), ``viewer.last_png``
the PNG bytes shown, ``viewer.last_figure`` the :class:`matplotlib.figure.Figure` they came from (not
registered with pyplot, so nothing leaks), ``viewer.refresh()`` redraws.
Used by the course notebooks 01 (data), 02 (cameras and reprojection) and 03 (losses).
"""

from __future__ import annotations

import html
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from deltaz.core.errors import ConfigError, DataError
from deltaz.viz import (
    LAYERS,
    default_range,
    epipolar_segment,
    figure_to_png,
    layer_kind,
    layers_from_view,
    render_depth_panel,
    render_epipolar,
    render_loss_maps,
    reproject_pixel,
    to_numpy,
    value_at,
)

__all__ = ["Viewer", "depth_viewer", "reprojection_viewer", "loss_explorer"]

#: Resolution of the PNGs the viewers show (dots per inch of the matplotlib figure).
VIEWER_DPI = 80


class Viewer(widgets.VBox):
    """A VBox of ``controls`` + readout + image, redrawn by ``draw() -> (Figure, state, readout_html)``.

    Attributes:
        controls: name → control widget, in display order (also ``children[:len(controls)]``).
        readout: the ``ipywidgets.HTML`` under the controls; image: the ``ipywidgets.Image`` (PNG).
        state: what was last drawn (a fresh dict on each draw); last_png: its PNG bytes;
        last_figure: the Figure; draw_count: how many times it has drawn.
    """

    def __init__(self, controls: Mapping[str, widgets.Widget], draw: Callable[[], tuple[Figure, dict, str]], **kwargs):
        self.controls = dict(controls)
        self.readout = widgets.HTML()
        self.image = widgets.Image(format="png")
        super().__init__(children=[*self.controls.values(), self.readout, self.image], **kwargs)
        self._draw = draw
        self._held = 0
        self.state: dict[str, Any] = {}
        self.last_png = b""
        self.last_figure: Figure | None = None
        self.draw_count = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Change several controls without a redraw per change; no redraw happens on exit either."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1

    def refresh(self, _change: Any = None) -> None:
        """Redraw from the controls' current values (the ``.observe`` callback of every control)."""
        if self._held:
            return
        fig, state, readout = self._draw()
        self.last_png = figure_to_png(fig, dpi=VIEWER_DPI)
        self.last_figure = fig
        self.state = state
        self.readout.value = readout
        self.image.value = self.last_png
        self.draw_count += 1

    def observe_controls(self, names: Sequence[str] | None = None) -> None:
        """Redraw when any of these controls' ``value`` changes (all controls by default)."""
        for name in names if names is not None else self.controls:
            self.controls[name].observe(self.refresh, names="value")


# ------------------------------------------------------------------------------------------ view source
class _ViewSource:
    """Views by ``(scan, view_id)`` from a list of view dicts or a loader ``(scan, view_id) -> dict``."""

    def __init__(self, views, scans=None, view_ids=None, cache_size: int = 16):
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        if callable(views):
            if not scans:
                raise ConfigError("scans: required (a non-empty list) when views is a loader (scan, view_id) -> dict")
            if view_ids is None:
                raise ConfigError("view_ids: required when views is a loader: a list, or a dict scan -> list")
            self._load = views
            self.scans = list(scans)
            self._ids = {s: list(view_ids[s] if isinstance(view_ids, Mapping) else view_ids) for s in self.scans}
        else:
            if isinstance(views, Mapping):
                views = [views]
            views = list(views)
            if not views:
                raise ConfigError("views: expected at least one view dict")
            table: dict[tuple[str, int], Mapping] = {}
            for i, view in enumerate(views):
                if not isinstance(view, Mapping):
                    raise ConfigError(f"views[{i}]: expected a dict of arrays, got {type(view).__name__}")
                key = (str(view.get("scan", "scan")), int(view.get("view_id", i)))
                if key in table:
                    raise DataError(f"views[{i}]: duplicate (scan, view_id) = {key}")
                table[key] = view
            self._load = lambda scan, vid: table[(scan, vid)]
            self.scans = list(dict.fromkeys(k[0] for k in table))
            if scans is not None:
                unknown = [s for s in scans if s not in self.scans]
                if unknown:
                    raise ConfigError(f"scans: {unknown} not among the views' scans {self.scans}")
                self.scans = list(scans)
            self._ids = {s: [k[1] for k in table if k[0] == s] for s in self.scans}
        for scan, ids in self._ids.items():
            if not ids:
                raise ConfigError(f"view_ids: scan {scan!r} has no views")

    def view_ids(self, scan: str) -> list[int]:
        return self._ids[scan]

    def get(self, scan: str, view_id: int) -> Mapping[str, Any]:
        key = (scan, view_id)
        if key not in self._cache:
            self._cache[key] = self._load(scan, view_id)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return self._cache[key]


def _set_range(slider: widgets.FloatRangeSlider, lo: float, hi: float, value: tuple[float, float]) -> None:
    """Set a range slider's bounds and value in an order that never makes ``min > max``."""
    if hi <= lo:
        hi = lo + 1.0
    if lo > slider.max:
        slider.max, slider.min = hi, lo
    else:
        slider.min, slider.max = lo, hi
    slider.step = (hi - lo) / 500.0
    slider.value = (max(lo, min(value[0], hi)), max(lo, min(value[1], hi)))


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


def _readout_html(title: str, values: Mapping[str, float | None]) -> str:
    cells = []
    for name, val in values.items():
        unit = "" if layer_kind(name) == "confidence" else " mm"
        text = "no value" if val is None else f"{val:.2f}{unit}"
        cells.append(f"<tr><td>{html.escape(name)}</td><td style='text-align:right'>{text}</td></tr>")
    rows = "".join(cells)
    return f"<b>{html.escape(title)}</b><table>{rows}</table>"


def _pixel_sliders(H: int, W: int, pixel: tuple[int, int] | None) -> tuple[widgets.IntSlider, widgets.IntSlider]:
    u0, v0 = pixel if pixel is not None else (W // 2, H // 2)
    u = widgets.IntSlider(value=int(u0), min=0, max=W - 1, description="u [px]", continuous_update=False)
    v = widgets.IntSlider(value=int(v0), min=0, max=H - 1, description="v [px]", continuous_update=False)
    return u, v


def _fit_pixel_sliders(u: widgets.IntSlider, v: widgets.IntSlider, H: int, W: int) -> None:
    u.max, v.max = W - 1, H - 1  # IntSlider clamps the value into the new bounds


# ------------------------------------------------------------------------------------------ depth viewer
def depth_viewer(
    views: Sequence[Mapping[str, Any]] | Mapping[str, Any] | Callable[[str, int], Mapping[str, Any]],
    scans: Sequence[str] | None = None,
    view_ids: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
    layers: Sequence[str] = LAYERS,
    layer: str | None = None,
    pixel: tuple[int, int] | None = None,
) -> Viewer:
    """Browse the depth layers of views: scan, view, layer, colour range and a picked pixel's readout.

    Args:
        views: a view dict, a list of them (keys of :func:`deltaz.viz.layers_from_view`, optional ``scan``
            and ``view_id``; see :func:`deltaz.viz.views_from_sample`), or a loader
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
    source = _ViewSource(views, scans, view_ids)
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
    controls["u"], controls["v"] = _pixel_sliders(H, W, pixel)
    current: dict[str, Any] = {}

    def load() -> dict[str, np.ndarray]:
        view = source.get(controls["scan"].value, controls["view_id"].value)
        maps = {name: arr for name, arr in layers_from_view(view).items() if name in layers}
        if not maps:
            where = f"view {controls['view_id'].value} of {controls['scan'].value!r}"
            raise DataError(f"{where}: has none of the layers {list(layers)}")
        current["layers"] = maps
        return maps

    def reset_range() -> None:
        maps, name = current["layers"], controls["layer"].value
        _set_range(controls["range"], *_full_range(maps, name), default_range(maps, name))
        current["kind"] = layer_kind(name)

    def draw() -> tuple[Figure, dict, str]:
        maps, name = current["layers"], controls["layer"].value
        vmin, vmax = controls["range"].value
        u, v = controls["u"].value, controls["v"].value
        scan, vid = controls["scan"].value, controls["view_id"].value
        fig = render_depth_panel(maps, name, vmin=vmin, vmax=vmax, pixel=(u, v), title=f"{scan} view {vid}: {name}")
        readout = value_at(maps, (u, v))
        state = {
            "scan": scan, "view_id": vid, "layer": name, "layers": list(maps), "vmin": vmin, "vmax": vmax,
            "pixel": (u, v), "readout": readout, "shape": np.shape(maps[name]),
        }
        return fig, state, _readout_html(f"{scan} view {vid}, pixel (u, v) = ({u}, {v})", readout)

    viewer = Viewer(controls, draw)

    def on_view(change: Any) -> None:
        with viewer.hold():
            if change is not None and change["owner"] is controls["scan"]:
                ids = source.view_ids(controls["scan"].value)
                controls["view_id"].options = ids
                controls["view_id"].value = ids[0]
            maps = load()
            offered = _offered(maps, layers)
            if list(controls["layer"].options) != offered:
                keep = controls["layer"].value if controls["layer"].value in offered else offered[0]
                controls["layer"].options = offered
                controls["layer"].value = keep
            H, W = np.shape(next(iter(maps.values())))
            _fit_pixel_sliders(controls["u"], controls["v"], H, W)
            reset_range()
        viewer.refresh()

    def on_layer(_change: Any) -> None:
        if viewer._held:
            return
        if layer_kind(controls["layer"].value) != current.get("kind"):
            with viewer.hold():
                reset_range()
        viewer.refresh()

    with viewer.hold():
        load()
        reset_range()
    controls["scan"].observe(on_view, names="value")
    controls["view_id"].observe(lambda change: None if viewer._held else on_view(change), names="value")
    controls["layer"].observe(on_layer, names="value")
    viewer.observe_controls(["range", "u", "v"])
    viewer.refresh()
    return viewer


def _offered(maps: Mapping[str, Any], layers: Sequence[str]) -> list[str]:
    offered = [name for name in layers if name in maps]
    if not offered:
        raise DataError(f"view: has none of the layers {list(layers)} (it has {list(maps)})")
    return offered


# ---------------------------------------------------------------------------------- reprojection viewer
def reprojection_viewer(
    views: Sequence[Mapping[str, Any]] | Callable[[str, int], Mapping[str, Any]],
    scans: Sequence[str] | None = None,
    view_ids: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
    depth_span: tuple[float, float] | None = None,
    pixel: tuple[int, int] | None = None,
    background: str = "image",
) -> Viewer:
    """Pick a reference pixel; see its epipolar segment and its initial/refined/GT depths in a source view.

    Args:
        views: as for :func:`depth_viewer`; each view needs ``intrinsics``, ``extrinsics`` and a depth
            (``depth``/``depth_init``/``depth_refined``); ``image`` is used as background when present.
        depth_span: ``(near, far)`` mm of the segment; default the reference view's ``depth_range`` or
            DTU's ``(425, 935)``.
        background: ``"image"`` or ``"depth"`` (the ground-truth, else initial, depth map).
    Controls: ``scan``, ``ref``, ``src`` (Dropdowns of view ids), ``u``, ``v`` (reference pixel),
    ``background`` (ToggleButtons). ``viewer.state``: ``scan, ref, src, pixel, background, depths
    {initial, refined, gt: mm or None}, points {name: (u, v) in the source view}, segment ((u, v) near,
    (u, v) far)`` — the ends of the drawn segment (NaN where behind the source camera).
    """
    if background not in ("image", "depth"):
        raise ConfigError(f"background: expected 'image' or 'depth', got {background!r}")
    source = _ViewSource(views, scans, view_ids)
    scan0 = source.scans[0]
    ids0 = source.view_ids(scan0)
    ref0 = ids0[0]
    src0 = ids0[1] if len(ids0) > 1 else ids0[0]
    H, W = _background(source.get(scan0, ref0), "depth")[0].shape[:2]
    controls = {
        "scan": widgets.Dropdown(options=source.scans, value=scan0, description="scan"),
        "ref": widgets.Dropdown(options=ids0, value=ref0, description="ref view"),
        "src": widgets.Dropdown(options=ids0, value=src0, description="src view"),
    }
    controls["u"], controls["v"] = _pixel_sliders(H, W, pixel)
    controls["background"] = widgets.ToggleButtons(options=["image", "depth"], value=background, description="show")

    def draw() -> tuple[Figure, dict, str]:
        scan, ref_id, src_id = controls["scan"].value, controls["ref"].value, controls["src"].value
        ref, src = source.get(scan, ref_id), source.get(scan, src_id)
        u, v = controls["u"].value, controls["v"].value
        maps = layers_from_view(ref)
        at = value_at({k: maps[k] for k in ("initial", "refined", "gt") if k in maps}, (u, v))
        depths = {name: at.get(name) for name in ("initial", "refined", "gt")}
        span = _depth_span(ref, depth_span)
        K_ref, E_ref, K_src, E_src = (_camera(view, key) for view in (ref, src) for key in ("intrinsics", "extrinsics"))
        ref_bg, shown = _background(ref, controls["background"].value)
        src_bg, _ = _background(src, shown)
        fig = render_epipolar(
            ref_bg, src_bg, K_ref, E_ref, K_src, E_src, (u, v),
            depths={k: d for k, d in depths.items() if d is not None}, depth_span=span,
            titles=(f"{scan} ref view {ref_id}", f"{scan} src view {src_id}"),
        )
        segment = epipolar_segment(K_ref, E_ref, K_src, E_src, (u, v), span)
        points = {
            k: tuple(float(x) for x in reproject_pixel(K_ref, E_ref, K_src, E_src, (u, v), d)[0])
            for k, d in depths.items()
            if d is not None
        }
        state = {
            "scan": scan, "ref": ref_id, "src": src_id, "pixel": (u, v), "background": shown,
            "depths": depths, "points": points, "depth_span": span,
            "segment": (tuple(float(x) for x in segment[0]), tuple(float(x) for x in segment[-1])),
        }
        lines = {f"{k} depth": d for k, d in depths.items()}
        text = _readout_html(f"{scan} ref {ref_id} → src {src_id}, pixel (u, v) = ({u}, {v})", lines)
        text += "<br>" + ", ".join(f"{html.escape(k)} → ({p[0]:.1f}, {p[1]:.1f}) px" for k, p in points.items())
        return fig, state, text

    viewer = Viewer(controls, draw)

    def on_scan(_change: Any) -> None:
        with viewer.hold():
            ids = source.view_ids(controls["scan"].value)
            controls["ref"].options = ids
            controls["src"].options = ids
            controls["ref"].value = ids[0]
            controls["src"].value = ids[1] if len(ids) > 1 else ids[0]
            on_ref(None)
        viewer.refresh()

    def on_ref(_change: Any) -> None:
        with viewer.hold():
            H, W = _background(source.get(controls["scan"].value, controls["ref"].value), "depth")[0].shape[:2]
            _fit_pixel_sliders(controls["u"], controls["v"], H, W)
        viewer.refresh()

    controls["scan"].observe(on_scan, names="value")
    controls["ref"].observe(lambda change: None if viewer._held else on_ref(change), names="value")
    viewer.observe_controls(["src", "u", "v", "background"])
    viewer.refresh()
    return viewer


def _camera(view: Mapping[str, Any], key: str) -> np.ndarray:
    if view.get(key) is None:
        raise DataError(f"view: missing {key!r} (needed to reproject)")
    return to_numpy(view[key], key)


def _depth_span(view: Mapping[str, Any], depth_span) -> tuple[float, float]:
    if depth_span is not None:
        return tuple(float(d) for d in depth_span)
    if view.get("depth_range") is not None:
        near, far = (float(d) for d in np.ravel(to_numpy(view["depth_range"], "depth_range"))[:2])
        if 0 < near < far:
            return near, far
    return 425.0, 935.0


def _background(view: Mapping[str, Any], which: str) -> tuple[np.ndarray, str]:
    """The view's image (``which == "image"`` and present) or its depth (gt, else initial, else refined)."""
    if which == "image" and view.get("image") is not None:
        return to_numpy(view["image"], "image"), "image"
    for key in ("depth", "depth_init", "depth_refined"):
        if view.get(key) is not None:
            return to_numpy(view[key], key), "depth"
    raise DataError("view: needs a depth map ('depth', 'depth_init' or 'depth_refined')")


# ------------------------------------------------------------------------------------------ loss explorer
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
            (:func:`deltaz.viz.render_loss_maps`). It receives the current weights for terms whose maps
            depend on them; most implementations ignore them. Called on every change.
        weights: term → initial weight (one FloatSlider each, from 0 to ``weight_max``, default
            ``max(1, 10 × weight)``).
    Controls: ``view`` (Dropdown of view indices, ``[0]`` for ``(H, W)`` maps) and ``weight_<term>`` for each
    term. ``viewer.state``: ``view, weights, means {term: weighted mean over valid pixels}, total_mean``
    (sum of the weighted means).
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
        return fig, state, f"<b>weighted means, view {view}</b><table>{rows}</table>total {state['total_mean']:.4g}"

    viewer = Viewer(controls, draw)
    viewer.observe_controls()
    viewer.refresh()
    return viewer
