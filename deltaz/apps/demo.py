"""``deltaz demo``: the whole pipeline on synthetic DTU-like data, on a time budget (``make demo``).

Stages, each with a progress bar and a wall time in the report:

1-3. **synth, parse, sweep** (:mod:`deltaz.apps.demo_data`) — render ``--scans`` realistic DTU-like scans with
   ``--lights`` illuminations, split them by scene (seeded; ``--test-scans`` held out in ``<data>/test_ready``, the
   rest in ``<data>/train_ready``; training never sees ``test_ready``), parse every light, and run the plane-sweep
   stereo (:mod:`deltaz.ops.mvs`) on every scan: a real algorithm's initial depth.
4. **train** — the refiner (:func:`deltaz.engine.train.train`; SelectUnet, the U-Net with the selection head, or
   DeltaZUnet with ``--model deltaz_unet``) on ``train_ready`` for at most ``--cycles`` learning-rate cycles (default 1,
   so that a faster machine trains what the README measured) and ``--minutes`` minutes (to the end of the last whole
   cycle that fits: ``whole_cycles``), on random 64×80 windows (``--crop``), its initial depth drawn per
   view from ``--preset`` (default: :data:`~deltaz.engine.config.DEMO_PRESET`, the simulated ``stereo`` model 45 %,
   ``mvs`` 25 %, the raw plane sweep 10 %, already-right depth 20 %); ``--val-scans`` of its scans are the validation
   split, which picks ``best.pt`` and tunes the baselines. Then the MVSNet-style refinement network
   (:class:`deltaz.model.MVSNetRefine`, 32 channels as in MVSNet) is trained the same way for ``--compare-minutes``
   (default: the same budget, used whole; 0 skips it): the learned baseline.
5. **evaluate** — :func:`deltaz.engine.evaluate.run_evaluation` on every scan of ``test_ready``, input
   ``--eval-preset`` (default: the raw plane sweep), against the input, every classical baseline (tuned on the
   validation scans only) and the MVSNet-style network: ``metrics.json`` (with the do-no-harm columns ``mae_good_mm``
   and ``harm_pct``), ``metrics.md``, figures, point clouds. ``--adapt-minutes M`` adds the row ``deltaz+adapt``: the
   refiner adapted to each test scan (:mod:`deltaz.engine.adapt`, no ground truth). The checkpoint's rows run with
   :mod:`deltaz.ops.agreement` and :mod:`deltaz.ops.smooth` (not ``deltaz+adapt``; ``--no-mirror-agreement``,
   ``--no-smooth``: without; ``--weighted-median``: with :func:`deltaz.model.median_selection`).
6. **report** — ``<out>/report.md``: the table, the quality targets, figures, settings, machine, wall times.

``--force`` redoes everything. The defaults are sized for a 2-core laptop CPU: 12 scans of 49 views at 160×128, a
16-channel U-Net with image guidance and the selection head, 4 minutes (and 4 for the MVSNet-style baseline). The
refiner fills the input's holes from a classical fill (``prefill_holes``) and normalises depth by 3 % of the input's
own median depth (``depth_scale_rel``), so it works at any scene scale.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deltaz.apps.demo_data import data_stamp, split_demo_scans, stage_parse, stage_sweep, stage_synth
from deltaz.apps.demo_targets import quality_targets
from deltaz.core.atomic import atomic_write_text
from deltaz.core.cache import jsonable, read_marker
from deltaz.core.errors import ConfigError, DeltaZError
from deltaz.core.options import parse_hw
from deltaz.core.paths import data_dir, runs_dir
from deltaz.engine.config import TrainConfig, demo_train_config
from deltaz.engine.device import resolve_device
from deltaz.engine.evaluate import run_evaluation
from deltaz.engine.report import demo_report_markdown, format_seconds, machine_info, summary_table, write_json
from deltaz.engine.train import train
from deltaz.engine.train.cli import config_help
from deltaz.model.selection import add_median_flag
from deltaz.ops.agreement import MIRROR_AGREEMENT, add_mirror_flags
from deltaz.ops.corrupt import INITIAL_MODELS, parse_initial_mix
from deltaz.ops.smooth import SURFACE_SMOOTHING, add_smooth_flags

__all__ = ["DemoSettings", "run_demo", "add_arguments", "run", "quality_targets", "split_demo_scans", "train_config"]


@dataclass
class DemoSettings:
    """Every setting of a demo run. Paths are made absolute by :func:`run_demo`.

    ``train`` is the training recipe (:func:`deltaz.engine.config.demo_train_config`); :func:`train_config`
    sets its run-specific fields (data root, validation share, seed, model, time budget, device, folders,
    ``num_workers``, ``progress``) from the demo's own settings.
    """

    out: str = ""  # default: deltaz.core.paths.runs_dir() / "demo"
    data: str = ""  # default: deltaz.core.paths.data_dir() / "demo"
    minutes: float = 4.0
    cycles: int = 1  # the refiner's learning-rate cycles at most (scheduler_t0 epochs each); the budget may stop it first
    scans: int = 12
    test_scans: int = 3
    val_scans: int = 2
    seed: int = 0  # scenes, split and training
    device: str = "auto"
    force: bool = False
    # data
    views: int = 49
    image_size: tuple[int, int] = (256, 320)  # rendered image (H, W); parse area-averages to the depth size
    resolution: tuple[int, int] | None = None  # train-ready (H, W); None = the depth maps' 128x160
    lights: int = 2  # illuminations rendered per view; training draws one per sample, evaluation uses the first
    style: str = "real"  # deltaz.io.synthetic style: walls, photo textures, shadows, speculars, camera noise
    supersample: int = 2  # anti-aliasing samples per pixel along each axis
    eval_preset: str = "planesweep_raw"  # the held-out scans' initial depth (training mixes it in: train.preset)
    num_workers: int | None = None  # data-loader processes; None = auto (0 on CPU, up to 8 on CUDA)
    # the MVSNet-style refinement network, trained by the same pipeline as a baseline (0 = skip it)
    compare_minutes: float | None = None  # None = the same budget as the refiner (--minutes)
    compare_base_channel: int = 32  # MVSNet's width
    # evaluation
    num_src_views: int = 4
    pointclouds: bool = True
    adapt_minutes: float = 0.0  # > 0: the row deltaz+adapt, `deltaz adapt` on each test scan (minutes per scan)
    mirror_agreement: bool = MIRROR_AGREEMENT  # deltaz, deltaz+gate, search+deltaz with deltaz.ops.agreement (2x time)
    weighted_median: bool = False  # the checkpoint's rows with the selection head's weighted median
    smooth: bool = SURFACE_SMOOTHING  # deltaz, deltaz+gate, search+deltaz with deltaz.ops.smooth
    progress: bool = True
    train: TrainConfig = field(default_factory=demo_train_config)

    def budget_minutes(self, model: str) -> float:
        """Training budget of ``model`` (the refiner, or the baseline "mvsnet_refine") in minutes."""
        if model == "mvsnet_refine" and self.compare_minutes is not None:
            return self.compare_minutes
        return self.minutes

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the flag of the first impossible setting."""
        def need(cond: bool, flag: str, msg: str) -> None:
            if not cond:
                raise ConfigError(f"{flag}: {msg}")

        need(self.minutes > 0, "--minutes", f"must be > 0, got {self.minutes}")
        need(self.cycles >= 1, "--cycles", f"must be >= 1, got {self.cycles}")
        need(self.compare_minutes is None or self.compare_minutes >= 0, "--compare-minutes",
             f"must be >= 0 (0 skips it), got {self.compare_minutes}")
        need(self.adapt_minutes >= 0, "--adapt-minutes", f"must be >= 0 (0 skips it), got {self.adapt_minutes}")
        need(self.test_scans >= 1, "--test-scans", f"must be >= 1, got {self.test_scans}")
        need(self.val_scans >= 1, "--val-scans", f"must be >= 1, got {self.val_scans}")
        need(self.scans >= self.test_scans + self.val_scans + 1, "--scans",
             f"{self.scans} scans leave no training scan after {self.test_scans} test and {self.val_scans} "
             f"validation scans; use at least {self.test_scans + self.val_scans + 1}")
        need(self.num_workers is None or self.num_workers >= 0, "--num-workers", f"must be >= 0, got {self.num_workers}")
        need(self.views >= max(2, self.train.num_views), "--views",
             f"must be >= max(2, num_views), got {self.views}")
        need(1 <= self.lights <= 7, "--lights", f"must be 1..7 (DTU has 7), got {self.lights}")
        for flag, spec in (("--preset", self.train.preset), ("--eval-preset", self.eval_preset)):
            try:
                parse_initial_mix(spec)
            except ConfigError as error:
                raise ConfigError(f"{flag}: {error}") from None

    def report_facts(self) -> dict[str, Any]:
        """The settings the report's "Settings" section names (see :func:`deltaz.engine.report.demo_report_markdown`)."""
        return {"scans": self.scans, "views": self.views, "resolution": self.resolution,
                "image_size": self.image_size, "seed": self.seed, "preset": self.train.preset,
                "eval_preset": self.eval_preset, "minutes": self.minutes}


# =========================================================================== stages
def train_config(settings: DemoSettings, data: Path, out: Path, device: str, model: str | None = None) -> TrainConfig:
    """The :class:`deltaz.engine.config.TrainConfig` of the demo's refiner (``model=None``: the recipe's,
    ``deltaz_select`` unless ``--model`` says ``deltaz_unet``; run folder ``out``) or of its MVSNet-style baseline
    (``"mvsnet_refine"``, run folder ``out/mvsnet_refine``): same data, split, losses, input options, optimiser
    and seed; its own width and time budget (the baseline's used whole: no ``whole_cycles``, no ``--cycles`` cap)."""
    recipe = settings.train
    model = model or recipe.model
    compare = model == "mvsnet_refine"
    run_dir = out / model if compare else out
    return replace(
        recipe,
        data_root=str(data / "train_ready"),
        num_workers=settings.num_workers or 0,
        val_split=settings.val_scans / (settings.scans - settings.test_scans),
        seed=settings.seed,
        max_minutes=settings.budget_minutes(model),
        num_epochs=recipe.num_epochs if compare else min(recipe.num_epochs, settings.cycles * recipe.scheduler_t0),
        model=model,
        base_channel=settings.compare_base_channel if compare else recipe.base_channel,
        prefill_holes=recipe.prefill_holes and recipe.fill_holes, whole_cycles=recipe.whole_cycles and not compare,
        device=device,
        checkpoint_dir=str(run_dir / "checkpoints"),
        log_dir=str(run_dir / "logs"),
        progress=settings.progress,
        extra=dict(recipe.extra),
    )


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in ("progress", "num_workers")}


def _finished_run(summary_path: Path, wanted: dict[str, Any], data: dict[str, Any]) -> dict[str, Any] | None:
    """The ``train_summary.json`` of a finished run with the same settings and the same training data
    (:func:`deltaz.apps.demo_data.data_stamp`) whose checkpoint still exists."""
    summary = read_marker(summary_path)
    if not isinstance(summary, dict):
        return None
    ckpt = summary.get("checkpoint")
    same = _comparable(summary.get("config", {})) == jsonable(wanted) and summary.get("data") == jsonable(data)
    return summary if same and ckpt and Path(ckpt).is_file() else None


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """What ``train_summary.json`` keeps of a :func:`deltaz.engine.train.train` result."""
    keys = ("last_checkpoint", "best_checkpoint", "config", "steps", "epochs_completed", "stopped_by",
            "best_val_mae", "elapsed_s", "device", "history")
    summary = {"checkpoint": result["best_checkpoint"] or result["last_checkpoint"], **{k: result[k] for k in keys}}
    summary["final_metrics"] = {k: v for k, v in result["final_metrics"].items() if not isinstance(v, dict)}
    return summary


def stage_train(settings: DemoSettings, data: Path, out: Path, device: str,
                model: str | None = None) -> tuple[float | None, dict[str, Any]]:
    """Train ``model`` (see :func:`train_config`) unless its run folder's ``train_summary.json`` says a run
    with the same config and training data finished."""
    config = train_config(settings, data, out, device, model)
    model = config.model
    run_dir = Path(config.checkpoint_dir).parent
    summary_path = run_dir / "train_summary.json"
    label = f"train {model} (baseline)" if model == "mvsnet_refine" else "train"
    stamp = data_stamp(settings)
    previous = None if settings.force else _finished_run(summary_path, _comparable(config.resolved().to_dict()), stamp)
    if previous is not None:
        print(f"[4/6] {label}: reusing {previous['checkpoint']} (finished run with the same settings; --force retrains)")
        return None, previous
    for sub in ("checkpoints", "logs"):
        shutil.rmtree(run_dir / sub, ignore_errors=True)
    summary_path.unlink(missing_ok=True)
    epochs = "" if model == "mvsnet_refine" else f" or {config.num_epochs} epochs"
    print(f"[4/6] {label}: {model} on {config.data_root} for {config.max_minutes:g} min{epochs} on {device} "
          f"(TensorBoard: tensorboard --logdir {config.log_dir})")
    start = time.perf_counter()
    result = train(config)
    elapsed = time.perf_counter() - start
    summary = {**_summary(result), "data": jsonable(stamp)}
    write_json(summary_path, summary)
    return elapsed, summary


# =========================================================================== driver
def _prepare(settings: DemoSettings) -> tuple[Path, Path, str]:
    """Validate, make the folders absolute, pick the device and the hardware-dependent defaults."""
    settings.validate()
    out = Path(settings.out or runs_dir() / "demo").resolve()
    data = Path(settings.data or data_dir() / "demo").resolve()
    out.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    device = str(resolve_device(settings.device))
    if device.startswith("cuda") and settings.train.batch_size == demo_train_config().batch_size:
        settings.train.batch_size = 8  # a GPU runs many more steps in the budget; use bigger batches too
    if settings.num_workers is None:
        # On a GPU the main process cannot simulate initial depths fast enough alone; on a 2-core CPU,
        # worker processes would only take cores from the training step.
        settings.num_workers = min(8, max(0, (os.cpu_count() or 1) - 2)) if device.startswith("cuda") else 0
    return out, data, device


def _print_summary(result: dict[str, Any], evaluation: dict[str, Any], train_summary: dict[str, Any]) -> None:
    out = Path(result["out"])
    print()
    print(summary_table(evaluation["rows"]))
    print()
    for t in result["targets"]:
        print(f"  [{'x' if t['met'] else ' '}] {t['target']}: {t['value']}")
    print()
    print(f"report:      {result['report']}")
    print(f"metrics:     {out / 'metrics.json'} ({out / 'metrics.md'})")
    print(f"figures:     {out / 'figures'}")
    print(f"checkpoint:  {train_summary['checkpoint']}")
    print(f"TensorBoard: tensorboard --logdir {out / 'logs'}")
    print(f"data:        {result['data']}")
    print("wall times:  " + ", ".join(f"{k} {format_seconds(v)}" for k, v in result["timings"].items()))


def run_demo(settings: DemoSettings) -> dict[str, Any]:
    """Run every stage (see the module docstring); returns paths, timings, targets and the evaluation."""
    out, data, device = _prepare(settings)
    t_all = time.perf_counter()
    timings: dict[str, float | None] = {}
    timings["synth"] = stage_synth(settings, data)
    timings["parse"], groups = stage_parse(settings, data, timings["synth"])
    timings["sweep"] = stage_sweep(settings, data, groups, device)
    timings["train"], train_summary = stage_train(settings, data, out, device)
    compare_summary = None
    if settings.budget_minutes("mvsnet_refine") > 0:
        timings["train mvsnet_refine"], compare_summary = stage_train(settings, data, out, device, "mvsnet_refine")

    print(f"[5/6] evaluate: {len(groups['test'])} held-out scans in {data / 'test_ready'} "
          f"(baselines tuned on the validation scans)")
    start = time.perf_counter()
    evaluation = run_evaluation(
        train_summary["checkpoint"], data / "test_ready", split="test", preset=settings.eval_preset, out_dir=out,
        baselines="all", device=device, num_src_views=settings.num_src_views,
        compare_checkpoint=compare_summary["checkpoint"] if compare_summary else None,
        pointclouds=settings.pointclouds, progress=settings.progress, adapt_minutes=settings.adapt_minutes,
        mirror_agreement=settings.mirror_agreement, weighted_median=settings.weighted_median, smooth=settings.smooth,
    )
    timings["evaluate"] = time.perf_counter() - start

    print("[6/6] report")
    start = time.perf_counter()
    machine = machine_info(device)
    timings["report"] = time.perf_counter() - start
    timings["total"] = time.perf_counter() - t_all
    report_path = out / "report.md"
    targets = quality_targets(evaluation["rows"])
    atomic_write_text(report_path, demo_report_markdown(settings.report_facts(), evaluation, train_summary, groups,
                                                        timings, machine, out, data, targets, compare_summary))
    write_json(out / "demo_summary.json", {
        "timings_s": timings, "targets": targets, "machine": machine, "groups": groups,
        "checkpoint": train_summary["checkpoint"],
    })
    result = {"out": str(out), "data": str(data), "report": str(report_path), "timings": timings,
              "targets": targets, "evaluation": evaluation, "train": train_summary}
    _print_summary(result, evaluation, train_summary)
    return result


# =========================================================================== CLI
def _hw(text: str) -> tuple[int, int]:
    """``HxW`` of at least 8x8 pixels (:func:`deltaz.core.options.parse_hw`)."""
    return parse_hw(text, minimum=8)


def _crop_hw(text: str) -> tuple[int, int]:
    """``HxW`` as :func:`_hw`, or ``0``/``0x0`` for no crop (returned as ``(0, 0)``)."""
    return (0, 0) if text.strip().lower() in ("0", "0x0", "none") else _hw(text)


def _add_data_arguments(parser: argparse.ArgumentParser, d: DemoSettings) -> None:
    parser.add_argument("--out", default="",
                        help="run folder: checkpoints, logs, metrics, figures, report.md (default: runs/demo)")
    parser.add_argument("--data", default="",
                        help="data folder: synth/, train_ready/, test_ready/ (default: data/demo)")
    parser.add_argument("--minutes", type=float, default=d.minutes,
                        help=f"training time budget in minutes (default {d.minutes:g})")
    parser.add_argument("--cycles", type=int, default=d.cycles, help="the refiner trains at most this many learning-rate "
                        f"cycles of {d.train.scheduler_t0} epochs, or --minutes, whichever ends first (default {d.cycles})")
    parser.add_argument("--scans", type=int, default=d.scans, help=f"synthetic scans to render (default {d.scans})")
    parser.add_argument("--test-scans", type=int, default=d.test_scans,
                        help=f"held-out test scans (default {d.test_scans})")
    parser.add_argument("--val-scans", type=int, default=d.val_scans, help=f"validation scans (default {d.val_scans})")
    parser.add_argument("--seed", type=int, default=d.seed,
                        help="seed of the scenes, the split and the training (default 0)")
    parser.add_argument("--device", default=d.device, help="auto (cuda when available), cpu or cuda")
    parser.add_argument("--force", action="store_true", help="re-render, re-parse and retrain even when results exist")
    parser.add_argument("--views", type=int, default=d.views, help=f"cameras per scan (default {d.views}, like DTU)")
    parser.add_argument("--image-size", type=_hw, default=d.image_size, metavar="HxW",
                        help="rendered image size (default 256x320; parse averages it down to the depth size)")
    parser.add_argument("--resolution", type=_hw, default=None, metavar="HxW",
                        help="train-ready size (default: the depth maps' 128x160)")
    parser.add_argument("--lights", type=int, default=d.lights,
                        help=f"illuminations rendered per view (default {d.lights}; DTU has 7)")


def _add_train_arguments(parser: argparse.ArgumentParser, t: TrainConfig) -> None:
    """The training flags: TrainConfig fields (help from :func:`deltaz.engine.train.cli.config_help`) with the
    demo's defaults (:func:`deltaz.engine.config.demo_train_config`)."""
    parser.add_argument("--max-steps", type=int, default=None, help="also " + config_help("max_steps"))
    parser.add_argument("--crop", type=_crop_hw, default=tuple(t.crop or (0, 0)), metavar="HxW",
                        help="train on random HxW windows (default 64x80; 0x0 = whole views)")
    for name, kind in (("batch_size", int), ("lr", float), ("base_channel", int), ("unet_depth", int),
                       ("image_dropout", float)):
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(t, name),
                            help=f"{config_help(name)} (default {getattr(t, name):g})")
    parser.add_argument("--num-workers", type=int, default=None,
                        help="data-loader worker processes (default: 0 on CPU, up to 8 on CUDA)")
    parser.add_argument("--amp", action="store_true", help="bf16 mixed precision (CUDA only)")
    parser.add_argument("--no-images", action="store_true", help="train without RGB image guidance")
    parser.add_argument("--depth-scale-rel", type=float, default=t.depth_scale_rel,
                        help=f"the network's depth normalisation half span as a share of the input's median depth "
                        f"(default {t.depth_scale_rel:g}; 0 = use --depth-scale-mm)")
    parser.add_argument("--depth-scale-mm", type=float, default=0.0,
                        help="with --depth-scale-rel 0: a fixed normalisation half span in mm (0 = the scan's range)")
    parser.add_argument("--preset", default=t.preset, metavar="MODEL[:W,...]",
                        help=f"training initial depth: {', '.join(INITIAL_MODELS)} or a weighted mix "
                        f"(default {t.preset})")
    parser.add_argument("--model", choices=("deltaz_unet", "deltaz_select"), default=t.model,
                        help=f"the refiner: the U-Net with a Δz head, or with the selection head that copies depth from "
                        f"a neighbour (default {t.model})")
    parser.add_argument("--keep-holes", action="store_true",
                        help="the refiner keeps the input's holes instead of filling them from a classical pre-fill")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``deltaz demo``."""
    d = DemoSettings()
    _add_data_arguments(parser, d)
    _add_train_arguments(parser, d.train)
    parser.add_argument("--eval-preset", default=d.eval_preset, metavar="MODEL",
                        help=f"initial depth of the held-out test scans: {', '.join(INITIAL_MODELS)} or a weighted mix "
                        f"(default {d.eval_preset})")
    parser.add_argument("--compare-minutes", type=float, default=d.compare_minutes,
                        help="training budget in minutes of the MVSNet-style refinement baseline (default: the same "
                        "as --minutes; 0 skips it)")
    parser.add_argument("--adapt-minutes", type=float, default=d.adapt_minutes, metavar="M",
                        help="also adapt the refiner to each held-out test scan for M minutes (deltaz adapt, no ground "
                        "truth; the row deltaz+adapt); default 0: skipped, to keep make demo within 15 minutes")
    add_mirror_flags(parser)
    add_median_flag(parser)
    add_smooth_flags(parser)
    parser.add_argument("--no-pointclouds", action="store_true", help="skip point-cloud fusion and scoring")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def settings_from_args(args: argparse.Namespace) -> DemoSettings:
    """The :class:`DemoSettings` the flags describe (training flags go into its ``train`` recipe)."""
    recipe = demo_train_config(
        max_steps=args.max_steps, batch_size=args.batch_size, crop=list(args.crop) if min(args.crop) > 0 else None,
        amp=args.amp, lr=args.lr, base_channel=args.base_channel, unet_depth=args.unet_depth,
        use_images=not args.no_images, depth_scale_mm=args.depth_scale_mm or None,
        depth_scale_rel=args.depth_scale_rel or None, preset=args.preset, model=args.model,
        fill_holes=not args.keep_holes, prefill_holes=not args.keep_holes, image_dropout=args.image_dropout,
    )
    return DemoSettings(
        out=args.out, data=args.data, minutes=args.minutes, cycles=args.cycles, scans=args.scans, test_scans=args.test_scans,
        val_scans=args.val_scans, seed=args.seed, device=args.device, force=args.force, views=args.views,
        image_size=tuple(args.image_size), resolution=None if args.resolution is None else tuple(args.resolution),
        num_workers=args.num_workers, pointclouds=not args.no_pointclouds, eval_preset=args.eval_preset,
        lights=args.lights, compare_minutes=args.compare_minutes, progress=not args.no_progress, train=recipe,
        adapt_minutes=args.adapt_minutes, mirror_agreement=args.mirror_agreement, weighted_median=args.weighted_median,
        smooth=args.smooth,
    )


def run(args: argparse.Namespace) -> int:
    """``deltaz demo``."""
    try:
        run_demo(settings_from_args(args))
    except DeltaZError as error:
        print(f"deltaz demo: error: {error}", file=sys.stderr)
        return 1
    return 0
