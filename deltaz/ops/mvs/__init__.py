"""Plane-sweep multi-view stereo: a real initial-depth source for the refiner (DESIGN.md §5).

* :func:`plane_sweep` — one reference view against its source views: fronto-parallel planes, source
  images warped through :mod:`deltaz.core.geometry`, a ZNCC cost, best-k source aggregation, box-filter
  cost aggregation, winner-take-all with parabola sub-plane refinement and a softmax confidence.
* :func:`geometric_filter` — MVSNet-style multi-view consistency check across the views of a scan.
* :func:`sweep_scan` / :func:`load_sweep` — run both on a train-ready scan and cache the result in
  ``scan_dir/planesweep/``.
* :func:`stereo_depth` — two-view OpenCV SGBM on an unrectified calibrated pair (rectified on the fly);
  :func:`stereo_scan` / :func:`load_stereo` cache it per scan in ``scan_dir/sgbm/`` (``--preset sgbm``).
* :func:`candidate_search` — a rectified pair's disparity post-step: each pixel keeps a neighbour's disparity
  where the right image matches it better (:func:`search_disparity` at any size, ``deltaz refine --right-image``;
  :func:`search_depth` on Middlebury's SGBM or plane-sweep input).
* :func:`side_choice` — a pixel beside a disparity edge takes the side (near or far) whose colours match its
  own: the matcher's foreground fattening undone from the left image alone (``search_disparity`` and
  ``search_depth`` run it first).
* :func:`segment_planes` — a stretch nearer than the robust plane of its colour segment takes the plane, unless
  the right image sees it and matches it better there (``search_disparity`` runs it last; :func:`planes_depth`
  on Middlebury); :func:`planes_views` the same for calibrated views, the sources' photometric error saying no
  (``deltaz evaluate``'s search runs it between :func:`propagate_depth` and :func:`subpixel_views`).
* :func:`subpixel_refine` — the disparity moved by the small, smooth offset the right image asks for: a ZNCC
  peak per pixel within ±1.5 px, clipped and median-smoothed (``search_disparity`` runs it after segment planes);
  :func:`subpixel_views` the same for calibrated views (``deltaz evaluate``'s search runs it last).
* :func:`consensus_depth` — a pixel no source view agrees with takes the depth the sources see there
  (:func:`splat_sources`); ``deltaz evaluate``'s ``search`` runs it before :func:`propagate_depth`.
* :func:`propagate_depth` — the same search for calibrated views: each pixel keeps a neighbour's depth where the
  source views match it better (``deltaz evaluate``'s rows ``search`` and ``search+deltaz``).

Its errors (texture-less regions, occlusion edges, specular highlights) are the ones a refiner learns
to fix; its holes and confidence come from the algorithm itself. Explained in
notebooks/04_multiview_stereo.ipynb.
"""

from deltaz.ops.mvs.consensus import CONSENSUS_REL, consensus_depth, splat_sources
from deltaz.ops.mvs.filter import geometric_filter
from deltaz.ops.mvs.propagate import PROPAGATE_DEFAULTS, propagate_depth
from deltaz.ops.mvs.planes import PLANES_DEFAULTS, planes_depth, segment_planes
from deltaz.ops.mvs.planes_calibrated import VIEWS_PLANES_DEFAULTS, planes_views
from deltaz.ops.mvs.scan import SWEEP_DIR, load_sweep, sweep_scan
from deltaz.ops.mvs.search import candidate_search, sad_cost_volume, search_depth, search_disparity
from deltaz.ops.mvs.side import SIDE_DEFAULTS, side_choice, side_depth
from deltaz.ops.mvs.stereo import stereo_depth
from deltaz.ops.mvs.stereo_cache import STEREO_DIR, load_stereo, stereo_scan
from deltaz.ops.mvs.subpixel import SUBPIXEL_DEFAULTS, VIEWS_SUBPIXEL_DEFAULTS, subpixel_refine, subpixel_views
from deltaz.ops.mvs.sweep import SweepResult, plane_depths, plane_sweep

__all__ = [
    "CONSENSUS_REL",
    "PLANES_DEFAULTS",
    "PROPAGATE_DEFAULTS",
    "SIDE_DEFAULTS",
    "SUBPIXEL_DEFAULTS",
    "STEREO_DIR",
    "SWEEP_DIR",
    "VIEWS_PLANES_DEFAULTS",
    "VIEWS_SUBPIXEL_DEFAULTS",
    "SweepResult",
    "candidate_search",
    "consensus_depth",
    "geometric_filter",
    "load_stereo",
    "load_sweep",
    "plane_depths",
    "plane_sweep",
    "planes_depth",
    "planes_views",
    "propagate_depth",
    "sad_cost_volume",
    "search_depth",
    "search_disparity",
    "segment_planes",
    "side_choice",
    "side_depth",
    "splat_sources",
    "stereo_depth",
    "stereo_scan",
    "subpixel_refine",
    "subpixel_views",
    "sweep_scan",
]
