"""Epipolar geometry drawn: a reference pixel's ray projected into a source view, and its figure.

Cameras are ``K (3, 3)`` intrinsics in pixels and ``E (3, 4)``/``(4, 4)`` world-to-camera extrinsics
(docs/DESIGN.md §1), numpy or torch, unbatched; depths are z-depths in mm of the reference camera.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from matplotlib.figure import Figure

from deltaz.core.errors import ConfigError, DataError
from deltaz.core.geometry import Z_EPS, backproject_depth, camera_to_world, project_points, world_to_camera
from deltaz.viz.figures import draw_map, new_figure
from deltaz.viz.layers import DEFAULT_DEPTH_SPAN_MM, depth_range, to_numpy

__all__ = ["epipolar_segment", "reproject_pixel", "render_epipolar"]


def _t(x: Any, name: str) -> torch.Tensor:
    """``x`` as a float64 CPU tensor."""
    return torch.as_tensor(to_numpy(x, name), dtype=torch.float64)


def _pixel_to_src(K_ref, E_ref, K_src, E_src, pixel, depths_mm) -> tuple[np.ndarray, np.ndarray]:
    """Points at z-depths ``depths_mm`` on the ray of reference pixel ``(u, v)``, projected into the source.

    Composes :mod:`deltaz.core.geometry`: the ray of ``(u, v)`` is pixel ``(0, 0)`` of ``K`` with its principal
    point shifted by ``(u, v)`` (the cropping rule of docs/DESIGN.md §1), so ``backproject_depth`` of a 1×1 map
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
    K_ref, E_ref, K_src, E_src, pixel: tuple[float, float], depth_span=DEFAULT_DEPTH_SPAN_MM, n: int = 64
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
        draw_map(fig, ax, arr, "depth", lo, hi, "depth [mm]", title)
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
    depth_span=DEFAULT_DEPTH_SPAN_MM,
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
    fig = new_figure(figsize)
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

