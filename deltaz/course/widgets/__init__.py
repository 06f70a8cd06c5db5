"""Thin ipywidgets viewers over the pure renderers of :mod:`deltaz.viz`.

Each factory returns a :class:`Viewer` — an ``ipywidgets.VBox`` whose children are its controls (in the
order of ``viewer.controls``), then a readout (``ipywidgets.HTML``) and the picture
(``ipywidgets.Image`` holding PNG bytes, so it shows in any browser without a matplotlib extension).

Headless-friendly by design: the viewer draws once when it is created, redraws on every control change
through ``.observe`` (no ``interact_manual``, so nothing waits for a button), and exposes what it last
drew, so a notebook cell or a test can drive it without a browser and assert::

    viewer = depth_viewer(views)
    viewer.controls["layer"].value = "delta_z"      # or viewer.children[2].value = ...
    assert viewer.state["layer"] == "delta_z" and viewer.last_png

``viewer.state`` is a plain dict (current selection, colour range, pixel readout, …), ``viewer.last_png``
the PNG bytes shown, ``viewer.last_figure`` the :class:`matplotlib.figure.Figure` they came from (not
registered with pyplot, so nothing leaks), ``viewer.refresh()`` redraws. ``views`` may be view dicts, a
loader ``(scan, view_id) -> dict`` or a :class:`~deltaz.core.batch.MultiViewBatch`.
Used by the course notebooks (01 data, 02 cameras and reprojection, 05 losses, 07 evaluation, 08 extensions, 09
self-supervision) and the appendix.

Modules: :mod:`~deltaz.course.widgets.viewer` (the box and shared controls),
:mod:`~deltaz.course.widgets.sources` (where views come from), :mod:`~deltaz.course.widgets.depth`,
:mod:`~deltaz.course.widgets.reprojection`, :mod:`~deltaz.course.widgets.loss`.
"""

from __future__ import annotations

from deltaz.course.widgets.depth import depth_viewer
from deltaz.course.widgets.loss import loss_explorer
from deltaz.course.widgets.reprojection import reprojection_viewer
from deltaz.course.widgets.viewer import VIEWER_DPI, Viewer

__all__ = ["Viewer", "VIEWER_DPI", "depth_viewer", "reprojection_viewer", "loss_explorer"]
