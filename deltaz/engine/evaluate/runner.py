"""``run_evaluation``: prepare the methods once, then one pass per scan (load, apply, score, fuse, draw).

See :mod:`deltaz.engine.evaluate` for what is compared and how; the rows are built in
:mod:`~deltaz.engine.evaluate.scores`, the files written by :func:`deltaz.engine.report.write_metrics`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from tqdm.auto import tqdm

from deltaz.core.errors import ConfigError, DataError
from deltaz.engine.adapt import adapt_method
from deltaz.engine.device import resolve_device
from deltaz.engine.evaluate.methods import (
    Method, apply_method, baseline_names, build_methods, confidence_method, gated_method, load_refiner, model_method,
    needs_images, remembered, search_methods,
)
from deltaz.engine.scans import ScanViews, load_scan_views, resolve_scans
from deltaz.engine.evaluate.scores import CONSISTENCY_SETTINGS, EvaluationScores, confidence_summary
from deltaz.engine.evaluate.tuning import tune_baselines
from deltaz.engine.refine import colour_scaled_parts
from deltaz.engine.report import write_metrics
from deltaz.model import check_colour_scale, median_selection
from deltaz.io.dtu import layout
from deltaz.ops.agreement import MIRROR_AGREEMENT
from deltaz.ops.baselines import NEEDS_IMAGE
from deltaz.ops.dead_zone import DEAD_ZONE, check_dead_zone
from deltaz.ops.smooth import SURFACE_SMOOTHING

__all__ = ["Evaluation", "prepare_evaluation", "run_evaluation", "evaluate"]


@dataclass
class Evaluation:
    """What every scan is evaluated with: the methods in table order (``methods``), ``deltaz``'s
    confidence as a method (None without a confidence head), the scans (:func:`resolve_scans`'s dict),
    the chosen ``baseline_params`` and whether images are loaded."""

    model: torch.nn.Module
    train_config: dict[str, Any]
    checkpoint_path: Path
    compare_path: Path | None
    scans: dict[str, Any]
    methods: dict[str, Method]
    baseline_params: dict[str, dict[str, Any]]
    use_images: bool
    device: torch.device
    confidence: Method | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def order(self) -> list[str]:
        return list(self.methods)


def _image_policy(data_root: Path, scans: Mapping[str, Any], refiners: Mapping[str, Any], names: list[str],
                  notes: list[str], gate: bool = False) -> tuple[list[str], bool]:
    """``(baselines kept, use_images)``: without images on every scan the image baselines (and the ``gate``
    row) are skipped with a note, and a refiner that takes images raises :class:`DataError`."""
    needing = {name for name, (model, _) in refiners.items() if needs_images(model)}
    needing |= {n for n in names if n in NEEDS_IMAGE}
    all_have_images = all(bool(layout.read_meta(root / s).get("has_images"))
                          for root, group in ((data_root, scans["eval"]), (scans["split_root"], scans["val"]))
                          for s in group)
    if not all_have_images:
        for method in sorted(needing & set(refiners)):
            raise DataError(f"{method} takes RGB images but some scans have no images/; parse the data with images")
        skipped = [n for n in names if n in NEEDS_IMAGE] + (["deltaz+gate", "search", "search+deltaz"] if gate else [])
        if skipped:
            notes.append(f"skipped {skipped}: the scans have no images")
        names = [n for n in names if n not in NEEDS_IMAGE]
    return names, all_have_images and (gate or bool(needing))


def _refiner_methods(model, dev, train_config, use_images: bool, num_src_views: int, search: bool,
                     dead_zone, mirror_agreement: bool, smooth: bool) -> dict[str, Method]:
    """The checkpoint's rows: ``deltaz``, and those that read the source views — ``deltaz+gate`` (gating
    ``deltaz``'s own outputs: the refiner runs once for both), and (``search``) ``search`` and ``search+deltaz`` —
    when the scans have images (``use_images``) and sources (``num_src_views``)."""
    keep_holes = not train_config.get("fill_holes", False)
    rows = {"deltaz": remembered(model_method(model, dev, keep_holes, dead_zone, mirror_agreement, smooth))}
    if not use_images or num_src_views < 1:
        return rows
    rows["deltaz+gate"] = gated_method(model, dev, keep_holes, dead_zone=dead_zone, refined=rows["deltaz"])
    return {**rows, **(search_methods(model, dev, keep_holes, dead_zone, mirror_agreement, smooth) if search else {})}


def _adapt_methods(model, train_config, data_root, preset, adapt_minutes, progress) -> dict[str, Method]:
    if adapt_minutes <= 0:
        return {}
    keep_holes = not train_config.get("fill_holes", False)
    return {"deltaz+adapt": adapt_method(model, keep_holes, data_root, preset, adapt_minutes, progress)}


def prepare_evaluation(checkpoint, data_root, split, preset, *, baselines="all", compare_checkpoint=None,
                       device=None, num_src_views=4, batch_size=8, tune_max_views=16, progress=True,
                       fusion_conf_thresh=None, adapt_minutes=0.0, search=True, dead_zone=DEAD_ZONE,
                       mirror_agreement=MIRROR_AGREEMENT, smooth=SURFACE_SMOOTHING) -> Evaluation:
    """Load the refiners, resolve the scans, tune the baselines on the validation scans, build the methods
    (arguments as in :func:`run_evaluation`)."""
    dev = resolve_device(device)
    model, train_config, checkpoint_path = load_refiner(checkpoint, dev)
    if fusion_conf_thresh is not None and not getattr(model, "out_confidence", False):
        raise ConfigError(f"fusion_conf_thresh={fusion_conf_thresh}: the checkpoint's model has no confidence "
                          "head (train it with --confidence)")
    refiners = {"deltaz": (model, train_config)}
    compare_path = None
    if compare_checkpoint is not None:
        compare, compare_config, compare_path = load_refiner(compare_checkpoint, dev)
        refiners = {"mvsnet_refine": (compare, compare_config), **refiners}
    names = baseline_names(baselines)
    scans = resolve_scans(data_root, split, train_config)
    notes: list[str] = [scans["note"]] if scans.get("note") else []
    names, use_images = _image_policy(Path(data_root), scans, refiners, names, notes, gate=num_src_views >= 1)
    params = tune_baselines(names, scans["split_root"], scans["val"], num_src_views, preset, use_images,
                            tune_max_views, batch_size, progress)
    if names and not scans["val"]:
        notes.append("no validation scans: baselines use their default parameters")
    dead_zone = check_dead_zone(dead_zone)
    extra = {**_refiner_methods(model, dev, train_config, use_images, num_src_views, search, dead_zone,
                                mirror_agreement, smooth),  # its "deltaz" row stands for build_methods' own
             **_adapt_methods(model, train_config, Path(data_root), preset, adapt_minutes, progress)}
    confidence = confidence_method(model, dev) if getattr(model, "out_confidence", False) else None
    return Evaluation(model, train_config, checkpoint_path, compare_path, scans,
                      build_methods(params, refiners, dev, extra, dead_zone, mirror_agreement, smooth),
                      params, use_images, dev,
                      confidence, notes)


class _Files:
    """The figures and PLY files of one run under ``out_dir`` (nothing without one)."""

    def __init__(self, out_dir: str | Path | None, figures: bool, pointclouds: bool, ply_scan: str, n_views: int):
        self.out = Path(out_dir) if out_dir is not None else None
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
        self.draw = figures and self.out is not None
        self.fuse, self.ply_scan, self.n_figure_views = pointclouds, ply_scan, n_views
        self.figures: list[str] = []
        self.ply: list[str] = []
        self.pointclouds: list[dict[str, Any]] = []

    def add_scan(self, views: ScanViews, outputs: Mapping[str, torch.Tensor], scan_index: int,
                 confidence: torch.Tensor | None, conf_thresh: float | None) -> None:
        """Fuse and score the scan's point clouds (PLY for ``ply_scan``), draw its depth figure (first scans)."""
        if self.fuse:
            from deltaz.engine.evaluate.pointclouds import score_pointclouds  # lazy: scipy only when clouds are scored

            ply_dir = self.out if views.scan == self.ply_scan else None
            rows, ply = score_pointclouds(views, outputs, ply_dir, confidence, conf_thresh)
            self.pointclouds += rows
            self.ply += ply
        if self.draw and scan_index < self.n_figure_views:
            from deltaz.engine.evaluate.figures import depth_figure  # lazy: matplotlib only when figures are drawn

            self.figures.append(depth_figure(views, outputs["deltaz"], self.out, scan_index))

    def finish(self, scores: EvaluationScores, spars, split: str) -> list[dict[str, Any]]:
        """Histogram and sparsification figures; the point-cloud rows with their ``scan = "all"`` means first."""
        if self.draw:
            from deltaz.engine.evaluate.figures import histogram_figure, sparsification_figure  # lazy: matplotlib only when figures are drawn

            self.figures.append(histogram_figure(scores.errors, scores.order, self.out))
            if spars is not None:
                self.figures.append(sparsification_figure(spars, split, self.out))
        if not self.pointclouds:
            return []
        from deltaz.engine.evaluate.pointclouds import pointcloud_summary  # lazy: scipy only when clouds are scored

        return pointcloud_summary(self.pointclouds, scores.order) + self.pointclouds


def _dials(dead_zone, colour_scale: float, mirror_agreement: bool, weighted_median: bool, smooth: bool
           ) -> dict[str, Any]:
    """The refiner rows' inference dials as ``metrics.json``'s settings record them."""
    return {"dead_zone": list(dead_zone or (0.0, 0.0)), "colour_scale": float(colour_scale),
            "mirror_agreement": bool(mirror_agreement), "weighted_median": bool(weighted_median),
            "smooth": bool(smooth)}


def run_evaluation(
    checkpoint: str | Path,
    data_root: str | Path,
    split: str = "val",
    preset: str = "mvs",
    out_dir: str | Path | None = None,
    *,
    baselines: str | Sequence[str] | None = "all",
    compare_checkpoint: str | Path | None = None,
    device: str | None = None,
    num_src_views: int = 4,
    batch_size: int = 8,
    tune_max_views: int | None = 16,
    figures: bool = True,
    n_figure_views: int = 3,
    pointclouds: bool = True,
    ply_scan: str | None = None,
    progress: bool = True,
    fusion_conf_thresh: float | None = None,
    adapt_minutes: float = 0.0,
    search: bool = True,
    dead_zone: tuple[float, float] | None = DEAD_ZONE,
    colour_scale: float = 1.0,
    mirror_agreement: bool = MIRROR_AGREEMENT,
    weighted_median: bool = False, smooth: bool = SURFACE_SMOOTHING,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on the ``split`` scans of ``data_root``; see :mod:`deltaz.engine.evaluate`.

    Returns a dict with ``rows`` (one per method and scan, plus ``scan="all"``), ``pointclouds`` (rows of accuracy /
    completeness / overall in mm), ``baseline_params`` (the values chosen on the validation scans), ``scans``,
    ``val_scans``, ``settings``, ``figures``/``ply`` (paths) and ``elapsed_s``; the same is written to ``out_dir``
    (when given) as ``metrics.json`` and ``metrics.md``. With a confidence head also ``confidence`` (sparsification
    curves and ``ause_mm``); ``fusion_conf_thresh`` needs one. ``adapt_minutes > 0`` adds the row ``deltaz+adapt``:
    the checkpoint adapted to each evaluated scan itself for that many minutes, without its ground truth
    (:func:`deltaz.engine.adapt.adapt_method`). With images and source views the rows ``deltaz+gate`` and (unless
    ``search=False``) ``search`` and ``search+deltaz`` (:func:`deltaz.engine.evaluate.methods.search_methods`).
    ``dead_zone``: the refiner rows' dead zone (:mod:`deltaz.ops.dead_zone`; None = off). ``colour_scale``: a
    selection refiner's colour weight times this in its rows (:func:`deltaz.model.colour_scaled`, as ``deltaz refine
    --colour-scale``; 1 = as trained; another model refuses a value other than 1). ``mirror_agreement``: the
    checkpoint's rows ``deltaz``, ``deltaz+gate``, ``search+deltaz`` with :mod:`deltaz.ops.agreement` (twice the
    refiner's time; not ``mvsnet_refine`` or ``deltaz+adapt``; a confidence head's map stays the first pass's);
    ``smooth``: likewise with :mod:`deltaz.ops.smooth`. ``weighted_median``: with
    :func:`deltaz.model.median_selection`.
    """
    t_start = time.perf_counter()
    dead_zone = check_dead_zone(dead_zone)
    check_colour_scale(colour_scale)  # before the baselines' tuning; the model's kind is checked after loading
    ev = prepare_evaluation(checkpoint, data_root, split, preset, baselines=baselines,
                            compare_checkpoint=compare_checkpoint, device=device, num_src_views=num_src_views,
                            batch_size=batch_size, tune_max_views=tune_max_views, progress=progress,
                            fusion_conf_thresh=fusion_conf_thresh, adapt_minutes=adapt_minutes, search=search,
                            dead_zone=dead_zone, mirror_agreement=mirror_agreement, smooth=smooth)
    eval_scans = ev.scans["eval"]
    files = _Files(out_dir, figures, pointclouds, ply_scan or eval_scans[0], n_figure_views)
    scores, num_src_used = EvaluationScores(ev.order, len(eval_scans)), 0
    bar = tqdm(eval_scans, desc=f"evaluate ({split})", unit="scan", disable=not progress)
    with colour_scaled_parts(ev.model, colour_scale), median_selection(ev.model, weighted_median):  # not mvsnet's
        for scan_index, scan in enumerate(bar):
            bar.set_postfix_str(scan)
            views = load_scan_views(data_root, scan, num_src_views, preset, ev.use_images)
            num_src_used = views.num_src
            outputs = {m: apply_method(ev.methods[m], views, batch_size) for m in ev.order}
            confidence = apply_method(ev.confidence, views, batch_size) if ev.confidence is not None else None
            scores.add_scan(views, outputs, batch_size, confidence)
            files.add_scan(views, outputs, scan_index, confidence, fusion_conf_thresh)
    bar.close()
    spars = scores.sparsification()
    pc_rows = files.finish(scores, spars, split)
    settings = {
        "preset": preset, "num_src_views": num_src_used, "consistency": dict(CONSISTENCY_SETTINGS),
        "tune_max_views_per_scan": tune_max_views, "device": str(ev.device), "n_views_evaluated": scores.n_views,
        "use_images": ev.use_images, "deltaz_fills_holes": bool(ev.train_config.get("fill_holes", False)),
        "fusion_conf_thresh": fusion_conf_thresh, "adapt_minutes": adapt_minutes, "search": search,
        **_dials(dead_zone, colour_scale, mirror_agreement, weighted_median, smooth),
    }
    result = _result(ev, data_root, split, scores.rows(eval_scans), pc_rows, settings, confidence_summary(spars), files)
    result["elapsed_s"] = time.perf_counter() - t_start
    if files.out is not None:
        write_metrics(result, files.out)
    return result


def _result(ev: Evaluation, data_root, split: str, rows: list[dict[str, Any]], pc_rows: list[dict[str, Any]],
            settings: dict[str, Any], confidence: dict[str, Any] | None, files: _Files) -> dict[str, Any]:
    """``metrics.json``'s content (its keys and their order are fixed; ``elapsed_s`` is added last)."""
    return {
        "rows": rows,
        "pointclouds": pc_rows,
        "baseline_params": ev.baseline_params,
        "checkpoint": str(ev.checkpoint_path),
        "compare_checkpoint": str(ev.compare_path) if ev.compare_path is not None else None,
        "data_root": str(Path(data_root)),
        "split": split,
        "scans": ev.scans["eval"],
        "val_scans": ev.scans["val"],
        "tune_root": str(ev.scans["split_root"]),
        "train_scans": ev.scans["train"],
        "split_mode": ev.scans["mode"],
        "settings": settings,
        "confidence": confidence,
        "notes": ev.notes,
        "figures": files.figures,
        "ply": files.ply,
    }


def evaluate(
    checkpoint: str | Path,
    data_root: str | Path,
    split: str = "val",
    preset: str = "mvs",
    out_dir: str | Path | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """The rows of :func:`run_evaluation` (one per method and scan, ``scan="all"`` first); keyword
    arguments as there. Writes ``metrics.json``/``metrics.md`` and figures to ``out_dir`` when given."""
    return run_evaluation(checkpoint, data_root, split, preset, out_dir, **kwargs)["rows"]
