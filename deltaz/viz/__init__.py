"""Pure rendering functions: arrays in, a :class:`matplotlib.figure.Figure` out (no widgets, no pyplot state).

Every ``render_…`` function builds its figure with ``matplotlib.figure.Figure`` directly, so it never
registers with ``pyplot`` (nothing to close, no figure leaks, any backend, headless-safe) and it can be
saved (:func:`figure_to_png`, ``fig.savefig``) or shown in a notebook (``display(fig)``). The thin
interactive viewers in :mod:`deltaz.course.widgets` call these functions.

Data vocabulary (docs/DESIGN.md §4), millimetres, ``0`` = no value:

* a *view* is a dict with ``depth_init``, ``depth_refined``, ``depth`` (ground truth), ``delta_z``,
  optional ``confidence``, ``image (3, H, W)`` in [0, 1], ``intrinsics (3, 3)``, ``extrinsics (3, 4)``
  (world-to-camera); numpy arrays or torch tensors; :func:`views_from_sample` makes them from a loader
  sample or a :class:`~deltaz.core.batch.MultiViewBatch`;
* its *layers* (:func:`layers_from_view`) are named ``initial``, ``refined``, ``gt``, ``delta_z``,
  ``error`` and ``confidence``. ``error`` is **signed**, ``depth_refined − depth`` in mm (positive = too
  far), defined where both are > 0, so the colour shows the direction of a bias; histograms use ``|error|``.

Colour conventions: depth-like layers share one colour range (``viridis``); ``delta_z`` and ``error``
use a symmetric diverging range around 0 (``RdBu_r``); pixels without a value are masked and drawn in
:data:`HOLE_COLOR`. Used by the course notebooks 01 (data), 02 (cameras and reprojection) and the report.

Modules: :mod:`~deltaz.viz.layers` (layers, holes, colour ranges), :mod:`~deltaz.viz.views` (samples and
batches → view dicts), :mod:`~deltaz.viz.figures` (figures, PNG, one map), :mod:`~deltaz.viz.depth`
(depth panels, rows, error histograms), :mod:`~deltaz.viz.epipolar`, :mod:`~deltaz.viz.loss_maps`,
:mod:`~deltaz.viz.rig` (camera rig), :mod:`~deltaz.viz.sparsification`.
"""

from __future__ import annotations

from deltaz.viz.depth import render_depth_panel, render_depth_row, render_error_histogram
from deltaz.viz.epipolar import epipolar_segment, render_epipolar, reproject_pixel
from deltaz.viz.figures import NotebookFigure, figure_to_png
from deltaz.viz.layers import (
    DEFAULT_DEPTH_SPAN_MM,
    DEPTH_LAYERS,
    DIVERGING_LAYERS,
    HOLE_COLOR,
    LAYER_LABELS,
    LAYERS,
    default_range,
    depth_range,
    layer_kind,
    layers_from_view,
    symmetric_range,
    to_numpy,
    value_at,
)
from deltaz.viz.loss_maps import render_loss_maps
from deltaz.viz.rig import render_camera_rig
from deltaz.viz.sparsification import render_sparsification
from deltaz.viz.unet import render_unet, unet_blocks
from deltaz.viz.views import views_from_sample

__all__ = [
    "render_sparsification",
    "render_unet",
    "unet_blocks",
    "HOLE_COLOR",
    "DEPTH_LAYERS",
    "DIVERGING_LAYERS",
    "LAYERS",
    "LAYER_LABELS",
    "DEFAULT_DEPTH_SPAN_MM",
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
