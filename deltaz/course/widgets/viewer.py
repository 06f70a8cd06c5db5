"""The :class:`Viewer` box shared by the course viewers, and the controls they have in common.

A viewer is an ``ipywidgets.VBox``: its controls, a readout (``ipywidgets.HTML``) and the picture
(``ipywidgets.Image`` holding PNG bytes). It draws once when created and on each control change.
"""

from __future__ import annotations

import html
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

import ipywidgets as widgets
from matplotlib.figure import Figure

from deltaz.viz import figure_to_png, layer_kind

__all__ = ["VIEWER_DPI", "Viewer", "set_range", "readout_html", "pixel_sliders", "fit_pixel_sliders"]

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


def set_range(slider: widgets.FloatRangeSlider, lo: float, hi: float, value: tuple[float, float]) -> None:
    """Set a range slider's bounds and value in an order that never makes ``min > max``."""
    if hi <= lo:
        hi = lo + 1.0
    if lo > slider.max:
        slider.max, slider.min = hi, lo
    else:
        slider.min, slider.max = lo, hi
    slider.step = (hi - lo) / 500.0
    slider.value = (max(lo, min(value[0], hi)), max(lo, min(value[1], hi)))


def readout_html(title: str, values: Mapping[str, float | None]) -> str:
    """An HTML table of ``name: value`` (mm, except confidence; ``None`` → "no value") under a bold title."""
    cells = []
    for name, val in values.items():
        unit = "" if layer_kind(name) == "confidence" else " mm"
        text = "no value" if val is None else f"{val:.2f}{unit}"
        cells.append(f"<tr><td>{html.escape(name)}</td><td style='text-align:right'>{text}</td></tr>")
    rows = "".join(cells)
    return f"<b>{html.escape(title)}</b><table>{rows}</table>"


def pixel_sliders(H: int, W: int, pixel: tuple[int, int] | None) -> tuple[widgets.IntSlider, widgets.IntSlider]:
    """The ``u``, ``v`` sliders (px) of an ``H × W`` view, at ``pixel = (u, v)`` or the image centre."""
    u0, v0 = pixel if pixel is not None else (W // 2, H // 2)
    u = widgets.IntSlider(value=int(u0), min=0, max=W - 1, description="u [px]", continuous_update=False)
    v = widgets.IntSlider(value=int(v0), min=0, max=H - 1, description="v [px]", continuous_update=False)
    return u, v


def fit_pixel_sliders(u: widgets.IntSlider, v: widgets.IntSlider, H: int, W: int) -> None:
    """Bound the pixel sliders to an ``H × W`` view."""
    u.max, v.max = W - 1, H - 1  # IntSlider clamps the value into the new bounds

