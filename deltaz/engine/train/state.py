"""The state of one training run and the steps that set it up: build, restore, open the logs, save.

:class:`TrainRun` holds what the loop changes (counters, best MAE, history) next to what it uses (config,
loaders, model, optimiser). :func:`build` seeds and constructs everything in a fixed order (seeds, loaders,
model, optimiser), :func:`restore` then loads a checkpoint (weights, optimiser, scheduler, scaler, counters,
RNG states), so N epochs in one go equal k epochs + resume to N. Checkpoint format: :mod:`deltaz.engine.checkpoint`.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from deltaz.core.errors import DataError
from deltaz.data import create_dataloaders
from deltaz.data.splits import resolve_split
from deltaz.engine import checkpoint as ckpt
from deltaz.engine import distributed as ddp
from deltaz.engine.config import TrainConfig
from deltaz.engine.train.forward import amp_settings
from deltaz.io.dtu import layout
from deltaz.model import build_model, model_config

__all__ = ["TrainRun", "build", "restore", "open_logs", "save", "budget_exceeded", "log"]


@dataclass
class TrainRun:
    """Everything one run uses and changes. ``model`` may be the DDP wrapper; ``net`` is the plain module
    (evaluation, checkpoints). ``epoch`` counts completed epochs, ``step`` optimizer steps."""

    cfg: TrainConfig
    device: torch.device
    info: ddp.DistInfo
    t_start: float
    amp_dtype: torch.dtype | None
    train_loader: Any
    val_loader: Any
    net: nn.Module
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    weights: Any
    split_mode: str = ""
    split_reason: str = ""
    writer: Any = None
    epoch: int = 0
    start_epoch: int = 0
    start_batch: int = 0
    step: int = 0
    best_val_mae: float | None = None
    stopped_by: str | None = None
    last_path: Path | None = None
    best_path: Path | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    final_metrics: dict[str, Any] = field(default_factory=dict)
    nonfinite_total: int = 0
    nonfinite_run: int = 0


def log(run: TrainRun, text: str) -> None:
    """One line on stderr, from rank 0 only."""
    if run.info.is_main:
        print(text, file=sys.stderr)


def _split_reason(cfg: TrainConfig) -> tuple[str, str]:
    """Which scene split the data root gets and why (:func:`deltaz.data.splits.resolve_split`)."""
    root = Path(cfg.data_root)
    try:
        sources = [str(layout.read_meta(root / s).get("source", "")) for s in layout.list_scans(root)]
    except (OSError, ValueError, DataError):
        sources = []
    return resolve_split(cfg.split, sources, cfg.val_split)


def build(cfg: TrainConfig, device: torch.device, info: ddp.DistInfo, t_start: float) -> TrainRun:
    """Seed every RNG with ``cfg.seed``, then make the loaders, model, optimiser, scheduler and AMP scaler."""
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    amp_dtype, use_scaler = amp_settings(device, cfg.amp)
    on_cuda = device.type == "cuda"
    train_loader, val_loader = create_dataloaders(
        cfg.data_root, cfg.batch_size, cfg.num_views, cfg.val_split,
        seed=cfg.seed, preset=cfg.preset, use_images=cfg.use_images, num_workers=cfg.num_workers,
        pin_memory=on_cuda, split=cfg.split, initial_source=cfg.initial_source,
        estimator=cfg.estimator or None, align_fraction=cfg.align_fraction, crop_hw=cfg.crop,
        image_augment=cfg.image_augment,
        distributed=(info.rank, info.world_size) if info.enabled else False, split_seed=cfg.split_seed,
    )
    model = build_model(cfg.model, **cfg.model_kwargs()).to(device)
    if on_cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
    run = TrainRun(
        cfg=cfg, device=device, info=info, t_start=t_start, amp_dtype=amp_dtype, train_loader=train_loader,
        val_loader=val_loader, net=model, model=model, optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=cfg.scheduler_t0),
        scaler=torch.amp.GradScaler(device.type, enabled=use_scaler), weights=cfg.loss_weights(),
    )
    run.split_mode, run.split_reason = _split_reason(cfg)
    log(run, f"scene split: {run.split_reason}")
    return run


def restore(run: TrainRun, resume: str | Path) -> None:
    """Continue from a checkpoint (``"latest"``/``""`` = ``<checkpoint_dir>/last.pt``, or a file/folder):
    weights (refused when the model configuration differs), optimiser, scheduler, scaler, counters, RNG."""
    path = ckpt.resolve_resume_path(str(resume), run.cfg.checkpoint_dir)
    state = ckpt.load_checkpoint(path, map_location="cpu")
    ckpt.check_compatible(state, model_config(run.net), path)
    run.net.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if run.scaler.is_enabled() and state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    run.start_epoch, run.start_batch = int(state["epoch"]), int(state.get("batch_in_epoch", 0))
    run.step, run.best_val_mae = int(state["step"]), state.get("best_val_mae")
    ckpt.restore_rng_state(state["rng"])
    best = Path(run.cfg.checkpoint_dir) / ckpt.BEST_NAME
    run.best_path = best if best.is_file() else None
    log(run, f"resumed from {path}: epoch {run.start_epoch}, batch {run.start_batch}, step {run.step}")


def open_logs(run: TrainRun, resumed: bool) -> None:
    """Wrap the model in DDP when distributed; on rank 0 create the checkpoint folder, write ``config.json``
    and open the TensorBoard writer (a resumed run purges events after its step)."""
    if run.info.enabled:
        on_cuda = run.device.type == "cuda"
        run.model = nn.parallel.DistributedDataParallel(run.net, device_ids=[run.device.index] if on_cuda else None)
    if run.info.is_main:
        from torch.utils.tensorboard import SummaryWriter  # TensorBoard loads only for a run that logs

        Path(run.cfg.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        run.cfg.save_json(Path(run.cfg.log_dir) / "config.json")
        run.writer = SummaryWriter(log_dir=str(run.cfg.log_dir), purge_step=run.step if resumed else None)


def save(run: TrainRun, name: str, batch_in_epoch: int) -> Path:
    """Write ``<checkpoint_dir>/<name>`` (atomically) with everything :func:`restore` reads."""
    return ckpt.save_checkpoint(Path(run.cfg.checkpoint_dir) / name, {
        "model": run.net.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(),
        "epoch": run.epoch, "batch_in_epoch": batch_in_epoch, "step": run.step,
        "best_val_mae": run.best_val_mae, "config": run.cfg.to_dict(), "model_config": model_config(run.net),
        "rng": ckpt.capture_rng_state(),
    })


def budget_exceeded(run: TrainRun) -> str | None:
    """``"max_steps"`` / ``"max_minutes"`` when that budget is used up, else None."""
    cfg = run.cfg
    if cfg.max_steps is not None and run.step >= cfg.max_steps:
        return "max_steps"
    if cfg.max_minutes is not None and (time.perf_counter() - run.t_start) / 60.0 >= cfg.max_minutes:
        return "max_minutes"
    return None
