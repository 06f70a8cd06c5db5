"""Pure rendering functions: arrays in, a :class:`matplotlib.figure.Figure` out (no widgets, no pyplot state).

Every ``render_…`` function builds its figure with ``matplotlib.figure.Figure`` directly, so it never
registers with ``pyplot`` (nothing to close, no figure leaks, any backend, headless-safe) and it can be
saved (:func:`figure_to_png`, ``fig.savefig``) or shown in a notebook (``display(fig)``). The thin
interactive viewers in :mod:`deltaz.course.widgets` call these functions.

Data vocabulary (DESIGN.md §4), millimetres, ``0`` = no value:

* a *view* is a dict with ``depth_init``, ``depth_refined``, ``depth`` (ground truth), ``delta_z``,
  optional ``confidence``, ``image (3, H, W)`` in [0, 1], ``intrinsics (3, 3)``, ``extrinsics (3, 4)``
  (world-to-camera); numpy arrays or torch tensors;
* its *layers* (:func:`layers_from_view`) are named ``initial``, ``refined``, ``gt``, ``delta_z``,
  ``error`` and ``confidence``. ``error`` is **signed**, ``depth_refined − depth`` in mm (positive = too
  far), defined where both are > 0, so the colour shows the direction of a bias; histograms use ``|error|``.

Colour conventions: depth-like layers share one colour range (``viridis``); ``delta_z`` and ``error``
use a symmetric diverging range around 0 (``RdBu_r``); pixels without a value are masked and drawn in
:data:`HOLE_COLOR`. Used by the course notebooks 01 (data), 02 (cameras and reprojection) and the report.
"""

from __future__ import annotations

import io
from typing import Any, Mapping, Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from deltaz.core.errors import ConfigError, DataError
from deltaz.core.geometry import Z_EPS, backproject_depth, camera_center, camera_to_world, project_points, world_to_camera
from deltaz.ops.confidence import Sparsification

__all__ = [
    "render_sparsification",
    "HOLE_COLOR",
    "DEPTH_LAYERS",
    "DIVERGING_LAYERS",
    "LAYERS",
    "to_numpy",
    "layer_kind",
    "layers_from_view",
    "views_from_sample",
    "depth_range",
    "symmetric_range",
    "default_range",
    "value_at",
    "figure_to_png",
    "NotebookFigure",
    "render_depth_panel",
    "render_depth_row",
    "render_error_histogram",
    "epipolar_segment",
    "reproject_pixel",
    "render_epipolar",
    "render_loss_maps",
    "render_camera_rig",
]

#: Colour of pixels without a value (holes, masked pixels) in every map.
HOLE_COLOR = "#b0b0b0"
#: Layers drawn with the shared depth colour range.
DEPTH_LAYERS = ("initial", "refined", "gt")
#: Layers drawn with a symmetric diverging colour range around 0.
DIVERGING_LAYERS = ("delta_z", "error")
#: Every layer :func:`layers_from_view` can produce, in display order.
LAYERS = ("initial", "refined", "gt", "delta_z", "error", "confidence")

_VIEW_KEYS = {
    "initial": "depth_init",
    "refined": "depth_refined",
    "gt": "depth",
    "delta_z": "delta_z",
    "confidence": "confidence",
}
_LABELS = {
    "initial": "initial depth",
    "refined": "refined depth",
    "gt": "ground-truth depth",
    "delta_z": "Δz = refined − initial",
    "error": "error = refined − gt",
    "confidence": "confidence",
}
_CMAPS = {"depth": "viridis", "diverging": "RdBu_r", "confidence": "magma"}
_DEFAULT_DEPTH_SPAN_MM = (425.0, 935.0)


# ----------------------------------------------------------------------------------------- data helpers
def to_numpy(x: Any, name: str = "array") -> np.ndarray:
    """A numpy array (float64 for floats) from a numpy array, masked array, torch tensor or number.

    Torch tensors are detached and moved to the CPU. Masked arrays keep their mask.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ma.MaskedArray):
        return x.astype(np.float64) if x.dtype.kind in "fiub" else x
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise DataError(f"{name}: expected an array or tensor, got {type(x).__name__}") from exc
    if arr.dtype.kind in "fiub":
        arr = arr.astype(np.float64)
    return arr


def _as_map(x: Any, name: str) -> np.ndarray:
    """An ``(H, W)`` float array (masked arrays keep their mask); squeezes leading singleton axes."""
    arr = to_numpy(x, name)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise DataError(f"{name}: expected an (H, W) map, got shape {tuple(arr.shape)}")
    return arr


def layer_kind(name: str) -> str:
    """``"depth"`` (shared range), ``"diverging"`` (symmetric around 0) or ``"confidence"`` for a layer name."""
    if name in DIVERGING_LAYERS or name.startswith(("delta", "error")):
        return "diverging"
    if name.startswith("confidence"):
        return "confidence"
    return "depth"


def _masked(arr: np.ndarray, kind: str) -> np.ma.MaskedArray:
    """Mask pixels without a value: non-finite everywhere, and ``<= 0`` for depth-like layers."""
    data = np.ma.getdata(arr)
    mask = np.ma.getmaskarray(arr) | ~np.isfinite(data)
    if kind == "depth":
        mask = mask | ~(np.where(np.isfinite(data), data, 0) > 0)
    return np.ma.MaskedArray(np.where(mask, 0.0, data), mask=mask)


def layers_from_view(view: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The display layers of one view dict (DESIGN.md §4 keys) as ``(H, W)`` float arrays, mm.

    ``initial`` ← ``depth_init``, ``refined`` ← ``depth_refined``, ``gt`` ← ``depth``, ``delta_z``,
    ``confidence``; a missing ``depth_refined`` is ``depth_init + delta_z`` and a missing ``delta_z`` is
    ``depth_refined − depth_init`` (where ``depth_init > 0``). ``error = depth_refined − depth``
    (signed, mm). ``delta_z`` and ``error`` come back as masked arrays (no value where the depths they
    are made of have none); depth layers keep their 0 holes (they are masked when drawn).
    """
    out: dict[str, np.ndarray] = {}
    for layer, key in _VIEW_KEYS.items():
        if view.get(key) is not None:
            out[layer] = _as_map(view[key], key)
    init = out.get("initial")
    if "refined" not in out and init is not None and "delta_z" in out:
        dz = np.ma.getdata(out["delta_z"])
        out["refined"] = np.where(init > 0, init + dz, 0.0)
    if "delta_z" not in out and init is not None and "refined" in out:
        out["delta_z"] = out["refined"] - init
    if "delta_z" in out and init is not None:
        dz = out["delta_z"]
        out["delta_z"] = np.ma.MaskedArray(np.ma.getdata(dz), mask=np.ma.getmaskarray(dz) | ~(init > 0))
    if "refined" in out and "gt" in out:
        ref, gt = out["refined"], out["gt"]
        out["error"] = np.ma.MaskedArray(ref - gt, mask=~((ref > 0) & (gt > 0)))
    shapes = {name: np.shape(a) for name, a in out.items()}
    if len(set(shapes.values())) > 1:
        raise DataError(f"view: layers must share one (H, W) shape, got {shapes}")
    return {name: out[name] for name in LAYERS if name in out}


def views_from_sample(sample: Mapping[str, Any], index: int = 0, **per_view: Any) -> list[dict[str, Any]]:
    """Split a data sample (``(V, …)`` arrays, or a batch ``(B, V, …)`` → item ``index``) into view dicts.

    Each dict holds that view's ``depth``, ``depth_init``, ``mask``, ``intrinsics``, ``extrinsics``,
    ``image`` (when present), ``view_id``, ``scan`` (from ``scene``) and ``depth_range``; extra
    per-view maps such as ``depth_refined=…`` or ``delta_z=…``, ``(V, H, W)`` (or ``(B, V, H, W)`` for a
    batch), are split the same way.
    """
    depth = to_numpy(sample["depth"], "sample['depth']")
    batched = depth.ndim == 4
    if depth.ndim not in (3, 4):
        raise DataError(f"sample['depth']: expected (V, H, W) or (B, V, H, W), got shape {depth.shape}")

    def pick(x: Any, name: str) -> np.ndarray:
        arr = to_numpy(x, name)
        return arr[index] if batched else arr

    scene = sample.get("scene", "scan")
    if isinstance(scene, (list, tuple)):
        scene = scene[index] if batched else scene[0]
    keys = ("depth", "depth_init", "mask", "intrinsics", "extrinsics", "image", "confidence")
    arrays = {key: pick(sample[key], key) for key in keys if sample.get(key) is not None}
    for key, value in per_view.items():
        if value is not None:
            arr = to_numpy(value, key)
            arrays[key] = arr[index] if batched and arr.ndim == depth.ndim else arr
    n_views = arrays["depth"].shape[0]
    view_ids = pick(sample["view_ids"], "view_ids") if "view_ids" in sample else np.arange(n_views)
    depth_range = pick(sample["depth_range"], "depth_range") if "depth_range" in sample else None
    for key, arr in arrays.items():
        if arr.ndim == 0 or arr.shape[0] != n_views:
            raise DataError(f"{key}: expected {n_views} views along the first axis, got shape {arr.shape}")
    views = []
    for i in range(n_views):
        view = {key: arr[i] for key, arr in arrays.items()}
        view["view_id"] = int(view_ids[i])
        view["scan"] = str(scene)
        if depth_range is not None:
            view["depth_range"] = tuple(float(d) for d in np.ravel(depth_range)[:2])
        views.append(view)
    return views


def depth_range(
    layers: Mapping[str, Any], names: Sequence[str] | None = None, percentiles=(1.0, 99.0)
) -> tuple[float, float]:
    """One colour range (mm) shared by the depth-like layers: ``percentiles`` of their valid values pooled.

    ``names`` defaults to every layer of kind ``"depth"``; ``(0, 1)`` when nothing is valid.
    """
    names = [n for n in (names or layers) if n in layers and layer_kind(n) == "depth"]
    values = [_masked(_as_map(layers[n], n), "depth").compressed() for n in names]
    pooled = np.concatenate(values) if values else np.empty(0)
    if pooled.size == 0:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.percentile(pooled, percentiles))
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    return lo, hi


def symmetric_range(values: Any, percentile: float = 99.0) -> tuple[float, float]:
    """``(−a, a)``, ``a`` = the ``percentile`` of ``|values|`` over valid (unmasked, finite) pixels, 1 if that is ~0."""
    arr = _masked(to_numpy(values, "values"), "diverging").compressed()
    a = float(np.percentile(np.abs(arr), percentile)) if arr.size else 1.0
    a = a if a > 1e-6 else 1.0
    return -a, a


def default_range(layers: Mapping[str, Any], layer: str) -> tuple[float, float]:
    """The default colour range of ``layer``: shared depth range, symmetric range, or confidence's data range."""
    kind = layer_kind(layer)
    if kind == "depth":
        return depth_range(layers)
    if kind == "diverging":
        return symmetric_range(layers[layer])
    arr = _masked(_as_map(layers[layer], layer), kind).compressed()
    if arr.size == 0:
        return 0.0, 1.0
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= 0 and hi <= 1:
        return 0.0, 1.0
    return (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)


def value_at(layers: Mapping[str, Any], pixel: tuple[int, int]) -> dict[str, float | None]:
    """Each layer's value at integer pixel ``(u, v)`` (column, row); None where the layer has no value there."""
    u, v = (int(round(p)) for p in pixel)
    out: dict[str, float | None] = {}
    for name, arr in layers.items():
        m = _masked(_as_map(arr, name), layer_kind(name))
        if not (0 <= v < m.shape[0] and 0 <= u < m.shape[1]):
            raise ConfigError(f"pixel: (u, v) = ({u}, {v}) is outside the {m.shape[1]}×{m.shape[0]} map")
        out[name] = None if m.mask[v, u] else float(m.data[v, u])
    return out


def figure_to_png(fig: Figure, dpi: float | None = None) -> bytes:
    """The figure as PNG bytes (Agg), e.g. for ``ipywidgets.Image(value=…)``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class NotebookFigure(Figure):
    """A plain :class:`~matplotlib.figure.Figure` that Jupyter also shows when pyplot was never set up.

    The render functions do not use pyplot, and without ``%matplotlib inline`` IPython only knows a
    figure's text repr; ``_repr_png_`` makes a figure left at the end of a cell show as a picture.
    (When the inline backend is active, its own Figure formatter is used instead.)
    """

    def _repr_png_(self) -> bytes:
        return figure_to_png(self)


def _new_figure(figsize: tuple[float, float]) -> NotebookFigure:
    return NotebookFigure(figsize=figsize, layout="constrained")


# ------------------------------------------------------------------------------------------ depth maps
def _cmap(kind: str):
    return matplotlib.colormaps[_CMAPS[kind]].with_extremes(bad=HOLE_COLOR)


def _unit(name: str) -> str:
    return "" if layer_kind(name) == "confidence" else " [mm]"


def _draw_map(fig: Figure, ax, arr, kind: str, vmin: float, vmax: float, label: str, title: str, pixel=None):
    """imshow of a masked map with a colour bar; pixel centres at integer coordinates (DESIGN.md §1)."""
    data = _masked(arr, kind)
    im = ax.imshow(data, cmap=_cmap(kind), vmin=vmin, vmax=vmax, interpolation="nearest")
    bar = fig.colorbar(im, ax=ax, shrink=0.85)
    bar.set_label(label)
    ax.set_title(title)
    ax.set_xlabel("u [px]")
    ax.set_ylabel("v [px]")
    if pixel is not None:
        ax.plot([pixel[0]], [pixel[1]], "+", markersize=12, markeredgewidth=2, color="red", label="pixel")
    return im


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
    arr = _as_map(layers[layer], layer)
    lo, hi = default_range(layers, layer)
    vmin = lo if vmin is None else float(vmin)
    vmax = hi if vmax is None else float(vmax)
    fig = _new_figure(figsize)
    ax = fig.add_subplot()
    label = f"{_LABELS.get(layer, layer)}{_unit(layer)}"
    _draw_map(fig, ax, arr, layer_kind(layer), vmin, vmax, label, title or _LABELS.get(layer, layer), pixel)
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
    fig = _new_figure((panel_size[0] * len(names), panel_size[1]))
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        kind = layer_kind(name)
        if kind == "depth":
            lo, hi = d_lo, d_hi
        elif kind == "diverging":
            lo, hi = -float(diverging_max), float(diverging_max)
        else:
            lo, hi = default_range(layers, name)
        label = f"{name}{_unit(name)}"
        _draw_map(fig, ax, _as_map(layers[name], name), kind, lo, hi, label, _LABELS.get(name, name), pixel)
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
    errors = {n: np.abs(_masked(to_numpy(e, n), "diverging").compressed()) for n, e in errors_by_method.items()}
    pooled = np.concatenate(list(errors.values()))
    if max_mm is None:
        max_mm = float(np.percentile(pooled, 99.0)) if pooled.size else 1.0
    max_mm = float(max_mm) if max_mm > 0 else 1.0
    edges = np.linspace(0.0, max_mm, bins + 1)
    fig = _new_figure(figsize)
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


# ------------------------------------------------------------------------------------------- epipolar
def _t(x: Any, name: str) -> torch.Tensor:
    return torch.as_tensor(to_numpy(x, name), dtype=torch.float64)


def _pixel_to_src(K_ref, E_ref, K_src, E_src, pixel, depths_mm) -> tuple[np.ndarray, np.ndarray]:
    """Points at z-depths ``depths_mm`` on the ray of reference pixel ``(u, v)``, projected into the source.

    Composes :mod:`deltaz.core.geometry`: the ray of ``(u, v)`` is pixel ``(0, 0)`` of ``K`` with its principal
    point shifted by ``(u, v)`` (the cropping rule of DESIGN.md §1), so ``backproject_depth`` of a 1×1 map
    gives ``X_cam = depth · K⁻¹[u, v, 1]ᵀ`` for sub-pixel ``(u, v)`` too; then camera_to_world,
    world_to_camera and project_points. Returns ``uv (N, 2)`` (NaN where ``z_src <= Z_EPS``) and ``z_src (N,)``.
    """
    K_ref_t, K_src_t = _t(K_ref, "K_ref"), _t(K_src, "K_src")
    E_ref_t, E_src_t = _t(E_ref, "E_ref"), _t(E_src, "E_src")
    for name, K in (("K_ref", K_ref_t), ("K_src", K_src_t)):
        if K.shape != (3, 3):
            raise DataError(f"{name}: expected a (3, 3) intrinsics matrix, got shape {tuple(K.shape)}")
    for name, E in (("E_ref", E_ref_t), ("E_src", E_src_t)):
        if E.shape not in ((3, 4), (4, 4)):
            raise DataError(f"{name}: expected (3, 4) or (4, 4) world-to-camera extrinsics, got shape {tuple(E.shape)}")
    u, v = (float(p) for p in pixel)
    K_shift = K_ref_t.clone()
    K_shift[0, 2] -= u
    K_shift[1, 2] -= v
    depths = torch.as_tensor(np.ravel(to_numpy(depths_mm, "depths_mm")), dtype=torch.float64)
    points_ref = backproject_depth(depths.view(-1, 1, 1), K_shift)[:, 0, 0]  # (N, 3)
    points_src = world_to_camera(camera_to_world(points_ref, E_ref_t), E_src_t)
    uv, z = project_points(points_src, K_src_t)
    uv = uv.numpy().copy()
    z = z.numpy()
    uv[~(z > Z_EPS)] = np.nan
    return uv, z


def epipolar_segment(
    K_ref, E_ref, K_src, E_src, pixel: tuple[float, float], depth_span=_DEFAULT_DEPTH_SPAN_MM, n: int = 64
) -> np.ndarray:
    """The epipolar segment of reference pixel ``pixel = (u, v)`` in the source view, ``(n, 2)`` source ``uv``.

    Row ``i`` is the projection of the ray point at z-depth ``depth_span[0] + i/(n−1)·(depth_span[1] −
    depth_span[0])`` mm (reference camera), so the rows run from the near to the far end. Rows whose point
    is behind the source camera are NaN (matplotlib leaves them out of a line). ``K``/``E`` as in
    :func:`deltaz.core.geometry.reproject` (world-to-camera), numpy or torch, unbatched.
    """
    if n < 2:
        raise ConfigError(f"n: expected at least 2 points on the segment, got {n}")
    d0, d1 = (float(d) for d in depth_span)
    if not 0 < d0 < d1:
        raise ConfigError(f"depth_span: expected 0 < near < far in mm, got {tuple(depth_span)}")
    uv, _ = _pixel_to_src(K_ref, E_ref, K_src, E_src, pixel, np.linspace(d0, d1, n))
    return uv


def reproject_pixel(
    K_ref, E_ref, K_src, E_src, pixel: tuple[float, float], depth_mm: float
) -> tuple[np.ndarray, float]:
    """Where reference pixel ``(u, v)`` at z-depth ``depth_mm`` lands in the source view.

    Returns ``uv_src (2,)`` (NaN when the point is behind the source camera) and its z-depth in the
    source camera (mm). Agrees with :func:`deltaz.core.geometry.reproject` at integer pixels.
    """
    uv, z = _pixel_to_src(K_ref, E_ref, K_src, E_src, pixel, [float(depth_mm)])
    return uv[0], float(z[0])


def _draw_background(fig: Figure, ax, arr: np.ndarray, name: str, title: str) -> None:
    """An image ``(3, H, W)``/``(H, W, 3)`` in [0, 1], or a depth map ``(H, W)`` with a colour bar."""
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[-1] == 3:
        ax.imshow(np.clip(np.ma.getdata(arr), 0.0, 1.0), interpolation="nearest")
        ax.set_title(title)
        ax.set_xlabel("u [px]")
        ax.set_ylabel("v [px]")
    elif arr.ndim == 2:
        lo, hi = depth_range({"depth": arr})
        _draw_map(fig, ax, arr, "depth", lo, hi, "depth [mm]", title)
    else:
        raise DataError(f"{name}: expected an image (3, H, W) / (H, W, 3) or a depth map (H, W), got shape {arr.shape}")


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_COLORS = ("tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:cyan", "tab:olive")


def render_epipolar(
    ref: Any,
    src: Any,
    K_ref,
    E_ref,
    K_src,
    E_src,
    pixel: tuple[float, float],
    depths: Mapping[str, float] | None = None,
    depth_span=_DEFAULT_DEPTH_SPAN_MM,
    n: int = 64,
    titles: tuple[str, str] = ("reference view", "source view"),
    figsize: tuple[float, float] = (11.5, 4.2),
) -> Figure:
    """Left: the reference view with the picked pixel; right: the source view with its epipolar segment.

    Args:
        ref, src: each an image ``(3, H, W)``/``(H, W, 3)`` in [0, 1] or a depth map ``(H, W)`` in mm;
            ``K_ref``/``K_src`` must be valid for these arrays' resolution.
        K_ref, E_ref, K_src, E_src: intrinsics ``(3, 3)`` and world-to-camera extrinsics ``(3, 4)``.
        pixel: ``(u, v)`` in the reference view.
        depths: name → z-depth (mm) of the pixel, e.g. ``{"initial": 612.3, "refined": 605.1, "gt": 604.8}``;
            each is reprojected (:func:`reproject_pixel`) and drawn with its own marker (legend).
            ``None``/0/non-finite depths are skipped.
        depth_span: ``(near, far)`` mm of the drawn segment (:func:`epipolar_segment`), DTU's by default.
    The right axes are limited to the source image; the segment line is labelled ``"epipolar line"``
    and each depth's marker with its name.
    """
    ref_arr, src_arr = to_numpy(ref, "ref"), to_numpy(src, "src")
    fig = _new_figure(figsize)
    ax_ref, ax_src = fig.subplots(1, 2)
    _draw_background(fig, ax_ref, ref_arr, "ref", titles[0])
    u, v = (float(p) for p in pixel)
    ax_ref.plot([u], [v], marker="+", markersize=14, markeredgewidth=2, color="red", linestyle="none", label="pixel")
    _draw_background(fig, ax_src, src_arr, "src", titles[1])
    Hs, Ws = src_arr.shape[:2] if src_arr.ndim == 2 or src_arr.shape[-1] == 3 else src_arr.shape[1:3]
    segment = epipolar_segment(K_ref, E_ref, K_src, E_src, (u, v), depth_span, n)
    d0, d1 = (float(d) for d in depth_span)
    label = f"epipolar line ({d0:.0f}–{d1:.0f} mm)"
    ax_src.plot(segment[:, 0], segment[:, 1], "-", color="yellow", linewidth=1.5, label=label)
    ok = np.isfinite(segment).all(axis=1)
    if ok.any():
        near = segment[np.argmax(ok)]
        ax_src.plot([near[0]], [near[1]], "|", color="yellow", markersize=10, label=f"near end ({d0:.0f} mm)")
    for i, (name, depth) in enumerate((depths or {}).items()):
        if depth is None or not np.isfinite(depth) or depth <= 0:
            continue
        uv, _ = reproject_pixel(K_ref, E_ref, K_src, E_src, (u, v), depth)
        ax_src.plot(
            [uv[0]], [uv[1]], marker=_MARKERS[i % len(_MARKERS)], color=_COLORS[i % len(_COLORS)],
            markerfacecolor="none", markersize=9, markeredgewidth=2, linestyle="none", label=f"{name} ({depth:.1f} mm)",
        )
    ax_src.set_xlim(-0.5, Ws - 0.5)
    ax_src.set_ylim(Hs - 0.5, -0.5)
    ax_src.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")
    fig.suptitle(f"Epipolar geometry of reference pixel (u, v) = ({u:.0f}, {v:.0f}) (red +)")
    return fig


# ------------------------------------------------------------------------------------------ loss maps
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
        arr = _masked(_as_map(m, name), "diverging")
        weighted[name] = arr * float(weights.get(name, 1.0))
    shapes = {a.shape for a in weighted.values()}
    if show_total and len(weighted) > 1 and len(shapes) == 1:
        total = sum(np.ma.filled(a, 0.0) for a in weighted.values())
        all_masked = np.logical_and.reduce([np.ma.getmaskarray(a) for a in weighted.values()])
        weighted["total"] = np.ma.MaskedArray(total, mask=all_masked)
    fig = _new_figure((panel_size[0] * len(weighted), panel_size[1]))
    axes = fig.subplots(1, len(weighted), squeeze=False)[0]
    for ax, (name, arr) in zip(axes, weighted.items()):
        valid = arr.compressed()
        mean = float(valid.mean()) if valid.size else 0.0
        if valid.size and valid.min() < 0:
            lo, hi = symmetric_range(arr)
            cmap = _cmap("diverging")
        else:
            lo, hi = 0.0, (float(np.percentile(valid, 99.0)) if valid.size else 1.0)
            hi = hi if hi > 0 else 1.0
            cmap = _cmap("confidence")
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


# ----------------------------------------------------------------------------------------- camera rig
def render_camera_rig(
    extrinsics: Any,
    points: Any = None,
    highlight: int | Sequence[int] | None = None,
    view_ids: Sequence[int] | None = None,
    axis_length_mm: float | None = None,
    max_points: int = 3000,
    title: str = "Camera rig (world frame)",
    figsize: tuple[float, float] = (6.5, 5.5),
) -> Figure:
    """3D plot of camera centres ``C = −Rᵀt`` and viewing directions (optical axes), world frame, mm.

    Args:
        extrinsics: ``(V, 3, 4)`` or ``(V, 4, 4)`` world-to-camera.
        points: optional ``(N, 3)`` world points (mm), e.g. a back-projected depth map; a fixed, seeded
            subsample of at most ``max_points`` is drawn.
        highlight: index (or indices) into ``extrinsics`` drawn in red, e.g. the reference view.
        view_ids: labels written next to the centres (default ``0…V−1``; omitted above 64 views).
        axis_length_mm: drawn length of each optical axis (default: 15 % of the scene's extent).
    """
    E = _t(extrinsics, "extrinsics")
    if E.dim() != 3 or E.shape[-2:] not in ((3, 4), (4, 4)):
        raise DataError(f"extrinsics: expected (V, 3, 4) or (V, 4, 4), got shape {tuple(E.shape)}")
    centres = camera_center(E).numpy()  # (V, 3)
    V = centres.shape[0]
    pts = None
    if points is not None:
        pts = to_numpy(points, "points")
        if pts.ndim < 2 or pts.shape[-1] != 3:
            raise DataError(f"points: expected (N, 3) world points, got shape {pts.shape}")
        pts = pts.reshape(-1, 3)
        pts = pts[np.isfinite(pts).all(axis=1)]
        if len(pts) > max_points:
            pts = pts[np.random.default_rng(0).choice(len(pts), max_points, replace=False)]
    extent_pts = centres if pts is None or len(pts) == 0 else np.concatenate([centres, pts])
    extent = float(np.ptp(extent_pts, axis=0).max()) if len(extent_pts) > 1 else 0.0
    length = float(axis_length_mm) if axis_length_mm else (0.15 * extent if extent > 0 else 50.0)
    tips = camera_to_world(torch.tensor([0.0, 0.0, length], dtype=torch.float64).expand(V, 3), E).numpy()
    axes_dir = tips - centres
    if highlight is None:
        chosen = np.zeros(V, dtype=bool)
    else:
        idx = np.atleast_1d(np.asarray(highlight, dtype=int))
        if ((idx < 0) | (idx >= V)).any():
            raise ConfigError(f"highlight: expected indices in 0..{V - 1}, got {idx.tolist()}")
        chosen = np.zeros(V, dtype=bool)
        chosen[idx] = True

    from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the 3d projection)

    fig = _new_figure(figsize)
    ax = fig.add_subplot(projection="3d")
    if pts is not None and len(pts):
        ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], s=1, c="0.5", alpha=0.4, label=f"points ({len(pts)})")
    for sel, color, label in ((~chosen, "tab:blue", "cameras"), (chosen, "tab:red", "highlighted")):
        if sel.any():
            c, d = centres[sel], axes_dir[sel]
            ax.scatter(c[:, 0], c[:, 1], c[:, 2], color=color, s=20, label=f"{label} ({int(sel.sum())})")
            ax.quiver(c[:, 0], c[:, 1], c[:, 2], d[:, 0], d[:, 1], d[:, 2], color=color, linewidth=1)
    labels = list(view_ids) if view_ids is not None else list(range(V))
    if V <= 64:
        for c, lab in zip(centres, labels):
            ax.text(c[0], c[1], c[2], str(lab), fontsize=7)
    lo, hi = extent_pts.min(axis=0), extent_pts.max(axis=0)
    mid, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, length)
    ax.set_xlim(mid[0] - half, mid[0] + half)
    ax.set_ylim(mid[1] - half, mid[1] + half)
    ax.set_zlim(mid[2] - half, mid[2] + half)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xlabel("x [mm]")
    ax.set_ylabel("y [mm]")
    ax.set_zlabel("z [mm]")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return fig


def render_sparsification(
    result: Sparsification | dict[str, Sparsification], title: str = "Sparsification", unit: str = "mm"
):
    """A figure of sparsification curves: confidence order, oracle and random, with AUSE in the legend.

    ``result``: one :class:`Sparsification`, or ``{label: Sparsification}`` to compare several (their
    oracles are drawn dashed in the same colour). Returns a Matplotlib ``Figure`` (no pyplot state).
    """
    results = result if isinstance(result, dict) else {"confidence": result}
    fig = NotebookFigure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    first = next(iter(results.values()))
    ax.plot(100 * first.fractions, first.random, color="0.5", linestyle=":", label="random order (flat mean)")
    for i, (label, r) in enumerate(results.items()):
        colour = f"C{i}"
        ax.plot(100 * r.fractions, r.curve, color=colour, label=f"{label} (AUSE {r.ause:.3g} {unit})")
        ax.plot(100 * r.fractions, r.oracle, color=colour, linestyle="--", label=f"{label}: oracle (true error)")
    ax.set_xlabel("pixels removed, least confident first [%]")
    ax.set_ylabel(f"mean absolute error of the rest [{unit}]" if unit else "mean error of the rest (normalised)")
    ax.set_title(title)
    ax.set_xlim(0, 100)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig
