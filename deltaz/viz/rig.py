"""A multi-view camera rig in 3D: camera centres, optical axes and optional world points (world frame, mm)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from deltaz.core.errors import ConfigError, DataError
from deltaz.core.geometry import camera_center, camera_to_world
from deltaz.viz.figures import new_figure
from deltaz.viz.layers import to_numpy

__all__ = ["render_camera_rig"]


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
    E = torch.as_tensor(to_numpy(extrinsics, "extrinsics"), dtype=torch.float64)
    if E.dim() != 3 or E.shape[-2:] not in ((3, 4), (4, 4)):
        raise DataError(f"extrinsics: expected (V, 3, 4) or (V, 4, 4), got shape {tuple(E.shape)}")
    centres = camera_center(E).numpy()  # (V, 3)
    V = centres.shape[0]
    pts = None if points is None else _subsample_points(points, max_points)
    extent_pts = centres if pts is None or len(pts) == 0 else np.concatenate([centres, pts])
    extent = float(np.ptp(extent_pts, axis=0).max()) if len(extent_pts) > 1 else 0.0
    length = float(axis_length_mm) if axis_length_mm else (0.15 * extent if extent > 0 else 50.0)
    tips = camera_to_world(torch.tensor([0.0, 0.0, length], dtype=torch.float64).expand(V, 3), E).numpy()
    axes_dir = tips - centres
    chosen = _highlighted(highlight, V)

    fig = new_figure(figsize)
    ax = fig.add_subplot(projection="3d")  # matplotlib loads mpl_toolkits.mplot3d for "3d" itself
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
    _equal_axes(ax, extent_pts, length)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    return fig


def _subsample_points(points: Any, max_points: int) -> np.ndarray:
    """Finite rows of ``points (…, 3)`` as ``(N, 3)``; a fixed, seeded subsample of at most ``max_points``."""
    pts = to_numpy(points, "points")
    if pts.ndim < 2 or pts.shape[-1] != 3:
        raise DataError(f"points: expected (N, 3) world points, got shape {pts.shape}")
    pts = pts.reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) > max_points:
        pts = pts[np.random.default_rng(0).choice(len(pts), max_points, replace=False)]
    return pts


def _highlighted(highlight: int | Sequence[int] | None, V: int) -> np.ndarray:
    """A ``(V,)`` bool mask of the highlighted cameras."""
    chosen = np.zeros(V, dtype=bool)
    if highlight is not None:
        idx = np.atleast_1d(np.asarray(highlight, dtype=int))
        if ((idx < 0) | (idx >= V)).any():
            raise ConfigError(f"highlight: expected indices in 0..{V - 1}, got {idx.tolist()}")
        chosen[idx] = True
    return chosen


def _equal_axes(ax, points: np.ndarray, length: float) -> None:
    """One scale on x, y, z (mm): a cube around ``points (N, 3)`` at least ``length`` in half-size."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    mid, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, length)
    ax.set_xlim(mid[0] - half, mid[0] + half)
    ax.set_ylim(mid[1] - half, mid[1] + half)
    ax.set_zlim(mid[2] - half, mid[2] + half)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xlabel("x [mm]")
    ax.set_ylabel("y [mm]")
    ax.set_zlabel("z [mm]")
