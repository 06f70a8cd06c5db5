"""Split a loader sample or a :class:`~deltaz.core.batch.MultiViewBatch` into the view dicts the viewers take."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from deltaz.core.batch import MultiViewBatch
from deltaz.core.errors import ConfigError, DataError
from deltaz.viz.layers import to_numpy

__all__ = ["views_from_sample"]

_PER_VIEW_KEYS = ("depth", "depth_init", "mask", "intrinsics", "extrinsics", "image", "confidence")


def views_from_sample(
    sample: Mapping[str, Any] | MultiViewBatch, index: int = 0, **per_view: Any
) -> list[dict[str, Any]]:
    """Split a data sample (``(V, …)`` arrays) or a batch (``(B, V, …)`` → item ``index``) into view dicts.

    ``sample``: a loader sample dict, a dict batch, or a :class:`~deltaz.core.batch.MultiViewBatch`.
    Each dict holds that view's ``depth`` (ground truth, mm), ``depth_init`` (mm), ``mask``,
    ``intrinsics (3, 3)``, ``extrinsics (3, 4)``, ``image (3, H, W)`` (each when present), ``view_id``,
    ``scan`` (from ``scene``) and ``depth_range`` (near, far mm); view 0 is the reference. Extra per-view
    maps such as ``depth_refined=…`` or ``delta_z=…``, ``(V, H, W)`` (or ``(B, V, H, W)`` for a batch),
    are split the same way. The number of views comes from ``depth``, else ``depth_init``.
    """
    first = "depth" if sample.get("depth") is not None else "depth_init"
    if sample.get(first) is None:
        raise DataError("sample: needs 'depth' or 'depth_init' ((V, H, W) or (B, V, H, W) mm)")
    depth = to_numpy(sample[first], f"sample[{first!r}]")
    batched = depth.ndim == 4
    if depth.ndim not in (3, 4):
        raise DataError(f"sample[{first!r}]: expected (V, H, W) or (B, V, H, W), got shape {depth.shape}")
    if batched and not -depth.shape[0] <= index < depth.shape[0]:
        raise ConfigError(f"index: expected an item of the batch of {depth.shape[0]}, got {index}")

    def pick(x: Any, name: str) -> np.ndarray:
        arr = to_numpy(x, name)
        return arr[index] if batched else arr

    scene = sample.get("scene", "scan")
    if isinstance(scene, (list, tuple)):
        scene = scene[index] if batched else scene[0]
    arrays = {key: pick(sample[key], key) for key in _PER_VIEW_KEYS if sample.get(key) is not None}
    for key, value in per_view.items():
        if value is not None:
            arr = to_numpy(value, key)
            arrays[key] = arr[index] if batched and arr.ndim == depth.ndim else arr
    n_views = arrays[first].shape[0]
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
