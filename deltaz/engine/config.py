"""``TrainConfig``: the one place every training setting lives.

The command line (``deltaz train``), the Python API (:func:`deltaz.engine.train.train`), checkpoints and the
``config.json`` written next to the TensorBoard logs all use this dataclass, so a run can always be
repeated from its saved config. Explained in notebooks/06_training.ipynb.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from deltaz.core.atomic import atomic_write_text
from deltaz.core.errors import ConfigError
from deltaz.data import INITIAL_SOURCES
from deltaz.data.augment import check_strength
from deltaz.data.splits import SPLIT_MODES
from deltaz.ops.losses import LossWeights
from deltaz.model import INPUT_OPTIONS, MODELS as MODEL_REGISTRY
from deltaz.ops.corrupt import INITIAL_MODELS, PRESETS as CORRUPT_PRESETS, parse_initial_mix  # noqa: F401 (re-exported)

#: The TrainConfig field behind each constructor argument of :func:`deltaz.model.build_model` (``name`` = the
#: registry key): the model's signature on the config side; :func:`deltaz.model.model_config` is the model side.
MODEL_ARGS = {
    "model": "name", "base_channel": "base_channel", "unet_depth": "depth", "out_confidence": "out_confidence",
    "use_images": "in_channels", "depth_scale_mm": "depth_scale_mm", "prefill_holes": "prefill_holes",
    "depth_scale_rel": "depth_scale_rel", "select_radius": "radius", "select_far": "far",
}
#: Fields that fix the network (shape and input options): a checkpoint is only loadable into a model with equal values.
MODEL_FIELDS = tuple(MODEL_ARGS)

#: The loss-weight fields, in the order of ``deltaz.ops.losses.LossWeights``.
LOSS_WEIGHT_FIELDS = ("w_depth", "w_improvement", "w_magnitude", "w_smoothness", "w_multiview", "w_confidence")

#: ``w_confidence`` when a confidence head is trained and no weight was given (LossWeights' default 0
#: would leave the head untrained). 1, not 0.1: the shared decoder then learns features for the confidence too
#: (``deltaz train --confidence --images --base-channel 16 --lr 1e-3``, 6 synthetic scans, AUSE / random AUSE on 2
#: unseen ones: 0.45 after 90 steps at 1 against 0.58 after 48 and 0.53 after 265 steps at 0.1; a 4-minute run at 1
#: on a shared 2-core CPU, 296 steps: 1.17 / 4.12 mm = 0.28).
DEFAULT_CONFIDENCE_WEIGHT = 1.0

PRESETS = tuple(CORRUPT_PRESETS)  # the simulation presets of deltaz.ops.corrupt
#: Where each view's initial depth comes from (see deltaz.data.DepthRefinementDataset).
SPLITS = SPLIT_MODES
MODELS = tuple(MODEL_REGISTRY)  # the names of deltaz.model.MODELS
MULTIVIEW_TARGETS = ("gt", "refined")
#: The choices of a field (the CLI's ``choices`` and :meth:`TrainConfig.validate` use the same tuples).
CHOICES = {"split": SPLITS, "model": MODELS, "initial_source": INITIAL_SOURCES, "multiview_target": MULTIVIEW_TARGETS}


def _f(default: Any = None, help: str | None = None, *, factory: Any = None, **cli: Any) -> Any:
    """A dataclass field whose ``metadata`` holds its command-line help (``deltaz train`` makes a flag of every
    field with a help) and argparse extras (``flag``, ``metavar``, ``nargs``)."""
    meta = {"help": help, **cli} if help else {}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


_PRESET_HELP = (
    "initial-depth model when a scan has no initial/: " + ", ".join(CORRUPT_PRESETS) + " (simulated from the "
    "ground truth), planesweep / planesweep_raw (deltaz.ops.mvs on the images after / before its geometric filter, "
    "cached in each scan), sgbm (OpenCV's semi-global matcher on each view and a pair.txt source, cached in each "
    "scan), or a weighted mix such as planesweep_raw:0.6,mvs:0.3,none:0.1"
)


@dataclass
class TrainConfig:
    """Every setting of a training run. Lengths in mm, times in minutes, learning rate per step.

    ``None`` means "not limited" for ``max_steps``/``max_minutes``/``val_max_batches``, "cuda if
    available else cpu" for ``device`` and "the :class:`deltaz.ops.losses.LossWeights` default" for the
    ``w_*`` loss weights (:meth:`resolved` fills both in; checkpoints store the resolved values).
    A field's ``metadata["help"]`` is its ``deltaz train`` flag help (:mod:`deltaz.engine.train.cli`).
    """

    # data
    data_root: str = _f("", "folder of train-ready scans (scan*/ from `deltaz parse`)")
    batch_size: int = _f(4, "samples per batch, all from one scan")
    num_views: int = _f(2, "views per sample: the reference + its best source views")
    val_split: float = _f(0.1, "fraction of scans held out for validation (by scene)")
    split: str = _f("auto", "scene split: MVSNet's lists for real DTU (auto), a seeded random split, or mvsnet")
    split_seed: int = _f(0, "seed of the random scene split; apart from --seed, so runs of several seeds train and "
                         "validate on the same scenes")
    # initial-depth model when a scan has no initial/ folder: a name of INITIAL_MODELS or a weighted mix,
    # e.g. "planesweep:0.6,mvs:0.3,none:0.1" (drawn per view and epoch in training, fixed per view in validation)
    preset: str = _f("mvs", _PRESET_HELP, metavar="MODEL[:W,...]")
    use_images: bool = _f(False, "feed the RGB image to the network (image guidance)", flag="--images")
    num_workers: int = _f(0, "data-loader worker processes")
    crop: list[int] | None = _f(None, "train on random H x W windows of the views (cheaper steps, more of them in a "
                                "time budget); validation sees whole views", nargs=2, metavar=("H", "W"))
    image_augment: float = _f(0.0, "strength (0 = off, 1 = full) of the photometric augmentation of training images: "
                              "exposure, colour balance, gamma, blur, sensor noise, grey (deltaz.data.augment)",
                              metavar="S")
    image_dropout: float = _f(0.0, "probability that a training sample's image reaches the network as a uniform grey "
                              "(the losses still read the real one), so the refiner also learns to correct depth "
                              "without image cues", metavar="P")
    # initial depth: "auto" = initial/ when a scan has it, else simulated with `preset`; "simulate" = always
    # simulated; "estimator" = `estimator` ("package.module:name", deltaz.ops.align.load_estimator) run on each
    # view's image and aligned (scale/shift) to the ground truth at a random `align_fraction` of its pixels
    initial_source: str = _f("auto", "initial depths: initial/ when present else simulated (auto), always simulated, "
                             "or from --estimator")
    estimator: str = _f("", "with --initial-source estimator: your depth network, image (3,H,W) -> depth up to "
                        "scale/shift (deltaz.ops.align.load_estimator); aligned to the ground truth at "
                        "--align-fraction of the pixels", metavar="MODULE:NAME")
    align_fraction: float = _f(0.01, "share of GT pixels used to align --estimator")
    # optimisation
    num_epochs: int = _f(50, "epochs to train (total, counting resumed ones)")
    lr: float = _f(1e-4, "Adam learning rate")
    weight_decay: float = 1e-6
    grad_clip: float = 1.0
    scheduler_t0: int = 10  # CosineAnnealingWarmRestarts period, in epochs
    seed: int = _f(0, "seed of the weights, data order and training corruption")
    max_steps: int | None = _f(None, "stop after this many optimizer steps")
    max_minutes: float | None = _f(None, "stop after this many wall-clock minutes (time budget)")
    whole_cycles: bool = _f(False, "with --max-minutes: stop at the end of a learning-rate cycle (scheduler_t0 epochs) "
                            "when the next whole cycle, at this run's pace, would not fit the time left, instead of "
                            "starting a warm restart that the budget cuts")
    max_nonfinite: int = 5  # consecutive non-finite losses before the run stops
    # multi-scale losses (deltaz.ops.multiscale): depth, smoothness and multi-view terms at len(scale_weights)
    # levels (full, 1/2, 1/4 resolution, ...), level k weighted by scale_weights[k]
    multiscale: bool = _f(False, "depth, smoothness and multi-view losses on a 3-level pyramid (deltaz.ops.multiscale)")
    scale_weights: list[float] = _f(help="with --multiscale: weight of each pyramid level, full resolution first "
                                    "(one level per weight)", factory=lambda: [1.0, 0.5, 0.25], metavar="W")
    # loss weights (None = LossWeights default)
    w_depth: float | None = _f(None, "weight of the L1 depth loss (mm)")
    w_improvement: float | None = _f(None, "weight of the do-no-harm improvement loss")
    w_magnitude: float | None = _f(None, "weight of the delta_z magnitude loss")
    w_smoothness: float | None = _f(None, "weight of the edge-aware smoothness loss")
    w_multiview: float | None = _f(None, "weight of the multi-view consistency loss")
    w_confidence: float | None = _f(None, "weight of the confidence (Laplacian NLL) loss")
    # model
    model: str = _f("deltaz_unet", "refinement network")
    base_channel: int = _f(32, "channels of the network's first level")
    unet_depth: int = _f(4, "number of U-Net downsamplings (deltaz_unet, deltaz_select)")
    select_radius: int = _f(3, "deltaz_select: radius (px) of the window it copies depth from (3: 7x7)")
    select_far: int = _f(0, "deltaz_select: also copy from the window's offsets times this factor (0: none; 3 with "
                         "radius 3 reaches 9 px)")
    out_confidence: bool = _f(False, "also predict a per-pixel confidence", flag="--confidence")
    # input options of the model (deltaz.model): a fixed normalisation half span in mm instead of the depth
    # range's (None), and a classical pre-fill of the initial depth's holes that Δz starts from
    depth_scale_mm: float | None = _f(
        None, "normalise the network's depth input by this fixed half span in mm around the middle of the scan's "
        "depth range instead of by the whole range (the demo normalises with --depth-scale-rel 0.03)", metavar="MM")
    prefill_holes: bool = _f(False, "with --fill-holes: start each hole from a classical fill of its neighbours "
                             "instead of 0 mm (the demo's recipe)")
    # scale-free normalisation: half span = depth_scale_rel × the input's median depth (overrides depth_scale_mm)
    depth_scale_rel: float | None = _f(
        None, "scale-free normalisation: half span = R x the input's median depth (e.g. 0.03); overrides "
        "--depth-scale-mm and works at any scene scale", metavar="R")
    # Let the model fill holes of the initial depth (refine(keep_holes=False)). Off by default: a filled
    # hole starts at depth_refined = delta_z ~ 0 mm, whose huge inverse depth makes the smoothness loss
    # dominate (and gradient clipping then starves the depth term).
    fill_holes: bool = _f(False, "let the model fill holes of the initial depth (default: holes stay holes)")
    # what the multi-view loss compares the reference with: the sources' ground truth ("gt") or their refined
    # depths ("refined", computed by the same network without gradient; single-scale only)
    multiview_target: str = _f("gt", "multi-view loss against the sources' ground truth (gt) or their refined "
                               "depths (refined, no gradient)")
    # hardware
    device: str | None = _f(None, "cuda or cpu (default: cuda when available, else cpu)")
    amp: bool = _f(False, "mixed precision on CUDA (bf16, or fp16 + GradScaler); ignored with a warning on CPU")
    # logging and checkpoints
    checkpoint_dir: str = _f("./checkpoints", "where last.pt and best.pt go")
    log_dir: str = _f("./logs", "TensorBoard run folder (config.json is written there too)")
    log_every: int = _f(10, "steps between TensorBoard loss points")
    image_log_every: int = _f(5, "epochs between TensorBoard image panels (0 = never)")
    val_max_batches: int | None = _f(None, "validate on at most this many batches")
    progress: bool = _f(True, "no tqdm bars or per-epoch lines", flag="--no-progress")
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes, saved with the run

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first impossible setting."""

        def need(cond: bool, name: str, msg: str) -> None:
            if not cond:
                raise ConfigError(f"{name}={getattr(self, name)!r}: {msg}")

        need(isinstance(self.batch_size, int) and self.batch_size >= 1, "batch_size", "must be an integer >= 1")
        need(isinstance(self.num_views, int) and self.num_views >= 1, "num_views", "must be an integer >= 1")
        need(0.0 <= self.val_split < 1.0, "val_split", "must be in [0, 1)")
        need(self.split in SPLITS, "split", f"must be one of {SPLITS}")
        parse_initial_mix(self.preset)
        need(self.num_workers >= 0, "num_workers", "must be >= 0")
        check_strength(self.image_augment)  # a ConfigError naming image_augment
        need(0.0 <= self.image_dropout < 1.0, "image_dropout", "must be a probability in [0, 1)")
        need(self.crop is None or (len(self.crop) == 2 and min(self.crop) >= 8), "crop",
             "must be [h, w] with both >= 8 pixels, or None")
        need(self.initial_source in INITIAL_SOURCES, "initial_source", f"must be one of {INITIAL_SOURCES}")
        need(bool(self.estimator) == (self.initial_source == "estimator"), "estimator",
             "give 'package.module:name' exactly when initial_source='estimator'")
        need(0.0 < self.align_fraction <= 1.0, "align_fraction", "must be in (0, 1]")
        need(len(self.scale_weights) >= 1 and all(w >= 0 for w in self.scale_weights) and self.scale_weights[0] > 0,
             "scale_weights", "need at least one weight, all >= 0, the first > 0")
        need(self.num_epochs >= 1, "num_epochs", "must be >= 1")
        need(self.lr > 0, "lr", "must be > 0")
        need(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        need(self.grad_clip > 0, "grad_clip", "must be > 0")
        need(self.scheduler_t0 >= 1, "scheduler_t0", "must be >= 1")
        need(self.max_steps is None or self.max_steps >= 1, "max_steps", "must be >= 1 or None")
        need(self.max_minutes is None or self.max_minutes > 0, "max_minutes", "must be > 0 or None")
        need(self.max_nonfinite >= 1, "max_nonfinite", "must be >= 1")
        for name in LOSS_WEIGHT_FIELDS:
            value = getattr(self, name)
            need(value is None or value >= 0, name, "loss weights must be >= 0")
        need(self.model in MODELS, "model", f"must be one of {MODELS}")
        need(self.base_channel >= 1, "base_channel", "must be >= 1")
        need(self.unet_depth >= 1, "unet_depth", "must be >= 1")
        need(self.select_radius >= 1, "select_radius", "must be >= 1 (px)")
        need(self.select_far == 0 or self.select_far >= 2, "select_far", "must be 0 (none) or >= 2")
        need(self.depth_scale_mm is None or self.depth_scale_mm > 0, "depth_scale_mm", "must be > 0 or None")
        need(self.depth_scale_rel is None or 0 < self.depth_scale_rel < 1, "depth_scale_rel", "must be in (0, 1) or None")
        need(self.multiview_target in MULTIVIEW_TARGETS and not (self.multiview_target == "refined" and self.multiscale),
             "multiview_target", "must be 'gt' or 'refined' ('refined' is single-scale: not with multiscale)")
        need(self.fill_holes or not self.prefill_holes, "prefill_holes",
             "needs fill_holes (--fill-holes): holes the refiner keeps need no pre-fill")
        need(self.log_every >= 1, "log_every", "must be >= 1")
        need(self.image_log_every >= 0, "image_log_every", "must be >= 0 (0 = never)")
        need(self.val_max_batches is None or self.val_max_batches >= 1, "val_max_batches", "must be >= 1 or None")

    # ------------------------------------------------------------- resolution
    def resolved(self) -> "TrainConfig":
        """A copy with ``device`` and the ``w_*`` loss weights filled in (what checkpoints store)."""
        out = dataclasses.replace(self, extra=dict(self.extra))
        if out.device is None:
            out.device = "cuda" if torch.cuda.is_available() else "cpu"
        defaults = LossWeights()
        if out.w_confidence is None and out.out_confidence:
            out.w_confidence = DEFAULT_CONFIDENCE_WEIGHT
        for name in LOSS_WEIGHT_FIELDS:
            if getattr(out, name) is None:
                setattr(out, name, float(getattr(defaults, _loss_attr(name))))
        return out

    def loss_weights(self):
        """The :class:`deltaz.ops.losses.LossWeights` of this config (defaults where a weight is None)."""
        kwargs = {
            _loss_attr(name): float(getattr(self, name))
            for name in LOSS_WEIGHT_FIELDS
            if getattr(self, name) is not None
        }
        return LossWeights(**kwargs)

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`deltaz.model.build_model` (besides the model name), via :data:`MODEL_ARGS`:
        the model class's ``SHAPE_ARGS`` (``unet_depth`` only for the U-Nets, ``select_radius`` and
        ``select_far`` only for ``deltaz_select``) and the input options not at their default
        (:data:`deltaz.model.INPUT_OPTIONS`), i.e. exactly what ``model_config`` records."""
        shape_args = MODEL_REGISTRY[self.model].SHAPE_ARGS
        kwargs: dict[str, Any] = {}
        for name, arg in MODEL_ARGS.items():
            value = getattr(self, name)
            if name == "use_images":
                value = 4 if value else 1
            if arg in shape_args or (arg in INPUT_OPTIONS and value != INPUT_OPTIONS[arg]):
                kwargs[arg] = value
        return kwargs

    def model_signature(self) -> dict[str, Any]:
        """The fields that fix the network's shape (see :data:`MODEL_FIELDS`)."""
        return {name: getattr(self, name) for name in MODEL_FIELDS}

    # ---------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (also safe for ``torch.load(weights_only=True)``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown TrainConfig field(s) {unknown}; known fields: {sorted(names)}")
        return cls(**data)

    def save_json(self, path: str | Path) -> Path:
        """Write ``to_dict()`` as indented JSON, atomically. Returns the path."""
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load_json(cls, path: str | Path) -> "TrainConfig":
        """Read a ``config.json`` written by :meth:`save_json`."""
        with open(path) as fh:
            return cls.from_dict(json.load(fh))


def _loss_attr(name: str) -> str:
    """``w_depth`` -> ``depth``: the matching :class:`deltaz.ops.losses.LossWeights` attribute."""
    return name[2:]


#: The demo's training mix of initial depths (:func:`demo_train_config`).
DEMO_PRESET = "stereo:0.45,mvs:0.25,planesweep_raw:0.1,none:0.2"


def demo_train_config(**overrides: Any) -> TrainConfig:
    """The demo's training recipe (``deltaz demo``; the course's load-or-train takes its input options): a
    16-channel U-Net with image guidance and the selection head (``deltaz_select``, a 7×7 window plus its offsets
    ×3), trained on random 64x80 windows at lr 1e-3 until a time budget stops it (``num_epochs`` 1000) at
    the end of the last whole learning-rate cycle that fits it (``whole_cycles``), holes
    filled from a classical pre-fill, depth normalised by 3 % of the input's median depth, the do-no-harm loss
    weights (improvement 1, magnitude 0.1); initial depths: the simulated ``stereo`` model 45 % (half-occluded
    bands filled with the foreground), the simulated ``mvs`` model 25 %, the raw plane sweep 10 %, already-right
    depth 20 %; training images photometrically augmented at full strength (``image_augment`` 1:
    :mod:`deltaz.data.augment`) and a uniform grey instead of a sample's image a quarter of the time
    (``image_dropout`` 0.25). Its checkpoints are meant to run with the mirror agreement
    (:mod:`deltaz.ops.agreement`, the inference default).
    ``overrides`` replace fields (a new object each call)."""
    recipe: dict[str, Any] = dict(
        batch_size=4, num_views=2, crop=[64, 80], split="random", preset=DEMO_PRESET,
        use_images=True, num_epochs=1000, lr=1e-3, base_channel=16, unet_depth=4, depth_scale_rel=0.03,
        fill_holes=True, prefill_holes=True, image_log_every=1, model="deltaz_select", select_far=3,
        w_improvement=1.0, w_magnitude=0.1, image_augment=1.0, image_dropout=0.25, whole_cycles=True,
    )
    recipe.update(overrides)
    return TrainConfig(**recipe)
