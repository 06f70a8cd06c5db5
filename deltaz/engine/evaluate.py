"""``deltaz evaluate``: score a trained refiner against its input and the classical baselines.

What is compared (one row per method and scan, plus ``scan = "all"``):

* ``identity`` — the initial depth itself (what the refiner starts from);
* the classical baselines of :mod:`deltaz.ops.baselines` (``median``, ``bilateral``, ``joint_bilateral``,
  ``guided`` — the last two need images — and ``geometric_averaging``, MVSNet's multi-view averaging),
  with parameters **tuned on the validation scans only** (:func:`deltaz.ops.baselines.tune_baseline`);
* ``mvsnet_refine`` — a trained :class:`deltaz.model.MVSNetRefine` when ``compare_checkpoint`` is given;
* ``deltaz`` — the checkpoint being evaluated.

Which scans (never re-derived here): the checkpoint's saved :class:`deltaz.engine.config.TrainConfig` says how
its training root was split; :func:`deltaz.data.split_scans` is called again with the same root,
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
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from deltaz.ops.baselines import BASELINES, NEEDS_IMAGE, NEEDS_MULTIVIEW, tune_baseline
from deltaz.core.errors import ConfigError, DataError, DeltaZError
from deltaz.ops.metrics import HarmAccumulator, MetricAccumulator, consistency_rate
from deltaz.engine.device import resolve_device

__all__ = [
    "CLASSICAL_BASELINES",
    "METHOD_ORDER",
    "ScanViews",
    "resolve_scans",
    "load_scan_views",
    "load_refiner",
    "tune_baselines",
    "run_evaluation",
    "evaluate",
    "add_arguments",
    "run",
]

#: Baselines evaluated by ``--baselines all`` (identity is always evaluated: it is the input).
CLASSICAL_BASELINES = ("median", "bilateral", "joint_bilateral", "guided", "geometric_averaging")
#: Row order of the tables.
METHOD_ORDER = ("identity", *CLASSICAL_BASELINES, "mvsnet_refine", "deltaz", "deltaz+adapt")
#: Thresholds of the ``consistency`` column (MVSNet's geometric check).
CONSISTENCY_SETTINGS = {"pix_thresh": 1.0, "rel_depth_thresh": 0.01, "min_views": 1}
#: Methods whose depth maps are fused into point clouds (when present).
POINTCLOUD_METHODS = ("identity", "mvsnet_refine", "deltaz")
#: Cap on the pixels per method kept for the error histogram.
HISTOGRAM_MAX_PIXELS = 200_000
#: Cap on the pixels (a regular subsample) used for the sparsification curve.
SPARSIFICATION_MAX_PIXELS = 2_000_000

Method = Callable[["ScanViews", Sequence[int]], torch.Tensor]


# =========================================================================== data
@dataclass
class ScanViews:
    """Every view of one scan, as evaluated: ``N`` views, ``S`` source views each.

    ``depth``/``depth_init (N, H, W)`` mm, ``intrinsics (N, 3, 3)``, ``extrinsics (N, 3, 4)``
    world-to-camera, ``image (N, 3, H, W)`` in [0, 1] or None, ``depth_range (2,)`` mm, ``view_ids``
    (N ints) and ``src_index``: for each view, the *array indices* of its ``S`` source views.
    """

    scan: str
    view_ids: list[int]
    depth: torch.Tensor
    depth_init: torch.Tensor
    intrinsics: torch.Tensor
    extrinsics: torch.Tensor
    image: torch.Tensor | None
    depth_range: torch.Tensor
    src_index: list[list[int]]

    def __len__(self) -> int:
        return len(self.view_ids)

    @property
    def num_src(self) -> int:
        return len(self.src_index[0]) if self.src_index else 0

    def multiview(self, idx: Sequence[int], depth_all: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """Cameras of the references ``idx`` and of their sources, with the sources' depths taken from
        ``depth_all (N, H, W)`` (the same method's outputs, or the initial depths). None without sources."""
        if self.num_src == 0:
            return None
        idx = list(idx)
        src = torch.tensor([self.src_index[i] for i in idx], dtype=torch.long)  # (B, S)
        return {
            "K_ref": self.intrinsics[idx],
            "E_ref": self.extrinsics[idx],
            "depth_src": depth_all[src],
            "K_src": self.intrinsics[src],
            "E_src": self.extrinsics[src],
        }


def _chunks(indices: Sequence[int], size: int) -> Iterable[list[int]]:
    indices = list(indices)
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


def load_scan_views(
    data_root: str | Path,
    scan: str,
    num_src_views: int = 4,
    preset: str = "mvs",
    use_images: bool = False,
) -> ScanViews:
    """Load every view of ``scan`` with its evaluation-mode initial depth (see the module docstring).

    Uses :class:`deltaz.data.DepthRefinementDataset` (``train=False``): its fixed per-(scan, view)
    corruption gives the initial depth, and its pair.txt-based sample list gives each view's source
    views (at most ``num_src_views``, fewer when the scan has fewer views).
    """
    from deltaz.data import DepthRefinementDataset
    from deltaz.io.dtu import layout

    n_views = len(layout.list_views(Path(data_root) / scan))
    num_src = max(0, min(int(num_src_views), n_views - 1))
    common = dict(preset=preset, train=False, use_images=use_images)
    single = DepthRefinementDataset(data_root, [scan], num_views=1, **common)
    view_ids = [ids[0] for _, ids in single.samples]
    position = {vid: i for i, vid in enumerate(view_ids)}
    if num_src > 0:
        with_sources = DepthRefinementDataset(data_root, [scan], num_views=1 + num_src, **common)
        sources = {ids[0]: [position[s] for s in ids[1:]] for _, ids in with_sources.samples}
        src_index = [sources[vid] for vid in view_ids]
    else:
        src_index = [[] for _ in view_ids]
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("depth", "depth_init", "intrinsics", "extrinsics", "image")}
    depth_range = None
    for index in range(len(single)):
        sample = single[index]
        for key in parts:
            if key in sample:
                parts[key].append(sample[key][0])
        depth_range = sample["depth_range"]
    return ScanViews(
        scan=scan,
        view_ids=view_ids,
        depth=torch.stack(parts["depth"]),
        depth_init=torch.stack(parts["depth_init"]),
        intrinsics=torch.stack(parts["intrinsics"]),
        extrinsics=torch.stack(parts["extrinsics"]),
        image=torch.stack(parts["image"]) if parts["image"] else None,
        depth_range=depth_range,
        src_index=src_index,
    )


def _split_config(train_config: Mapping[str, Any]) -> dict[str, Any]:
    from deltaz.engine.config import TrainConfig

    defaults = TrainConfig()
    return {
        "data_root": train_config.get("data_root") or "",
        "val_split": float(train_config.get("val_split", defaults.val_split)),
        "seed": int(train_config.get("seed", defaults.seed)),
        "split": str(train_config.get("split", defaults.split)),
    }


def resolve_scans(data_root: str | Path, split: str, train_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Which scans to evaluate and which to tune the baselines on.

    The training split is recovered with :func:`deltaz.data.split_scans` from the checkpoint's
    ``train_config`` (``data_root``, ``val_split``, ``seed``, ``split``); when its ``data_root`` no longer
    exists, ``data_root`` is split with the same settings instead.

    Returns ``{"eval": [...], "val": [...], "train": [...], "split_root": Path, "mode": "random" | "mvsnet"}``;
    ``val`` are the validation scans of ``split_root`` (the baselines' tuning set).
    Raises :class:`ConfigError` for an unknown split, :class:`DataError` when it selects no scan.
    """
    from deltaz.data import split_scans
    from deltaz.io.dtu import layout
    from deltaz.io.dtu.splits import scan_list

    if split not in ("val", "test", "all", "train"):
        raise ConfigError(f"split={split!r}: expected 'val', 'test', 'all' or 'train'")
    data_root = Path(data_root)
    root_scans = layout.list_scans(data_root)
    if not root_scans:
        raise DataError(f"data_root={str(data_root)!r}: no train-ready scans (scan*/ with meta.json)")
    cfg = _split_config(train_config or {})
    split_root = Path(cfg["data_root"]) if cfg["data_root"] and Path(cfg["data_root"]).is_dir() else data_root
    split_scans_names = layout.list_scans(split_root)
    sources = [str(layout.read_meta(split_root / s).get("source", "")) for s in split_scans_names]
    mode = cfg["split"]
    if mode == "auto":
        mode = "mvsnet" if sources and all(s.lower().startswith("dtu") for s in sources) else "random"
    train, val = split_scans(split_scans_names, cfg["val_split"], seed=cfg["seed"], split=mode, sources=sources)
    if split == "val":
        chosen = [s for s in root_scans if s in set(val)]
    elif split == "train":
        chosen = [s for s in root_scans if s in set(train)]
    elif split == "test":
        if mode == "mvsnet":
            chosen = [s for s in root_scans if s in set(scan_list("test"))]
        else:
            seen = set(train) | set(val)
            chosen = [s for s in root_scans if s not in seen]
    else:
        chosen = list(root_scans)
    if not chosen:
        raise DataError(
            f"--split {split}: no scan of data_root={str(data_root)!r} is in that split "
            f"(training root {str(split_root)!r}: train {train[:4]}..., val {val}); for held-out scans pass "
            f"their own root (e.g. data/demo/test_ready) with --split test or --split all"
        )
    return {"eval": chosen, "val": list(val), "train": list(train), "split_root": split_root, "mode": mode}


# =========================================================================== methods
def load_refiner(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any], Path]:
    """A trained refiner from a checkpoint (a ``.pt`` file, or a folder holding ``best.pt``/``last.pt``).

    Returns ``(model in eval mode on device, the run's TrainConfig dict, the file read)``.
    """
    from deltaz.engine import checkpoint as ckpt
    from deltaz.engine.config import TrainConfig
    from deltaz.model import build_model

    path = Path(path)
    if path.is_dir():
        for name in (ckpt.BEST_NAME, ckpt.LAST_NAME):
            if (path / name).is_file():
                path = path / name
                break
    state = ckpt.load_checkpoint(path, map_location="cpu")
    config = dict(state.get("config") or {})
    model_cfg = dict(state.get("model_config") or {})
    if model_cfg:
        name = model_cfg.pop("name")
    else:
        train_cfg = TrainConfig.from_dict(config)
        name, model_cfg = train_cfg.model, train_cfg.model_kwargs()
    model = build_model(name, **model_cfg)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    return model, config, path


def baseline_method(name: str, params: Mapping[str, Any]) -> Method:
    """A registry baseline as a method: its inputs are the initial depths (sources' too)."""
    fn = BASELINES[name]

    def apply(views: ScanViews, idx: Sequence[int]) -> torch.Tensor:
        image = views.image[list(idx)] if name in NEEDS_IMAGE else None
        multiview = views.multiview(idx, views.depth_init) if name in NEEDS_MULTIVIEW else None
        return fn(views.depth_init[list(idx)], image, dict(params), multiview)

    return apply


def model_method(model: torch.nn.Module, device: torch.device | str, keep_holes: bool = True) -> Method:
    """A refiner as a method: ``depth_refined = depth_init + Δz`` via :func:`deltaz.model.refine`.

    ``keep_holes`` as in training (``not TrainConfig.fill_holes``): holes of the initial depth stay holes
    unless the model was trained to fill them.
    """
    from deltaz.model import refine

    @torch.no_grad()
    def apply(views: ScanViews, idx: Sequence[int]) -> torch.Tensor:
        idx = list(idx)
        image = None
        if getattr(model, "in_channels", 1) == 4:
            if views.image is None:
                raise DataError(f"{views.scan}: the model takes images (use_images) but the scan has no images/")
            image = views.image[idx].to(device)
        depth_range = views.depth_range.reshape(1, 2).expand(len(idx), 2).to(device)
        out = refine(model, views.depth_init[idx].to(device), image=image, depth_range=depth_range,
                     keep_holes=keep_holes)
        return out["depth_refined"].float().cpu()

    return apply


def confidence_method(model: torch.nn.Module, device: torch.device | str) -> Method:
    """A refiner's confidence map ``(N, H, W)`` in (0, 1] (:func:`deltaz.model.refine`), as a method."""
    from deltaz.model import refine

    @torch.no_grad()
    def apply(views: ScanViews, idx: Sequence[int]) -> torch.Tensor:
        idx = list(idx)
        image = views.image[idx].to(device) if getattr(model, "in_channels", 1) == 4 else None
        depth_range = views.depth_range.reshape(1, 2).expand(len(idx), 2).to(device)
        out = refine(model, views.depth_init[idx].to(device), image=image, depth_range=depth_range)
        return out["confidence"].float().cpu()

    return apply


def apply_method(method: Method, views: ScanViews, batch_size: int = 8) -> torch.Tensor:
    """``method`` on every view of the scan, ``batch_size`` views at a time → ``(N, H, W)`` mm.

    Negative or non-finite outputs become holes (0), the layout's "no value".
    """
    outs = [method(views, idx) for idx in _chunks(range(len(views)), batch_size)]
    out = torch.cat(outs).float()
    return torch.where(torch.isfinite(out) & (out > 0), out, torch.zeros_like(out))


def consistency_counts(depth_all: torch.Tensor, views: ScanViews, batch_size: int = 8) -> tuple[int, int]:
    """(consistent pixels, pixels with a depth) of ``depth_all (N, H, W)`` against the same maps of the
    source views (see the module docstring)."""
    if views.num_src == 0:
        return 0, 0
    consistent = with_depth = 0
    for idx in _chunks(range(len(views)), batch_size):
        mv = views.multiview(idx, depth_all)
        mask, _ = consistency_rate(
            depth_all[idx], mv["K_ref"], mv["E_ref"], mv["depth_src"], mv["K_src"], mv["E_src"], **CONSISTENCY_SETTINGS
        )
        consistent += int(mask.sum())
        with_depth += int((depth_all[idx] > 0).sum())
    return consistent, with_depth


# =========================================================================== tuning
def tune_baselines(
    names: Sequence[str],
    tune_root: str | Path,
    val_scans: Sequence[str],
    num_src_views: int = 4,
    preset: str = "mvs",
    use_images: bool = False,
    max_views_per_scan: int | None = 16,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Choose each baseline's parameters on the validation scans ``val_scans`` of ``tune_root``.

    Up to ``max_views_per_scan`` evenly spaced reference views per scan are used (None = all). Returns
    ``{name: {"params": {...}, "val_mae_mm": float, "tuned_on": [scans], "n_views": int}}``; without
    validation scans every baseline keeps its default parameters (``"tuned_on": []``).
    """
    from tqdm.auto import tqdm

    names = [n for n in names if n != "identity"]
    if not names:
        return {}
    if not val_scans:
        return {n: {"params": {}, "val_mae_mm": None, "tuned_on": [], "n_views": 0} for n in names}
    samples: list[dict[str, Any]] = []
    for scan in tqdm(list(val_scans), desc="load val scans", unit="scan", disable=not progress, leave=False):
        views = load_scan_views(tune_root, scan, num_src_views, preset, use_images)
        refs = list(range(len(views)))
        if max_views_per_scan is not None and len(refs) > max_views_per_scan:
            refs = sorted({int(round(x)) for x in np.linspace(0, len(refs) - 1, max_views_per_scan)})
        for idx in _chunks(refs, batch_size):
            samples.append({
                "scene": scan,
                "depth_init": views.depth_init[idx],
                "depth": views.depth[idx],
                "image": None if views.image is None else views.image[idx],
                "multiview": views.multiview(idx, views.depth_init),
            })
    n_views = sum(len(s["depth"]) for s in samples)
    chosen: dict[str, dict[str, Any]] = {}
    for name in tqdm(names, desc="tune baselines (val)", unit="baseline", disable=not progress, leave=False):
        params, mae = tune_baseline(name, samples)
        chosen[name] = {"params": params, "val_mae_mm": mae, "tuned_on": list(val_scans), "n_views": n_views}
    return chosen


# =========================================================================== evaluation
def _resolve_device(device: str | None) -> torch.device:
    return resolve_device(device)


def _baseline_names(baselines: str | Sequence[str] | None) -> list[str]:
    if baselines is None or baselines == "none":
        return []
    if isinstance(baselines, str):
        if baselines == "all":
            baselines = list(CLASSICAL_BASELINES)
        else:
            baselines = [b.strip() for b in baselines.split(",") if b.strip()]
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ConfigError(f"--baselines: unknown {unknown}; expected 'all', 'none' or names from {sorted(BASELINES)}")
    return [b for b in baselines if b != "identity"]


def _metric_row(
    method: str, scan: str, acc: MetricAccumulator, acc_valid: MetricAccumulator, cons: tuple[int, int],
    harm: HarmAccumulator | None = None,
) -> dict[str, Any]:
    from deltaz.engine.report import HARM_COLUMNS, METRIC_COLUMNS

    values = acc.result()
    row: dict[str, Any] = {"method": method, "scan": scan}
    for key in METRIC_COLUMNS:
        if key != "consistency":
            row[key] = values[key]
    row["consistency"] = 100.0 * cons[0] / cons[1] if cons[1] else float("nan")
    row["mae_valid_mm"] = acc_valid.result()["mae_mm"]
    row["hole_pct"] = values["hole_pct"]
    row["n_pixels"] = values["n_pixels"]
    harm_values = harm.result() if harm is not None else {}
    for key in HARM_COLUMNS:
        row[key] = harm_values.get(key, float("nan"))
    return row


def _figure_layers(views: ScanViews, i: int, refined: torch.Tensor) -> dict[str, Any]:
    return {
        "depth_init": views.depth_init[i].numpy(),
        "depth_refined": refined[i].numpy(),
        "depth": views.depth[i].numpy(),
        "delta_z": (refined[i] - views.depth_init[i]).numpy(),
    }


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
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on the ``split`` scans of ``data_root``; see the module docstring.

    Returns a dict with ``rows`` (one per method and scan, plus ``scan="all"``), ``pointclouds``
    (rows of accuracy / completeness / overall in mm), ``baseline_params`` (the values chosen on the
    validation scans), ``scans``, ``val_scans``, ``settings``, ``figures``/``ply`` (paths) and
    ``elapsed_s``; the same is written to ``out_dir`` (when given) as ``metrics.json`` and ``metrics.md``.
    With a confidence head also ``confidence`` (sparsification curves and ``ause_mm``, see the module
    docstring); ``fusion_conf_thresh`` needs one. ``adapt_minutes > 0`` adds the row ``deltaz+adapt``: the
    checkpoint adapted to each evaluated scan itself for that many minutes, without its ground truth
    (:func:`deltaz.engine.adapt.adapt_method`).
    """
    from tqdm.auto import tqdm

    from deltaz.io.dtu import layout

    t_start = time.perf_counter()
    dev = _resolve_device(device)
    model, train_config, checkpoint_path = load_refiner(checkpoint, dev)
    methods_needing_images = set()
    if getattr(model, "in_channels", 1) == 4:
        methods_needing_images.add("deltaz")
    compare = compare_config = None
    if compare_checkpoint is not None:
        compare, compare_config, compare_path = load_refiner(compare_checkpoint, dev)
        if getattr(compare, "in_channels", 1) == 4:
            methods_needing_images.add("mvsnet_refine")
    names = _baseline_names(baselines)
    methods_needing_images |= {n for n in names if n in NEEDS_IMAGE}

    scans = resolve_scans(data_root, split, train_config)
    data_root = Path(data_root)
    split_root = scans["split_root"]
    all_have_images = all(
        bool(layout.read_meta(root / s).get("has_images"))
        for root, group in ((data_root, scans["eval"]), (split_root, scans["val"]))
        for s in group
    )
    notes: list[str] = []
    if not all_have_images:
        for method in sorted(methods_needing_images & {"deltaz", "mvsnet_refine"}):
            raise DataError(f"{method} takes RGB images but some scans have no images/; parse the data with images")
        skipped = [n for n in names if n in NEEDS_IMAGE]
        if skipped:
            notes.append(f"skipped {skipped}: the scans have no images")
        names = [n for n in names if n not in NEEDS_IMAGE]
    use_images = all_have_images and bool(methods_needing_images & ({"deltaz", "mvsnet_refine"} | set(names)))

    # ---- baselines: parameters from the validation scans only
    baseline_params = tune_baselines(
        names, split_root, scans["val"], num_src_views, preset, use_images, tune_max_views, batch_size, progress
    )
    if names and not scans["val"]:
        notes.append("no validation scans: baselines use their default parameters")
    methods: dict[str, Method] = {"identity": baseline_method("identity", {})}
    for name in names:
        methods[name] = baseline_method(name, baseline_params[name]["params"])
    if compare is not None:
        methods["mvsnet_refine"] = model_method(compare, dev, keep_holes=not compare_config.get("fill_holes", False))
    methods["deltaz"] = model_method(model, dev, keep_holes=not train_config.get("fill_holes", False))
    if adapt_minutes > 0:
        from deltaz.engine.adapt import adapt_method

        methods["deltaz+adapt"] = adapt_method(model, dev, not train_config.get("fill_holes", False), data_root,
                                               preset, adapt_minutes, progress)
    order = [m for m in METHOD_ORDER if m in methods]
    has_confidence = bool(getattr(model, "out_confidence", False))
    if fusion_conf_thresh is not None and not has_confidence:
        raise ConfigError(f"fusion_conf_thresh={fusion_conf_thresh}: the checkpoint's model has no confidence "
                          "head (train it with --confidence)")
    conf_errors: list[torch.Tensor] = []
    conf_values: list[torch.Tensor] = []

    out_path = Path(out_dir) if out_dir is not None else None
    if out_path is not None:
        out_path.mkdir(parents=True, exist_ok=True)
    acc_all = {m: MetricAccumulator() for m in order}
    acc_valid_all = {m: MetricAccumulator() for m in order}
    harm_all = {m: HarmAccumulator() for m in order}
    cons_all = {m: [0, 0] for m in order}
    per_scan_rows: list[dict[str, Any]] = []
    pc_rows: list[dict[str, Any]] = []
    hist_errors: dict[str, list[np.ndarray]] = {m: [] for m in order}
    figure_paths: list[str] = []
    ply_paths: list[str] = []
    ply_scan = ply_scan or scans["eval"][0]
    n_views_total = 0
    num_src_used = 0
    hist_stride = 1

    bar = tqdm(scans["eval"], desc=f"evaluate ({split})", unit="scan", disable=not progress)
    for scan_index, scan in enumerate(bar):
        bar.set_postfix_str(scan)
        views = load_scan_views(data_root, scan, num_src_views, preset, use_images)
        n_views_total += len(views)
        num_src_used = views.num_src
        if scan_index == 0:
            n_gt = int((views.depth > 0).sum()) * len(scans["eval"])
            hist_stride = max(1, math.ceil(n_gt / HISTOGRAM_MAX_PIXELS))
        outputs = {m: apply_method(methods[m], views, batch_size) for m in order}
        confidence = apply_method(confidence_method(model, dev), views, batch_size) if has_confidence else None
        if confidence is not None:
            both = (views.depth > 0) & (outputs["deltaz"] > 0)
            stride = max(1, math.ceil(int((views.depth > 0).sum()) * len(scans["eval"]) / SPARSIFICATION_MAX_PIXELS))
            conf_errors.append((outputs["deltaz"] - views.depth)[both][::stride].abs())
            conf_values.append(confidence[both][::stride])
        has_init = views.depth_init > 0
        for m in order:
            acc = MetricAccumulator().update(outputs[m], views.depth)
            acc_valid = MetricAccumulator().update(outputs[m], views.depth, has_init)
            harm = HarmAccumulator().update(outputs[m], views.depth_init, views.depth)
            cons = consistency_counts(outputs[m], views, batch_size)
            per_scan_rows.append(_metric_row(m, scan, acc, acc_valid, cons, harm))
            acc_all[m].merge(acc)
            acc_valid_all[m].merge(acc_valid)
            harm_all[m].merge(harm)
            cons_all[m][0] += cons[0]
            cons_all[m][1] += cons[1]
            both = (views.depth > 0) & (outputs[m] > 0)
            hist_errors[m].append((outputs[m] - views.depth)[both][::hist_stride].numpy())
        if pointclouds:
            pc_rows += _score_pointclouds(views, outputs, out_path if scan == ply_scan else None, ply_paths,
                                          confidence, fusion_conf_thresh)
        if figures and out_path is not None and scan_index < n_figure_views:
            figure_paths.append(_depth_figure(views, outputs, out_path, scan_index))
    bar.close()

    rows = [_metric_row(m, "all", acc_all[m], acc_valid_all[m], tuple(cons_all[m]), harm_all[m]) for m in order]
    rows += sorted(per_scan_rows, key=lambda r: (scans["eval"].index(r["scan"]), order.index(r["method"])))
    if pc_rows:
        pc_rows = _pointcloud_summary(pc_rows, order) + pc_rows
    if figures and out_path is not None:
        figure_paths.append(_histogram_figure(hist_errors, order, out_path))
    confidence_result = None
    if conf_errors and sum(e.numel() for e in conf_errors) > 0:
        from deltaz.ops.confidence import sparsification
        from deltaz.viz import render_sparsification

        spars = sparsification(torch.cat(conf_errors), torch.cat(conf_values))
        confidence_result = spars.as_dict()
        confidence_result["ause_mm"] = confidence_result.pop("ause")
        confidence_result["ause_random_mm"] = confidence_result.pop("ause_random")
        if figures and out_path is not None:
            from deltaz.engine.report import save_figure

            fig = render_sparsification({"deltaz": spars}, title=f"Sparsification of deltaz's confidence ({split})")
            path = save_figure(fig, out_path / "figures" / "sparsification.png")
            figure_paths.append(str(path.relative_to(out_path)))

    result: dict[str, Any] = {
        "rows": rows,
        "pointclouds": pc_rows,
        "baseline_params": baseline_params,
        "checkpoint": str(checkpoint_path),
        "compare_checkpoint": str(compare_path) if compare is not None else None,
        "data_root": str(data_root),
        "split": split,
        "scans": scans["eval"],
        "val_scans": scans["val"],
        "tune_root": str(split_root),
        "train_scans": scans["train"],
        "split_mode": scans["mode"],
        "settings": {
            "preset": preset,
            "num_src_views": num_src_used,
            "consistency": dict(CONSISTENCY_SETTINGS),
            "tune_max_views_per_scan": tune_max_views,
            "device": str(dev),
            "n_views_evaluated": n_views_total,
            "use_images": use_images,
            "deltaz_fills_holes": bool(train_config.get("fill_holes", False)),
            "fusion_conf_thresh": fusion_conf_thresh,
            "adapt_minutes": adapt_minutes,
        },
        "confidence": confidence_result,
        "notes": notes,
        "figures": figure_paths,
        "ply": ply_paths,
        "elapsed_s": time.perf_counter() - t_start,
    }
    if out_path is not None:
        write_metrics(result, out_path)
    return result


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


# =========================================================================== point clouds and figures
def _score_pointclouds(
    views: ScanViews,
    outputs: Mapping[str, torch.Tensor],
    ply_dir: Path | None,
    ply_paths: list[str],
    confidence: torch.Tensor | None = None,
    conf_thresh: float | None = None,
) -> list[dict[str, Any]]:
    from deltaz.ops.pointcloud import fuse_depths, gt_point_cloud, score_point_cloud, write_ply

    if views.num_src == 0:
        return []
    min_views = min(2, views.num_src)
    gt_points = gt_point_cloud(views.depth, views.intrinsics, views.extrinsics)
    images = views.image
    rows = []
    for method in POINTCLOUD_METHODS:
        if method not in outputs:
            continue
        conf_kw = {}
        if method == "deltaz" and conf_thresh is not None:
            conf_kw = {"confidence": confidence, "conf_thresh": conf_thresh}
        fused = fuse_depths(outputs[method], views.intrinsics, views.extrinsics, views.src_index, images=images,
                            min_views=min_views, **conf_kw)
        points, colors = fused if images is not None else (fused, None)
        score = score_point_cloud(points, gt_points)
        rows.append({"method": method, "scan": views.scan, **score})
        if ply_dir is not None and method in ("identity", "deltaz"):
            path = write_ply(ply_dir / "pointclouds" / f"{views.scan}_{method}.ply", points, colors)
            ply_paths.append(str(path.relative_to(ply_dir)))
    if ply_dir is not None:
        path = write_ply(ply_dir / "pointclouds" / f"{views.scan}_gt.ply", gt_points)
        ply_paths.append(str(path.relative_to(ply_dir)))
    return rows


def _pointcloud_summary(pc_rows: list[dict[str, Any]], order: Sequence[str]) -> list[dict[str, Any]]:
    """Mean over scans per method (``scan = "all"``); point counts are summed."""
    summary = []
    for method in order:
        rows = [r for r in pc_rows if r["method"] == method]
        if not rows:
            continue
        row: dict[str, Any] = {"method": method, "scan": "all"}
        for key in ("accuracy_mm", "completeness_mm", "overall_mm", "accuracy_inlier_pct", "completeness_inlier_pct"):
            row[key] = float(np.mean([r[key] for r in rows]))
        for key in ("n_pred", "n_gt"):
            row[key] = int(sum(r[key] for r in rows))
        summary.append(row)
    return summary


def _depth_figure(views: ScanViews, outputs: Mapping[str, torch.Tensor], out_dir: Path, scan_index: int) -> str:
    from deltaz.ops.metrics import depth_metrics
    from deltaz.engine.report import save_figure
    from deltaz.viz import layers_from_view, render_depth_row

    i = len(views) // 2 if scan_index % 2 else 0
    refined = outputs["deltaz"]
    layers = layers_from_view(_figure_layers(views, i, refined))
    mae_init = depth_metrics(views.depth_init[i], views.depth[i])["mae_mm"]
    mae_ref = depth_metrics(refined[i], views.depth[i])["mae_mm"]
    title = f"{views.scan} view {views.view_ids[i]}: MAE initial {mae_init:.2f} mm -> refined {mae_ref:.2f} mm"
    fig = render_depth_row(layers, title=title)
    path = save_figure(fig, out_dir / "figures" / f"{views.scan}_view{views.view_ids[i]:03d}.png")
    return str(path.relative_to(out_dir))


def _histogram_figure(errors: Mapping[str, list[np.ndarray]], order: Sequence[str], out_dir: Path) -> str:
    from deltaz.engine.report import save_figure
    from deltaz.viz import render_error_histogram

    wanted = ("identity", "median", "bilateral", "guided", "geometric_averaging", "mvsnet_refine", "deltaz")
    shown = [m for m in order if m in wanted]
    data = {m: np.concatenate(errors[m]) if errors[m] else np.zeros(0) for m in shown}
    fig = render_error_histogram(data, title="|depth - gt| over pixels with a depth (holes excluded)")
    path = save_figure(fig, out_dir / "figures" / "error_histogram.png")
    return str(path.relative_to(out_dir))


# =========================================================================== files
def metrics_markdown(result: Mapping[str, Any], overall_table: bool = True) -> str:
    """``metrics.md``: overall table (unless ``overall_table=False``), per-scan table, point clouds, chosen
    baseline parameters, figures."""
    from deltaz.engine.report import POINTCLOUD_COLUMNS, TABLE_BOLD, TABLE_COLUMNS, markdown_table

    rows = result["rows"]
    bold = TABLE_BOLD
    overall = [r for r in rows if r["scan"] == "all"]
    per_scan = [r for r in rows if r["scan"] != "all"]
    parts = [
        "# DeltaZ evaluation\n\n",
        f"- checkpoint: `{result['checkpoint']}`\n",
        f"- data: `{result['data_root']}`, split `{result['split']}`: {', '.join(result['scans'])}\n",
        f"- baselines tuned on the validation scans of `{result['tune_root']}`: "
        f"{', '.join(result['val_scans']) or 'none (default parameters)'}\n",
        f"- initial depth: preset `{result['settings']['preset']}` (fixed per scan and view); "
        f"{result['settings']['n_views_evaluated']} views, {result['settings']['num_src_views']} source views each\n",
        "- metrics over every ground-truth pixel (a hole counts as an error of the full depth); "
        "`mae_valid_mm` over the pixels where the initial depth exists; mm, `abs_rel` a fraction, rates in %\n",
        "- do-no-harm, over the pixels with ground truth and an initial depth: `mae_good_mm` = MAE over those "
        "the initial depth has within 2 mm; `harm_pct` = % made more than 1 mm worse than the initial depth\n",
        "- `consistency`: % of a method's pixels that pass MVSNet's geometric check (1 px, 1 %) against the "
        "same method's output in at least one source view\n",
    ]
    for note in result.get("notes", []):
        parts.append(f"- note: {note}\n")
    if overall_table:
        parts += ["\n## All scans\n\n", markdown_table(overall, TABLE_COLUMNS, bold)]
    parts += ["\n## Per scan\n\n", markdown_table(per_scan, TABLE_COLUMNS, bold)]
    if result.get("pointclouds"):
        parts += [
            "\n## Point clouds (fused, scored against the ground-truth cloud; DTU definitions, 20 mm cut)\n\n",
            markdown_table(result["pointclouds"], POINTCLOUD_COLUMNS, {"overall_mm": "min"}),
        ]
    if result.get("confidence"):
        conf = result["confidence"]
        parts.append(
            f"\n## Confidence\n\nAUSE of deltaz's confidence: {conf['ause_mm']:.3f} mm (a random order: "
            f"{conf['ause_random_mm']:.3f} mm; 0 = perfect), over {conf['n_pixels']} pixels.\n"
        )
    if result.get("baseline_params"):
        parts.append("\n## Baseline parameters (chosen by MAE on the validation scans)\n\n")
        parts.append("| baseline | parameters | val MAE (mm) |\n|---|---|---|\n")
        for name, info in result["baseline_params"].items():
            params = ", ".join(f"{k}={v}" for k, v in info["params"].items()) or "defaults"
            mae = info.get("val_mae_mm")
            parts.append(f"| {name} | {params} | {'–' if mae is None else f'{mae:.2f}'} |\n")
    if result.get("figures"):
        parts.append("\n## Figures\n\n")
        parts += [f"![{Path(p).stem}]({p})\n\n" for p in result["figures"]]
    if result.get("ply"):
        parts.append("Point clouds (PLY): " + ", ".join(f"`{p}`" for p in result["ply"]) + "\n")
    return "".join(parts)


def write_metrics(result: Mapping[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``metrics.json`` and ``metrics.md`` into ``out_dir``. Returns both paths."""
    from deltaz.io.dtu.formats import atomic_write_text
    from deltaz.engine.report import write_json

    out_dir = Path(out_dir)
    json_path = write_json(out_dir / "metrics.json", result)
    md_path = out_dir / "metrics.md"
    atomic_write_text(md_path, metrics_markdown(result))
    return json_path, md_path


def summary_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The ``scan = "all"`` rows as a fixed-width text table (what ``deltaz evaluate`` prints)."""
    from deltaz.engine.report import HARM_COLUMNS, format_value

    columns = ("method", "mae_mm", "rmse_mm", "acc_1mm", "acc_2mm", "err_4mm", "delta_1_25", "consistency",
               "mae_valid_mm", "hole_pct", *HARM_COLUMNS)
    overall = [r for r in rows if r["scan"] == "all"]
    cells = [[format_value(c, r.get(c)) for c in columns] for r in overall]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(columns, widths)))]
    for row in cells:
        lines.append("  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


# =========================================================================== CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``deltaz evaluate``."""
    parser.add_argument("--checkpoint", required=True,
                        help="trained DeltaZUnet: a .pt file or a folder with best.pt/last.pt")
    parser.add_argument("--data-root", required=True, help="folder of train-ready scans (scan*/)")
    parser.add_argument(
        "--split", default="val", choices=["val", "test", "all", "train"],
        help="which scans of --data-root: the checkpoint's validation scans, the scans it never saw (test), "
        "or all (default: val)",
    )
    parser.add_argument("--preset", default="mvs", metavar="MODEL",
                        help="initial depth for scans without initial/: mvs, mde, noise, none (simulated), planesweep[_raw] "
                        "(deltaz.ops.mvs on the images, cached per scan) or a weighted mix (default: mvs)")
    parser.add_argument("--out", default="runs/eval",
                        help="output folder for metrics.json, metrics.md, figures (default: runs/eval)")
    parser.add_argument("--baselines", default="all",
                        help="'all', 'none' or a comma-separated list of baselines (median,bilateral,...)")
    parser.add_argument("--compare-checkpoint", default=None,
                        help="a trained MVSNet-style refiner (deltaz train --model mvsnet_refine) to add as "
                        "mvsnet_refine")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    parser.add_argument("--num-src-views", type=int, default=4, help="source views per reference view (default 4)")
    parser.add_argument("--batch-size", type=int, default=8, help="views per forward pass (default 8)")
    parser.add_argument("--tune-max-views", type=int, default=16,
                        help="validation views per scan used to tune the baselines (default 16; 0 = all)")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.add_argument("--no-pointclouds", action="store_true", help="skip point-cloud fusion and scoring")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--fusion-conf-thresh", type=float, default=None,
                        help="drop deltaz pixels with confidence below this from its fused point cloud "
                        "(models trained with --confidence; confidence = 1/(1 + b/1 mm))")
    parser.add_argument("--adapt-minutes", type=float, default=0.0,
                        help="also score deltaz+adapt: the checkpoint adapted to each evaluated scan for this many "
                        "minutes without its ground truth (deltaz adapt; default 0 = off)")


def run(args: argparse.Namespace) -> int:
    """``deltaz evaluate``: evaluate, print the overall table, say where the files are."""
    try:
        result = run_evaluation(
            args.checkpoint, args.data_root, args.split, args.preset, args.out,
            baselines=args.baselines, compare_checkpoint=args.compare_checkpoint, device=args.device,
            num_src_views=args.num_src_views, batch_size=args.batch_size,
            tune_max_views=args.tune_max_views or None, figures=not args.no_figures,
            pointclouds=not args.no_pointclouds, progress=not args.no_progress,
            fusion_conf_thresh=args.fusion_conf_thresh, adapt_minutes=args.adapt_minutes,
        )
    except DeltaZError as error:
        print(f"deltaz evaluate: error: {error}", file=sys.stderr)
        return 1
    print(summary_table(result["rows"]))
    print(f"\nwrote {Path(args.out) / 'metrics.md'} and metrics.json ({result['elapsed_s']:.1f} s)")
    return 0
