"""``TrainConfig``: the one place every training setting lives.

The command line (``deltaz train``), the Python API (:func:`deltaz.engine.train.train`), checkpoints and the
``config.json`` written next to the TensorBoard logs all use this dataclass, so a run can always be
repeated from its saved config. Explained in notebooks/04_training.ipynb.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltaz.core.atomic import atomic_write_text
from deltaz.core.errors import ConfigError
from deltaz.ops.corrupt import INITIAL_MODELS, PRESETS as CORRUPT_PRESETS, parse_initial_mix  # noqa: F401 (re-exported)

#: Fields that fix the network (shape and input options): a checkpoint is only loadable into a model with equal values.
MODEL_FIELDS = (
    "model", "base_channel", "unet_depth", "out_confidence", "use_images", "depth_scale_mm", "prefill_holes",
    "depth_scale_rel",
)

#: The loss-weight fields, in the order of ``deltaz.ops.losses.LossWeights``.
LOSS_WEIGHT_FIELDS = ("w_depth", "w_improvement", "w_magnitude", "w_smoothness", "w_multiview", "w_confidence")

#: ``w_confidence`` when a confidence head is trained and no weight was given (LossWeights' default 0
#: would leave the head untrained).
DEFAULT_CONFIDENCE_WEIGHT = 0.1

PRESETS = tuple(CORRUPT_PRESETS)  # the simulation presets of deltaz.ops.corrupt
#: Where each view's initial depth comes from (see deltaz.data.DepthRefinementDataset).
INITIAL_SOURCES = ("auto", "simulate", "estimator")
SPLITS = ("auto", "random", "mvsnet")
MODELS = ("deltaz_unet", "mvsnet_refine")


@dataclass
class TrainConfig:
    """Every setting of a training run. Lengths in mm, times in minutes, learning rate per step.

    ``None`` means "not limited" for ``max_steps``/``max_minutes``/``val_max_batches``, "cuda if
    available else cpu" for ``device`` and "the :class:`deltaz.ops.losses.LossWeights` default" for the
    ``w_*`` loss weights (:meth:`resolved` fills both in; checkpoints store the resolved values).
    """

    # data
    data_root: str = ""
    batch_size: int = 4
    num_views: int = 2
    val_split: float = 0.1
    split: str = "auto"  # "auto" | "random" | "mvsnet" (see deltaz.data.split_scans)
    # initial-depth model when a scan has no initial/ folder: a name of INITIAL_MODELS or a weighted mix,
    # e.g. "planesweep:0.6,mvs:0.3,none:0.1" (drawn per view and epoch in training, fixed per view in validation)
    preset: str = "mvs"
    use_images: bool = False  # feed the RGB image to the network (image guidance)
    num_workers: int = 0
    crop: list[int] | None = None  # [h, w]: train on random windows of every view (validation: whole views)
    # initial depth: "auto" = initial/ when a scan has it, else simulated with `preset`; "simulate" = always
    # simulated; "estimator" = `estimator` ("package.module:name", deltaz.ops.align.load_estimator) run on each
    # view's image and aligned (scale/shift) to the ground truth at a random `align_fraction` of its pixels
    initial_source: str = "auto"
    estimator: str = ""
    align_fraction: float = 0.01
    # optimisation
    num_epochs: int = 50
    lr: float = 1e-4
    weight_decay: float = 1e-6
    grad_clip: float = 1.0
    scheduler_t0: int = 10  # CosineAnnealingWarmRestarts period, in epochs
    seed: int = 0
    max_steps: int | None = None
    max_minutes: float | None = None
    max_nonfinite: int = 5  # consecutive non-finite losses before the run stops
    # multi-scale losses (deltaz.ops.multiscale): depth, smoothness and multi-view terms at len(scale_weights)
    # levels (full, 1/2, 1/4 resolution, ...), level k weighted by scale_weights[k]
    multiscale: bool = False
    scale_weights: list[float] = field(default_factory=lambda: [1.0, 0.5, 0.25])
    # loss weights (None = LossWeights default)
    w_depth: float | None = None
    w_improvement: float | None = None
    w_magnitude: float | None = None
    w_smoothness: float | None = None
    w_multiview: float | None = None
    w_confidence: float | None = None  # Laplacian NLL of the confidence head (out_confidence=True)
    # model
    model: str = "deltaz_unet"
    base_channel: int = 32
    unet_depth: int = 4
    out_confidence: bool = False
    # input options of the model (deltaz.model): a fixed normalisation half span in mm instead of the depth
    # range's (None), and a classical pre-fill of the initial depth's holes that Δz starts from
    depth_scale_mm: float | None = None
    prefill_holes: bool = False
    # scale-free normalisation: half span = depth_scale_rel × the input's median depth (overrides depth_scale_mm)
    depth_scale_rel: float | None = None
    # Let the model fill holes of the initial depth (refine(keep_holes=False)). Off by default: a filled
    # hole starts at depth_refined = delta_z ~ 0 mm, whose huge inverse depth makes the smoothness loss
    # dominate (and gradient clipping then starves the depth term).
    fill_holes: bool = False
    # what the multi-view loss compares the reference with: the sources' ground truth ("gt") or their refined
    # depths ("refined", computed by the same network without gradient; single-scale only)
    multiview_target: str = "gt"
    # hardware
    device: str | None = None
    amp: bool = False
    # logging and checkpoints
    checkpoint_dir: str = "./checkpoints"
    log_dir: str = "./logs"
    log_every: int = 10  # steps between TensorBoard scalar writes
    image_log_every: int = 5  # epochs between TensorBoard image panels (0 = never)
    val_max_batches: int | None = None
    progress: bool = True  # tqdm bars
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
        need(self.depth_scale_mm is None or self.depth_scale_mm > 0, "depth_scale_mm", "must be > 0 or None")
        need(self.depth_scale_rel is None or 0 < self.depth_scale_rel < 1, "depth_scale_rel", "must be in (0, 1) or None")
        need(self.multiview_target in ("gt", "refined") and not (self.multiview_target == "refined" and self.multiscale),
             "multiview_target", "must be 'gt' or 'refined' ('refined' is single-scale: not with multiscale)")
        need(self.fill_holes or not self.prefill_holes, "prefill_holes",
             "needs fill_holes (--fill-holes): holes the refiner keeps need no pre-fill")
        need(self.log_every >= 1, "log_every", "must be >= 1")
        need(self.image_log_every >= 0, "image_log_every", "must be >= 0 (0 = never)")
        need(self.val_max_batches is None or self.val_max_batches >= 1, "val_max_batches", "must be >= 1 or None")

    # ------------------------------------------------------------- resolution
    def resolved(self) -> "TrainConfig":
        """A copy with ``device`` and the ``w_*`` loss weights filled in (what checkpoints store)."""
        import torch

        from deltaz.ops.losses import LossWeights

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
        from deltaz.ops.losses import LossWeights

        kwargs = {
            _loss_attr(name): float(getattr(self, name))
            for name in LOSS_WEIGHT_FIELDS
            if getattr(self, name) is not None
        }
        return LossWeights(**kwargs)

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`deltaz.model.build_model` (besides the model name).

        ``unet_depth`` only applies to ``deltaz_unet`` (``mvsnet_refine`` has no levels)."""
        kwargs: dict[str, Any] = {
            "in_channels": 4 if self.use_images else 1,
            "base_channel": self.base_channel,
            "out_confidence": self.out_confidence,
        }
        if self.model == "deltaz_unet":
            kwargs["depth"] = self.unet_depth
        if self.depth_scale_mm is not None:
            kwargs["depth_scale_mm"] = self.depth_scale_mm
        if self.prefill_holes:
            kwargs["prefill_holes"] = True
        if self.depth_scale_rel is not None:
            kwargs["depth_scale_rel"] = self.depth_scale_rel
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
