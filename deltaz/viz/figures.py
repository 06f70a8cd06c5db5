"""Figures without pyplot: a notebook-friendly Figure, PNG bytes, and one masked map with its colour bar.

Every figure of :mod:`deltaz.viz` is built here with ``matplotlib.figure.Figure`` directly, so it never
registers with ``pyplot`` (nothing to close, no figure leaks, any backend, headless-safe).
"""

from __future__ import annotations

import io

import matplotlib
from matplotlib.colors import Colormap
from matplotlib.figure import Figure

from deltaz.viz.layers import CMAPS, HOLE_COLOR, layer_kind, masked

__all__ = ["figure_to_png", "NotebookFigure", "new_figure", "colormap", "unit_suffix", "draw_map"]


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


def new_figure(figsize: tuple[float, float]) -> NotebookFigure:
    """An empty :class:`NotebookFigure` of ``figsize`` inches with the constrained layout."""
    return NotebookFigure(figsize=figsize, layout="constrained")


def colormap(kind: str) -> Colormap:
    """The colour map of a layer kind (``depth``, ``diverging``, ``confidence``); holes in :data:`HOLE_COLOR`."""
    return matplotlib.colormaps[CMAPS[kind]].with_extremes(bad=HOLE_COLOR)


def unit_suffix(name: str) -> str:
    """``" [mm]"`` for a layer in millimetres, ``""`` for confidence."""
    return "" if layer_kind(name) == "confidence" else " [mm]"


def draw_map(fig: Figure, ax, arr, kind: str, vmin: float, vmax: float, label: str, title: str, pixel=None):
    """imshow of an ``(H, W)`` map on ``ax`` with a colour bar; holes masked by ``kind`` (:func:`masked`).

    Pixel centres sit at integer coordinates (docs/DESIGN.md §1); ``pixel = (u, v)`` is marked with a red ``+``.
    """
    data = masked(arr, kind)
    im = ax.imshow(data, cmap=colormap(kind), vmin=vmin, vmax=vmax, interpolation="nearest")
    bar = fig.colorbar(im, ax=ax, shrink=0.85)
    bar.set_label(label)
    ax.set_title(title)
    ax.set_xlabel("u [px]")
    ax.set_ylabel("v [px]")
    if pixel is not None:
        ax.plot([pixel[0]], [pixel[1]], "+", markersize=12, markeredgewidth=2, color="red", label="pixel")
    return im

