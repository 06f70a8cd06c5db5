"""Helpers the course notebooks share: smoke mode, the course dataset, one sample, short training runs.

* :func:`smoke_mode` — ``DELTAZ_SMOKE=1`` asks for tiny data and a few steps (what the tests run);
* :func:`course_data` — a small DTU-like dataset, generated once with :mod:`deltaz.io.synthetic`, parsed with
  :func:`deltaz.io.dtu.parse.parse_dtu` and cached under :func:`deltaz.core.paths.data_dir` (``course/smoke`` and
  ``course/full``); with ``DELTAZ_DTU_ROOT`` set, a few real DTU scans parsed from there instead, picked by
  MVSNet's split (:func:`course_scan_names`);
* :func:`accelerator_options` — device, mixed precision and loader workers for the machine (CUDA when present);
* :func:`sample_view` — a reference view and its best source views as one data sample (docs/DESIGN.md §4);
* :func:`train_briefly` — a few optimiser steps of a small :class:`~deltaz.model.DeltaZUnet` on one batch,
  to see what a loss weight changes (on the CPU by default, or on ``device``);
* :func:`batch_loss_maps` / :func:`loss_pull_maps` — per-pixel value / gradient of each loss term;
* :func:`source_of` — a function's source code, displayed as a code block in a notebook.

Explained in notebooks/01_dtu_on_disk.ipynb (data) and notebooks/05_losses.ipynb (training runs).
"""

from __future__ import annotations

import inspect
import os
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from deltaz.core.cache import marker_matches, write_marker
from deltaz.core.errors import DataError, DeltaZError
from deltaz.core.paths import data_dir, dtu_root, runs_dir
from deltaz.data import DepthRefinementDataset
from deltaz.engine import train as training  # training.train: looked up at call time (tests replace it)
from deltaz.engine.checkpoint import find_checkpoint, load_checkpoint
from deltaz.engine.config import MODEL_FIELDS, TrainConfig, demo_train_config
from deltaz.engine.device import resolve_device
from deltaz.engine.evaluate import load_refiner
from deltaz.engine.train import forward_batch, loss_batch
from deltaz.io.dtu.layout import list_scans, read_meta
from deltaz.io.dtu.parse import _available_scans, parse_dtu
from deltaz.io.dtu.splits import scan_list
from deltaz.io import synthetic  # synthetic.generate_dataset: looked up at call time (tests replace it)
from deltaz.model import DeltaZUnet
from deltaz.ops.losses import TERMS, LossWeights, loss_maps, losses_for_batch, multiview_inputs

__all__ = [
    "SMOKE_ENV",
    "CourseSize",
    "SMOKE_SIZE",
    "FULL_SIZE",
    "smoke_mode",
    "course_dirs",
    "course_data",
    "course_scan_names",
    "accelerator_options",
    "sample_view",
    "train_briefly",
    "batch_loss_maps",
    "loss_pull_maps",
    "source_of",
]

#: Environment variable that switches the notebooks to smoke mode (``"1"``).
SMOKE_ENV = "DELTAZ_SMOKE"
#: Written last into a course folder; its presence (with matching settings) means "complete".
_MARKER = "course.json"


@dataclass(frozen=True)
class CourseSize:
    """How much data the course uses.

    Attributes:
        n_scans: scans (``scan1 …``); n_views: cameras per scan (DTU: 49).
        image_hw: rendered image size ``(H, W)``; the parser brings images to the 128×160 depth grid.
        seed: scene seed of :func:`deltaz.io.synthetic.generate_dataset`.
        style: the renderer's scene style; the lessons are written for ``"classic"`` (a table with solids,
            Lambertian, no walls), whose counts and rates the notebooks assert.
    """

    n_scans: int
    n_views: int
    image_hw: tuple[int, int] = (128, 160)
    seed: int = 0
    style: str = "classic"


#: Smoke mode: one scan seen by 12 cameras (about 10 s to render on a laptop CPU).
SMOKE_SIZE = CourseSize(n_scans=1, n_views=12)
#: Full mode: three scans with DTU's 49 cameras (about a minute to render on a laptop CPU).
FULL_SIZE = CourseSize(n_scans=3, n_views=49)


def smoke_mode() -> bool:
    """True when ``DELTAZ_SMOKE=1``: notebooks then use tiny data and a few steps."""
    return os.environ.get(SMOKE_ENV) == "1"


def course_dirs(smoke: bool) -> tuple[Path, Path]:
    """``(raw, scans)``: the DTU-like source folder and the train-ready root of the course data.

    Synthetic data: ``<data_dir>/course/{smoke|full}/dtu_training`` and ``…/scans``. With
    ``DELTAZ_DTU_ROOT`` set, ``raw`` is that real ``dtu_training`` folder and the scans go to
    ``<data_dir>/course/dtu-{smoke|full}/scans``.
    """
    real = dtu_root()
    if real is not None:
        return real, data_dir() / "course" / f"dtu-{'smoke' if smoke else 'full'}" / "scans"
    base = data_dir() / "course" / ("smoke" if smoke else "full")
    return base / "dtu_training", base / "scans"


def _settings(size: CourseSize, source: str) -> dict[str, Any]:
    return {"source": source, **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(size).items()}}


def _is_complete(base: Path, settings: dict[str, Any]) -> bool:
    """The stage marker (:mod:`deltaz.core.cache`) records ``settings`` and every scan is there."""
    if not marker_matches(base / _MARKER, settings) or not (base / "scans").is_dir():
        return False
    return len(list_scans(base / "scans")) == settings["n_scans"]


def course_data(smoke: bool, size: CourseSize | None = None, progress: bool = True) -> Path:
    """The course's train-ready root (docs/DESIGN.md §3): generated and parsed on the first call, then reused.

    Synthetic (default): :func:`deltaz.io.synthetic.generate_dataset` renders ``size`` (default
    :data:`SMOKE_SIZE` or :data:`FULL_SIZE`) into ``dtu_training/`` (MVSNet's layout, docs/DESIGN.md §2) and
    :func:`deltaz.io.dtu.parse.parse_dtu` converts it to ``scans/``. ``course.json`` (the settings) is
    written last, so an interrupted run never leaves a folder that looks complete. A complete folder
    with the same settings is returned as is (nothing is rendered or parsed again); different settings
    rebuild it. One process at a time should build a given folder.

    Real DTU (``DELTAZ_DTU_ROOT`` set): ``size.n_scans`` scans of that folder, picked by MVSNet's split
    (:func:`course_scan_names`: training scans and one validation scan, never a test scan), are parsed into
    ``<data_dir>/course/dtu-{smoke|full}/scans`` (already parsed scans are skipped by the parser).

    Returns the train-ready root (a folder of ``scan{N}/``). Raises DataError when parsing fails.
    """
    size = size or (SMOKE_SIZE if smoke else FULL_SIZE)
    raw, scans = course_dirs(smoke)
    if dtu_root() is not None:
        names = course_scan_names(_available_scans(raw), size.n_scans)
        if not names:
            raise DataError(f"DELTAZ_DTU_ROOT={raw}: expected scan folders of MVSNet's training list under Depths/ "
                            f"(e.g. Depths/{scan_list('train')[0]}_train), found none")
        summary = parse_dtu(raw, scans, scans=names, progress=progress)
        if not summary.ok:
            raise DataError(f"parsing the real DTU scans from {raw} failed:\n{summary}")
        return scans

    base = scans.parent
    settings = _settings(size, "synthetic")
    if _is_complete(base, settings):
        return scans
    # Render into a temporary folder, move it into place, parse, and write the marker last: a run that is
    # interrupted anywhere leaves no marker, so the next call starts again.
    (base / _MARKER).unlink(missing_ok=True)
    tmp = base.with_name(f".tmp-{base.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        height, width = size.image_hw
        synthetic.generate_dataset(
            tmp, n_scans=size.n_scans, seed=size.seed, n_views=size.n_views,
            width=width, height=height, progress=progress, style=size.style,
        )
        base.mkdir(parents=True, exist_ok=True)
        for folder in (raw, scans):
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, raw)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    summary = parse_dtu(raw, scans, progress=progress)
    if not summary.ok:
        raise DataError(f"parsing the generated course data in {raw} failed:\n{summary}")
    write_marker(base / _MARKER, settings)
    return scans


def course_scan_names(available: list[str], n_scans: int) -> list[str]:
    """The real DTU scans the course uses, picked by MVSNet's split (:mod:`deltaz.io.dtu.splits`).

    With ``n_scans >= 2``: the first ``n_scans − 1`` of MVSNet's training list that are ``available``, then the
    first of its validation list, so that training with ``split="auto"`` (which uses MVSNet's lists for real
    DTU) trains on training scans and validates on a validation scan. With one scan: the first training scan.
    Test scans are never picked (they are kept for the final report). Fewer names when fewer are available.
    """
    have = set(available)
    train = [s for s in scan_list("train") if s in have]
    val = [s for s in scan_list("val") if s in have]
    if n_scans <= 1 or not val:
        return train[: max(int(n_scans), 0)]
    return train[: n_scans - 1] + val[:1]


def accelerator_options(device: str | torch.device | None = None) -> dict[str, Any]:
    """:class:`~deltaz.engine.config.TrainConfig` fields for the machine: ``device`` (``None``/"auto" = CUDA when
    present, :func:`deltaz.engine.device.resolve_device`), ``amp`` (mixed precision, on CUDA only) and
    ``num_workers`` (2 loader processes on CUDA, where they keep the GPU fed; 0 on a CPU, where the same cores
    would be taken from the model). On a CPU: ``{"device": "cpu", "amp": False, "num_workers": 0}``."""
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    return {"device": str(dev), "amp": cuda, "num_workers": 2 if cuda else 0}


def sample_view(
    root: str | Path,
    scan: str | None = None,
    view_id: int = 0,
    num_views: int = 3,
    use_images: bool | None = None,
    preset: str = "mvs",
) -> dict[str, Any]:
    """One data sample (docs/DESIGN.md §4, no batch dimension) whose reference (view 0) is ``view_id``.

    Views 1…``num_views − 1`` are its best source views from ``pair.txt``. ``depth_init`` is the scan's
    real ``initial/`` depth or the fixed (validation) simulation of :mod:`deltaz.ops.corrupt` with ``preset``,
    so every call returns the same sample. ``use_images`` defaults to "when the scan has images".
    Returns the dict of :class:`deltaz.data.DepthRefinementDataset` (``depth``, ``depth_init``, ``mask``
    ``(V, H, W)`` mm; ``intrinsics (V, 3, 3)``; ``extrinsics (V, 3, 4)``; ``image (V, 3, H, W)``;
    ``view_ids``; ``depth_range (2,)``; ``scene``).
    """
    root = Path(root)
    scan = scan or list_scans(root)[0]
    if use_images is None:
        use_images = bool(read_meta(root / scan).get("has_images"))
    dataset = DepthRefinementDataset(
        root, [scan], num_views=num_views, preset=preset, train=False, use_images=use_images
    )
    for index, (_, ids) in enumerate(dataset.samples):
        if ids[0] == int(view_id):
            return dataset[index]
    raise DataError(f"{root / scan}: no view {view_id}, expected one of {[ids[0] for _, ids in dataset.samples]}")


def train_briefly(
    batch: dict[str, Any],
    weights,
    steps: int,
    seed: int = 0,
    lr: float = 2e-3,
    base_channel: int = 8,
    depth: int = 3,
    use_image: bool = False,
    threads: int | None = 1,
    device: str | torch.device | None = "cpu",
) -> tuple[torch.nn.Module, list[dict[str, float]]]:
    """Train a small :class:`~deltaz.model.DeltaZUnet` for ``steps`` Adam steps on ONE batch.

    The same seed gives the same initial weights, so two runs that differ only in ``weights``
    (:class:`deltaz.ops.losses.LossWeights`) show what those weights change. Each step is a step of
    :mod:`deltaz.engine.train`: :func:`~deltaz.engine.train.forward_batch` (view 0 is refined, holes of the initial
    depth stay holes) and :func:`deltaz.ops.losses.losses_for_batch` on :func:`~deltaz.engine.train.loss_batch`
    (the source views feed the multi-view term).

    ``threads``: torch CPU threads during the run (restored afterwards); one thread is the fastest for
    a model and a batch this small, and keeps a shared machine responsive. None keeps the current setting.

    ``device``: where the run goes (``None`` or ``"auto"`` = CUDA when present); the weights are initialised on
    the CPU with ``seed`` first, so every device starts from the same model. Default ``"cpu"``.

    Returns the trained model (in eval mode, on ``device``) and the history: one dict of detached loss terms
    per step.
    """
    dev = resolve_device(device)
    batch = {k: v.to(dev) if torch.is_tensor(v) else v for k, v in batch.items()}
    batch_for_loss = loss_batch(batch)
    torch.manual_seed(seed)
    model = DeltaZUnet(in_channels=4 if use_image else 1, base_channel=base_channel, depth=depth).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    model.train()
    previous_threads = torch.get_num_threads()
    if threads and dev.type == "cpu":
        torch.set_num_threads(int(threads))
    try:
        for _ in range(int(steps)):
            out = forward_batch(model, batch)
            total, terms = losses_for_batch(batch_for_loss, out, weights)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            history.append({name: float(value) for name, value in terms.items()})
    finally:
        torch.set_num_threads(previous_threads)
    return model.eval(), history


def loss_pull_maps(batch: dict[str, Any], depth_refined: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-pixel "pull" of each loss term: ``−H·W · ∂term/∂depth_refined`` for view 0 of ``batch``.

    Each term of :func:`deltaz.ops.losses.losses_for_batch` is isolated by a weight of 1 on it and 0 on the
    others; ``delta_z = depth_refined − depth_init``. A positive pull asks the pixel to move farther from
    the camera, a negative one nearer. The factor ``H·W`` turns a mean over pixels into a per-pixel
    number: the L1 depth term pulls each supervised pixel by ``±H·W/N`` (``N`` supervised pixels), about
    ±1 when most pixels are supervised. Weighted pulls add up to the pull of the weighted total, which is
    what a gradient step follows.

    Args:
        batch: ``(B, V, …)`` batch (docs/DESIGN.md §4); depth_refined: ``(B, H, W)`` mm.
    Returns:
        term name → ``(B, H, W)`` tensor (mm of loss per mm of depth, per pixel).
    """
    names = [name for name in TERMS if name != "total"]
    H, W = depth_refined.shape[-2:]
    maps = {}
    for name in names:
        d = depth_refined.detach().clone().requires_grad_(True)
        out = {"depth_refined": d, "delta_z": d - batch["depth_init"][:, 0]}
        one_hot = replace(LossWeights(**{n: 0.0 for n in names}), **{name: 1.0})
        total, _ = losses_for_batch(batch, out, one_hot)
        (grad,) = torch.autograd.grad(total, d, allow_unused=True)
        maps[name] = torch.zeros_like(d) if grad is None else -grad * (H * W)
    return maps


def batch_loss_maps(batch: dict[str, Any], depth_refined: torch.Tensor) -> dict[str, torch.Tensor]:
    """:func:`deltaz.ops.losses.loss_maps` for view 0 of a batch, wired as :func:`deltaz.ops.losses.losses_for_batch`.

    ``delta_z = depth_refined − depth_init``; the image (when present) guides the smoothness term and
    the source views' ground truth (zeroed outside their masks) feeds the multi-view term.
    Returns term name → unweighted per-pixel map ``(B, H, W)`` (0 where a pixel does not count).
    """
    depth, mask = batch["depth"], batch["mask"].bool()
    depth_init = batch["depth_init"][:, 0]
    multiview = multiview_inputs(batch)
    image = batch.get("image")
    with torch.no_grad():
        return loss_maps(
            depth_refined, depth_refined - depth_init, depth_init, depth[:, 0], mask[:, 0],
            image=None if image is None else image[:, 0], multiview=multiview,
        )


def source_of(obj: Any):
    """The source code of a function or class as an IPython ``Markdown`` code block.

    The last expression of a notebook cell is displayed, so ``course.source_of(geometry.reproject)``
    shows the code the package runs — never a copy that could drift.
    """
    from IPython.display import Markdown  # lazy: IPython is only there in a notebook

    return Markdown(f"```python\n{inspect.getsource(obj)}```")


# ------------------------------------------------------------------------------------------ load or train
__all__ += ["LOAD_OR_TRAIN_SMOKE", "LOAD_OR_TRAIN_FULL", "load_or_train"]

#: The input options of ``deltaz demo``, taken from its recipe (explained in notebooks/06_training.ipynb).
DEMO_INPUT_OPTIONS = {name: getattr(demo_train_config(), name) for name in ("fill_holes", "prefill_holes", "depth_scale_mm")}

#: The refiner that :func:`load_or_train` trains when no checkpoint is usable (its data root, split, folders and
#: ``config_overrides`` are filled in). Smoke: a few steps of a small U-Net. Full: notebook 06's recipe, a
#: 16-channel U-Net with image guidance and the demo's input options for 8 epochs (about 2 minutes on a 2-core
#: CPU for the full course data).
LOAD_OR_TRAIN_SMOKE = TrainConfig(batch_size=2, num_views=2, num_epochs=10_000, max_steps=4, base_channel=8,
                                  unet_depth=3, lr=1e-3, use_images=False, image_log_every=0, log_every=1,
                                  **DEMO_INPUT_OPTIONS)
LOAD_OR_TRAIN_FULL = TrainConfig(batch_size=4, num_views=2, num_epochs=8, scheduler_t0=8, base_channel=16, unet_depth=4,
                                 lr=1e-3, use_images=True, image_log_every=0, log_every=10, **DEMO_INPUT_OPTIONS)


def _why_unusable(path: Path, smoke: bool, model_fields: dict[str, Any]) -> str | None:
    """None when the checkpoint at ``path`` suits :func:`load_or_train`, else the reason it does not."""
    try:
        config = TrainConfig.from_dict(dict(load_checkpoint(path).get("config") or {}))
    except DeltaZError as error:
        return f"unreadable ({error})"
    if bool(config.extra.get("smoke", False)) != bool(smoke):
        return f"trained in {'smoke' if config.extra.get('smoke') else 'full'} mode"
    root = Path(config.data_root)
    if not (root.is_dir() and list_scans(root)):
        return f"its data root {root} holds no scans any more"
    differs = {k: (getattr(config, k), v) for k, v in model_fields.items() if getattr(config, k) != v}
    if differs:
        return "other model settings: " + ", ".join(f"{k} {a!r} (wanted {b!r})" for k, (a, b) in differs.items())
    return None


def _training_config(smoke: bool, data_root: str | Path, train_dir: Path, overrides: dict[str, Any]) -> TrainConfig:
    """:data:`LOAD_OR_TRAIN_SMOKE` / :data:`LOAD_OR_TRAIN_FULL` on ``data_root`` (one validation scene when there
    are two or more), run folder ``train_dir``, then ``overrides``; ``extra`` records the mode."""
    n_scans = len(list_scans(data_root))
    fields: dict[str, Any] = dict(
        data_root=str(data_root), split="auto", seed=0, progress=not smoke,
        val_split=round(1.0 / n_scans, 4) if n_scans >= 2 else 0.0,
        checkpoint_dir=str(train_dir / "checkpoints"), log_dir=str(train_dir / "logs"),
    )
    fields.update({k: v for k, v in accelerator_options(overrides.get("device")).items() if k not in overrides})
    fields.update(overrides)
    fields["extra"] = {**dict(fields.get("extra") or {}), "smoke": bool(smoke), "trained_by": "load_or_train"}
    return replace(LOAD_OR_TRAIN_SMOKE if smoke else LOAD_OR_TRAIN_FULL, **fields)


def load_or_train(
    checkpoint_path_or_dir: str | Path | list[str | Path] | tuple[str | Path, ...],
    data_root: str | Path,
    smoke: bool,
    train_dir: str | Path | None = None,
    **config_overrides: Any,
) -> tuple[torch.nn.Module, Path]:
    """A trained refiner: the first usable checkpoint among the candidates, else a small one trained now.

    A notebook that needs a trained model calls this, so it runs on its own (load-or-train).

    Args:
        checkpoint_path_or_dir: one candidate or a list, tried in order: a ``.pt`` file, or a run folder
            (its ``best.pt``, else ``last.pt``, in the folder or in its ``checkpoints/``), e.g. the run of
            notebooks/06_training.ipynb or ``runs/demo``. Missing candidates are skipped.
        data_root: train-ready scans to train on when no candidate is usable.
        smoke: smoke mode (a few steps of a small model) or full mode (notebook 06's recipe, minutes on a
            laptop CPU; :data:`LOAD_OR_TRAIN_SMOKE` / :data:`LOAD_OR_TRAIN_FULL`).
        train_dir: where that run goes (``checkpoints/``, ``logs/``); default
            ``<runs>/course/{smoke|full}/load_or_train``. It is tried after the candidates, so a second call
            loads what the first one trained.
        config_overrides: :class:`deltaz.engine.config.TrainConfig` fields for the training run (``device`` also
            places the returned model). Model fields among them (``use_images``, ``base_channel``, …,
            :data:`deltaz.engine.config.MODEL_FIELDS`) are also required of a loaded checkpoint.

    A checkpoint is usable when it loads (``weights_only``), was trained in the same mode (its
    ``TrainConfig.extra["smoke"]``; missing = full mode), its data root still holds scans (its validation
    scans are recovered from there, :func:`deltaz.engine.evaluate.resolve_scans`) and its model fields match the
    overrides. The reason each candidate is skipped is printed.

    Returns ``(model in eval mode, checkpoint path)``; the run's settings are in the checkpoint's ``config``.
    Explained in notebooks/07_evaluation.ipynb.
    """
    mode = "smoke" if smoke else "full"
    train_dir = Path(train_dir) if train_dir is not None else runs_dir() / "course" / mode / "load_or_train"
    single = isinstance(checkpoint_path_or_dir, (str, Path))
    candidates = [checkpoint_path_or_dir] if single else list(checkpoint_path_or_dir)
    model_fields = {k: v for k, v in config_overrides.items() if k in MODEL_FIELDS}
    device = resolve_device(config_overrides.get("device"))
    for candidate in [*candidates, train_dir]:
        path = find_checkpoint(candidate)
        if path is None:
            continue
        reason = _why_unusable(path, smoke, model_fields)
        if reason is None:
            model, _, path = load_refiner(path, device)
            print(f"load_or_train: loaded {path}")
            return model, path
        print(f"load_or_train: skipped {path}: {reason}")

    config = _training_config(smoke, data_root, train_dir, config_overrides)
    for sub in ("checkpoints", "logs"):  # a fresh run: no stale best.pt from an older one
        shutil.rmtree(train_dir / sub, ignore_errors=True)
    print(f"load_or_train: no usable checkpoint; training a {mode}-mode refiner into {train_dir}")
    result = training.train(config)
    path = Path(result["best_checkpoint"] or result["last_checkpoint"])
    model, _, path = load_refiner(path, device)
    return model, path
