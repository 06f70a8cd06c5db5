"""The reprojection viewer: a reference pixel, its epipolar segment and its depths reprojected into a source view."""

from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from deltaz.core.errors import ConfigError, DataError
from deltaz.course.widgets.sources import Views, ViewSource
from deltaz.course.widgets.viewer import Viewer, fit_pixel_sliders, pixel_sliders, readout_html
from deltaz.viz import (
    DEFAULT_DEPTH_SPAN_MM,
    epipolar_segment,
    layers_from_view,
    render_epipolar,
    reproject_pixel,
    to_numpy,
    value_at,
)

__all__ = ["reprojection_viewer"]


def reprojection_viewer(
    views: Views,
    scans: Sequence[str] | None = None,
    view_ids: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
    depth_span: tuple[float, float] | None = None,
    pixel: tuple[int, int] | None = None,
    background: str = "image",
) -> Viewer:
    """Pick a reference pixel; see its epipolar segment and its initial/refined/GT depths in a source view.

    Args:
        views: as for :func:`~deltaz.course.widgets.depth_viewer` (view dicts, a loader, or a
            :class:`~deltaz.core.batch.MultiViewBatch`); each view needs ``intrinsics (3, 3)``,
            ``extrinsics (3, 4)`` (world-to-camera) and a depth (``depth``/``depth_init``/``depth_refined``,
            mm); ``image`` is used as background when present.
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
    source = ViewSource(views, scans, view_ids)
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
    controls["u"], controls["v"] = pixel_sliders(H, W, pixel)
    controls["background"] = widgets.ToggleButtons(options=["image", "depth"], value=background, description="show")
    return _ReprojectionBrowser(source, controls, depth_span).viewer


class _ReprojectionBrowser:
    """The callbacks of :func:`reprojection_viewer`: draw, and follow scan and reference changes."""

    def __init__(self, source: ViewSource, controls: dict[str, widgets.Widget], depth_span):
        self.source, self.controls, self.depth_span = source, controls, depth_span
        self.viewer = viewer = Viewer(controls, self.draw)
        controls["scan"].observe(self.on_scan, names="value")
        controls["ref"].observe(lambda change: None if viewer._held else self.on_ref(change), names="value")
        viewer.observe_controls(["src", "u", "v", "background"])
        viewer.refresh()

    def draw(self) -> tuple[Figure, dict, str]:
        c = self.controls
        scan, ref_id, src_id = c["scan"].value, c["ref"].value, c["src"].value
        ref, src = self.source.get(scan, ref_id), self.source.get(scan, src_id)
        u, v = c["u"].value, c["v"].value
        maps = layers_from_view(ref)
        at = value_at({k: maps[k] for k in ("initial", "refined", "gt") if k in maps}, (u, v))
        depths = {name: at.get(name) for name in ("initial", "refined", "gt")}
        span = _depth_span(ref, self.depth_span)
        cams = K_ref, E_ref, K_src, E_src = tuple(
            _camera(view, key) for view in (ref, src) for key in ("intrinsics", "extrinsics")
        )
        ref_bg, shown = _background(ref, c["background"].value)
        src_bg, _ = _background(src, shown)
        fig = render_epipolar(
            ref_bg, src_bg, *cams, (u, v),
            depths={k: d for k, d in depths.items() if d is not None}, depth_span=span,
            titles=(f"{scan} ref view {ref_id}", f"{scan} src view {src_id}"),
        )
        segment = epipolar_segment(*cams, (u, v), span)
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
        text = readout_html(f"{scan} ref {ref_id} → src {src_id}, pixel (u, v) = ({u}, {v})", lines)
        text += "<br>" + ", ".join(f"{html.escape(k)} → ({p[0]:.1f}, {p[1]:.1f}) px" for k, p in points.items())
        return fig, state, text

    def on_scan(self, _change: Any) -> None:
        c = self.controls
        with self.viewer.hold():
            ids = self.source.view_ids(c["scan"].value)
            c["ref"].options = ids
            c["src"].options = ids
            c["ref"].value = ids[0]
            c["src"].value = ids[1] if len(ids) > 1 else ids[0]
            self.on_ref(None)
        self.viewer.refresh()

    def on_ref(self, _change: Any) -> None:
        c = self.controls
        with self.viewer.hold():
            H, W = _background(self.source.get(c["scan"].value, c["ref"].value), "depth")[0].shape[:2]
            fit_pixel_sliders(c["u"], c["v"], H, W)
        self.viewer.refresh()


def _camera(view: Mapping[str, Any], key: str) -> np.ndarray:
    """The view's ``intrinsics``/``extrinsics`` as a numpy array."""
    if view.get(key) is None:
        raise DataError(f"view: missing {key!r} (needed to reproject)")
    return to_numpy(view[key], key)


def _depth_span(view: Mapping[str, Any], depth_span) -> tuple[float, float]:
    """``(near, far)`` mm: ``depth_span``, else the view's valid ``depth_range``, else DTU's."""
    if depth_span is not None:
        return tuple(float(d) for d in depth_span)
    if view.get("depth_range") is not None:
        near, far = (float(d) for d in np.ravel(to_numpy(view["depth_range"], "depth_range"))[:2])
        if 0 < near < far:
            return near, far
    return DEFAULT_DEPTH_SPAN_MM


def _background(view: Mapping[str, Any], which: str) -> tuple[np.ndarray, str]:
    """The view's image (``which == "image"`` and present) or its depth (gt, else initial, else refined)."""
    if which == "image" and view.get("image") is not None:
        return to_numpy(view["image"], "image"), "image"
    for key in ("depth", "depth_init", "depth_refined"):
        if view.get(key) is not None:
            return to_numpy(view[key], key), "depth"
    raise DataError("view: needs a depth map ('depth', 'depth_init' or 'depth_refined')")
