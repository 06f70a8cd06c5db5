"""``deltaz evaluate``: score a trained refiner against its input and the classical baselines.

What is compared (one row per method and scan, plus ``scan = "all"``):

* ``identity`` — the initial depth itself (what the refiner starts from);
* the classical baselines of :mod:`deltaz.ops.baselines` (``median``, ``bilateral``, ``joint_bilateral``,
  ``guided`` — the last two need images — and ``geometric_averaging``, MVSNet's multi-view averaging),
  with parameters **tuned on the validation scans only** (:func:`deltaz.ops.baselines.tune_baseline`);
* ``mvsnet_refine`` — a trained :class:`deltaz.model.MVSNetRefine` when ``compare_checkpoint`` is given;
* ``deltaz`` — the checkpoint being evaluated;
* with images and source views: ``deltaz+gate`` (the refiner behind the photometric gate), ``search`` (the
  multi-view candidate search, four classical steps: :func:`~deltaz.engine.evaluate.methods.search_methods`) and
  ``search+deltaz`` (the refiner on the search's output); ``search=False`` (``--no-search``) skips the last two.

Which scans (:mod:`~deltaz.engine.scans`): the checkpoint's saved :class:`deltaz.engine.config.TrainConfig` says how
its training root was split; :func:`deltaz.data.splits.split_scans` is called again with the same root,
``val_split``, ``seed`` and ``split`` to recover the train and validation scans. ``--split val`` evaluates
the validation scans, ``--split test`` the scans of ``data_root`` that are in neither (for real DTU with
MVSNet's split: its test list), ``--split all`` every scan of ``data_root``. Baselines are always tuned
on the validation scans of the training root (or, without one, of ``data_root``) — never on the
evaluated test scans.

Holes: a trained refiner keeps the holes of its input unless it was trained to fill them
(``TrainConfig.fill_holes``), exactly as in training.

Same inputs for every method: each view's initial depth comes from
:class:`deltaz.data.DepthRefinementDataset` in evaluation mode (a real ``initial/`` depth, or the fixed
per-(scan, view) simulated one), and every method sees exactly those arrays. Each view of a scan is
refined once as a reference; its source views are the first ``num_src_views`` views of its
``pair.txt`` entry (as chosen by the dataset).

Definitions:

* depth metrics (:mod:`deltaz.ops.metrics`) over every pixel with ground truth; a hole (0) in a method's
  output counts as an error of the full depth. ``mae_valid_mm`` is the MAE over the pixels where the
  initial depth also exists (the same pixels for every method), ``hole_pct`` the share of holes.
* do-no-harm (:func:`deltaz.ops.metrics.harm_metrics`, on the pixels with ground truth and an initial depth):
  ``mae_good_mm`` — the MAE over the pixels whose initial depth is within 2 mm of the ground truth (for
  ``identity``: the input's own); ``harm_pct`` — % of those pixels the method made more than 1 mm worse
  than its input (0 for ``identity``).
* ``consistency`` — the method is applied to every view, and the reference output is checked against
  the *same method's* outputs of its source views with MVSNet's geometric check (1 px round trip, 1 %
  relative depth, :func:`deltaz.ops.metrics.consistency_rate`): % of the reference pixels with a depth that
  agree with at least one source view.
  ``consistency_valid``: the same over the pixels the initial depth has (a method that fills holes is scored by
  ``consistency`` on more, harder pixels than its input; this column compares every row on the same pixels).
* point clouds — per scan, the depth maps of ``identity``, ``deltaz`` (and ``mvsnet_refine``) are fused
  (:func:`deltaz.ops.pointcloud.fuse_depths`, geometric-consistency filter with ``min(2, S)`` source views)
  and scored against the ground-truth cloud with DTU's accuracy / completeness / overall (mm, 20 mm
  outlier cut).

* confidence — when the model has a confidence head: the sparsification curve of ``deltaz``'s absolute
  error over its valid pixels, its oracle, and AUSE (:mod:`deltaz.ops.confidence`), in ``metrics.json`` under
  ``confidence`` and as ``figures/sparsification.png``; ``fusion_conf_thresh`` drops ``deltaz`` pixels below
  that confidence from its fused point cloud.

Outputs in ``out_dir``: ``metrics.json`` (rows, point clouds, chosen baseline parameters, settings),
``metrics.md`` (the same as tables), ``figures/*.png`` (initial / refined / GT / Δz / error for a few
views, an error histogram) and ``pointclouds/*.ply`` for one scan.

Layout: :mod:`~deltaz.engine.scans` (which scans; a scan's views), :mod:`~deltaz.engine.evaluate.methods`
(the rows: :data:`METHOD_ORDER`, :func:`build_methods`), :mod:`~deltaz.engine.evaluate.tuning` (baselines on the
validation scans), :mod:`~deltaz.engine.evaluate.scores` (the columns of a row), :mod:`~deltaz.engine.evaluate.pointclouds`,
:mod:`~deltaz.engine.evaluate.figures`, :mod:`~deltaz.engine.evaluate.runner` (:func:`run_evaluation`, one pass per
scan) and :mod:`~deltaz.engine.evaluate.cli`; tables and ``metrics.md`` are rendered by :mod:`deltaz.engine.report`.
"""

from __future__ import annotations

from deltaz.engine.evaluate.cli import add_arguments, run
from deltaz.engine.evaluate.methods import (
    CLASSICAL_BASELINES,
    METHOD_ORDER,
    Method,
    apply_method,
    baseline_method,
    baseline_names,
    build_methods,
    confidence_method,
    load_refiner,
    model_method,
    gated_method,
    remembered,
    consensus_views,
    search_methods,
)
from deltaz.engine.evaluate.runner import Evaluation, evaluate, prepare_evaluation, run_evaluation
from deltaz.engine.scans import EVAL_SPLITS, ScanViews, load_scan_views, resolve_scans
from deltaz.engine.evaluate.scores import (
    CONSISTENCY_SETTINGS,
    HISTOGRAM_MAX_PIXELS,
    SPARSIFICATION_MAX_PIXELS,
    EvaluationScores,
    MethodScores,
    consistency_counts,
)
from deltaz.engine.evaluate.tuning import tune_baselines
from deltaz.engine.report import metrics_markdown, summary_table, write_metrics

__all__ = [
    "CLASSICAL_BASELINES",
    "METHOD_ORDER",
    "EVAL_SPLITS",
    "CONSISTENCY_SETTINGS",
    "HISTOGRAM_MAX_PIXELS",
    "SPARSIFICATION_MAX_PIXELS",
    "Method",
    "ScanViews",
    "Evaluation",
    "MethodScores",
    "EvaluationScores",
    "resolve_scans",
    "load_scan_views",
    "load_refiner",
    "baseline_method",
    "model_method",
    "gated_method",
    "remembered",
    "consensus_views",
    "search_methods",
    "confidence_method",
    "apply_method",
    "baseline_names",
    "build_methods",
    "consistency_counts",
    "tune_baselines",
    "prepare_evaluation",
    "run_evaluation",
    "evaluate",
    "metrics_markdown",
    "summary_table",
    "write_metrics",
    "add_arguments",
    "run",
]
