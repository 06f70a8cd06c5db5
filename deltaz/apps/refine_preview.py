"""The ``deltaz refine --preview`` figure: image, input depth, refined depth and Δz, each with a colour bar in mm.

Uses :mod:`deltaz.viz`'s conventions (depth-like panels share one ``viridis`` range, Δz a symmetric ``RdBu_r``
range around 0, holes in :data:`deltaz.viz.HOLE_COLOR`); built on a plain Figure (Agg, headless-safe).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deltaz.core.atomic import atomic_path

__all__ = ["render_refine_preview", "write_preview"]


def render_refine_preview(depth_mm: np.ndarray, refined_mm: np.ndarray, image=None, title: str | None = None):
    """Figure of ``image (H', W', 3)`` (optional, any size), ``depth_mm``/``refined_mm (H, W)`` mm (0/NaN = hole)
    and Δz = refined − input on pixels where both have a value."""
    import matplotlib

    from deltaz.viz import HOLE_COLOR, NotebookFigure, depth_range, symmetric_range  # lazy: matplotlib, only for --preview

    def masked(a):
        a = np.asarray(a, dtype=np.float64)
        return np.ma.masked_where(~(np.isfinite(a) & (a > 0)), a)

    initial, refined = masked(depth_mm), masked(refined_mm)
    both = np.ma.getmaskarray(initial) | np.ma.getmaskarray(refined)
    delta_z = np.ma.masked_where(both, refined.filled(0) - initial.filled(0))
    d_lo, d_hi = depth_range({"initial": initial.filled(0), "refined": refined.filled(0)})
    dz = symmetric_range(delta_z)[1]
    panels = ([("image", image, None)] if image is not None else []) + [
        ("input depth [mm]", initial, ("viridis", d_lo, d_hi)),
        ("refined depth [mm]", refined, ("viridis", d_lo, d_hi)),
        ("Δz = refined − input [mm]", delta_z, ("RdBu_r", -dz, dz)),
    ]
    fig = NotebookFigure(figsize=(3.6 * len(panels), 3.2), layout="constrained")
    for ax, (name, data, style) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        if style is None:
            ax.imshow(np.asarray(data))
        else:
            cmap = matplotlib.colormaps[style[0]].with_extremes(bad=HOLE_COLOR)
            im = ax.imshow(data, cmap=cmap, vmin=style[1], vmax=style[2], interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.85).set_label("mm")
        ax.set_title(name)
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def write_preview(path: str | Path, depth_mm: np.ndarray, refined_mm: np.ndarray, image=None,
                  title: str | None = None) -> Path:
    """Render :func:`render_refine_preview` and save it as PNG atomically. Returns the path."""
    path = Path(path)
    fig = render_refine_preview(depth_mm, refined_mm, image, title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path
