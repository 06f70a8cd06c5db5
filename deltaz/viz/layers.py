"""Layers of a view and their colour ranges: numpy conversion, hole masks, shared/symmetric ranges.

A *view* is a dict with ``depth_init``, ``depth_refined``, ``depth`` (ground truth), ``delta_z``, optional
``confidence`` (millimetres, ``0`` = no value; numpy arrays or torch tensors). Its *layers*
(:func:`layers_from_view`) are ``initial``, ``refined``, ``gt``, ``delta_z``, ``error`` and ``confidence``;
``error`` is **signed**, ``depth_refined − depth`` in mm (positive = too far).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from deltaz.core.errors import ConfigError, DataError

__all__ = [
    "HOLE_COLOR", "DEPTH_LAYERS", "DIVERGING_LAYERS", "LAYERS", "LAYER_LABELS", "CMAPS",
    "DEFAULT_DEPTH_SPAN_MM",
    "to_numpy", "as_map", "masked", "layer_kind", "layers_from_view",
    "depth_range", "symmetric_range", "default_range", "value_at",
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
#: Panel titles and colour-bar labels of the layers.
LAYER_LABELS = {
    "initial": "initial depth",
    "refined": "refined depth",
    "gt": "ground-truth depth",
    "delta_z": "Δz = refined − initial",
    "error": "error = refined − gt",
    "confidence": "confidence",
}
#: Colour map of each layer kind (:func:`layer_kind`).
CMAPS = {"depth": "viridis", "diverging": "RdBu_r", "confidence": "magma"}
#: ``(near, far)`` z-depth in mm of DTU scenes: the default span of an epipolar segment.
DEFAULT_DEPTH_SPAN_MM = (425.0, 935.0)


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


def as_map(x: Any, name: str) -> np.ndarray:
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


def masked(arr: np.ndarray, kind: str) -> np.ma.MaskedArray:
    """Mask pixels without a value: non-finite everywhere, and ``<= 0`` for depth-like layers."""
    data = np.ma.getdata(arr)
    mask = np.ma.getmaskarray(arr) | ~np.isfinite(data)
    if kind == "depth":
        mask = mask | ~(np.where(np.isfinite(data), data, 0) > 0)
    return np.ma.MaskedArray(np.where(mask, 0.0, data), mask=mask)


def layers_from_view(view: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The display layers of one view dict (docs/DESIGN.md §4 keys) as ``(H, W)`` float arrays, mm.

    ``initial`` ← ``depth_init``, ``refined`` ← ``depth_refined``, ``gt`` ← ``depth``, ``delta_z``,
    ``confidence``; a missing ``depth_refined`` is ``depth_init + delta_z`` and a missing ``delta_z`` is
    ``depth_refined − depth_init`` (where ``depth_init > 0``). ``error = depth_refined − depth``
    (signed, mm). ``delta_z`` and ``error`` come back as masked arrays (no value where the depths they
    are made of have none); depth layers keep their 0 holes (they are masked when drawn).
    """
    out: dict[str, np.ndarray] = {}
    for layer, key in _VIEW_KEYS.items():
        if view.get(key) is not None:
            out[layer] = as_map(view[key], key)
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


def depth_range(
    layers: Mapping[str, Any], names: Sequence[str] | None = None, percentiles=(1.0, 99.0)
) -> tuple[float, float]:
    """One colour range (mm) shared by the depth-like layers: ``percentiles`` of their valid values pooled.

    ``names`` defaults to every layer of kind ``"depth"``; ``(0, 1)`` when nothing is valid.
    """
    names = [n for n in (names or layers) if n in layers and layer_kind(n) == "depth"]
    values = [masked(as_map(layers[n], n), "depth").compressed() for n in names]
    pooled = np.concatenate(values) if values else np.empty(0)
    if pooled.size == 0:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.percentile(pooled, percentiles))
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    return lo, hi


def symmetric_range(values: Any, percentile: float = 99.0) -> tuple[float, float]:
    """``(−a, a)``, ``a`` = the ``percentile`` of ``|values|`` over valid (unmasked, finite) pixels, 1 if that is ~0."""
    arr = masked(to_numpy(values, "values"), "diverging").compressed()
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
    arr = masked(as_map(layers[layer], layer), kind).compressed()
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
        m = masked(as_map(arr, name), layer_kind(name))
        if not (0 <= v < m.shape[0] and 0 <= u < m.shape[1]):
            raise ConfigError(f"pixel: (u, v) = ({u}, {v}) is outside the {m.shape[1]}×{m.shape[0]} map")
        out[name] = None if m.mask[v, u] else float(m.data[v, u])
    return out

