"""The training loop as a short sequence of named steps: build, restore, (epoch, validate/log, save)*, result.

See :mod:`deltaz.engine.train` for what a run does and writes.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from deltaz.core.errors import ConfigError
from deltaz.engine import checkpoint as ckpt
from deltaz.engine import distributed as ddp
from deltaz.engine.config import TrainConfig
from deltaz.engine.device import resolve_device
from deltaz.engine.train.state import TrainRun, build, log, open_logs, restore, save
from deltaz.engine.train.step import EpochStats, run_epoch
from deltaz.engine.train.validate import evaluate_loader, log_validation

__all__ = ["train"]


def train(config: TrainConfig, resume: str | Path | None = None) -> dict[str, Any]:
    """Train a refiner as ``config`` says; returns paths, final metrics and the trained model.

    Args:
        config: every setting (see :class:`deltaz.engine.config.TrainConfig`).
        resume: ``None`` starts fresh; ``"latest"`` (or ``""``) continues from
            ``<checkpoint_dir>/last.pt``; a file or folder path continues from that checkpoint.
            The optimizer, scheduler, AMP scaler, epoch/step counters, best MAE and RNG states are
            restored, so N epochs in one go equal k epochs + resume to N.
    Returns:
        dict with ``checkpoint_dir, log_dir, last_checkpoint, best_checkpoint`` (str paths, best may be
        None without validation), ``config`` (resolved dict), ``epochs_completed``, ``steps``,
        ``stopped_by`` (``"num_epochs" | "max_steps" | "max_minutes" | "whole_cycles"``), ``final_metrics`` (the last
        validation, see :func:`~deltaz.engine.train.validate.evaluate_loader`; ``{}`` without validation),
        ``best_val_mae``, ``history`` (one dict per validation: epoch, step, lr, train_loss, val metrics,
        samples_per_s), ``nonfinite_skipped``, ``elapsed_s``, ``device``, ``split`` (the scene split used:
        ``{"mode", "reason"}``, also logged) and ``model`` (the unwrapped ``nn.Module``).
    Raises:
        ConfigError / DataError for bad settings or data, TrainingDiverged after
        ``config.max_nonfinite`` consecutive non-finite losses.
    """
    t_start = time.perf_counter()
    cfg = config.resolved()
    if not cfg.data_root:
        raise ConfigError("data_root is empty: pass --data-root <folder of train-ready scans>")
    device = resolve_device(cfg.device)
    info, device = ddp.init_distributed(device)
    try:
        run = build(cfg, device, info, t_start)
        if resume is not None:
            restore(run, resume)
        open_logs(run, resumed=resume is not None)
        try:
            _loop(run)
        finally:
            if run.writer is not None:
                run.writer.close()
        return _result(run)
    finally:
        ddp.cleanup(info)


def _loop(run: TrainRun) -> None:
    """Epochs until ``num_epochs`` or a budget (``max_steps`` also stops a resumed run that reached it)."""
    cfg = run.cfg
    run.epoch = run.start_epoch
    if cfg.max_steps is not None and run.step >= cfg.max_steps:
        run.stopped_by = "max_steps"
    t_loop = time.perf_counter()
    while run.epoch < cfg.num_epochs and run.stopped_by is None:
        stats = run_epoch(run)
        lr_used = run.optimizer.param_groups[0]["lr"]
        finished = stats.batch_index >= stats.n_batches
        if finished:
            run.epoch += 1
            run.start_batch = 0
            run.scheduler.step()
            if ddp.any_true(run.info.is_main and _next_cycle_cut(run, t_loop), run.info, run.device):
                run.stopped_by = "whole_cycles"
        if run.info.is_main:
            _end_epoch(run, stats, lr_used, finished, batch_in_epoch=0 if finished else stats.batch_index)
        ddp.barrier(run.info)


def _next_cycle_cut(run: TrainRun, t_loop: float, now: float | None = None) -> bool:
    """With ``whole_cycles`` and ``max_minutes``: True when ``run.epoch`` just ended a learning-rate cycle
    (``scheduler_t0`` epochs; the warm restarts keep that period) and the next cycle, at the mean wall time of this
    process's epochs so far (validation included), would not fit the budget's time left (under DDP rank 0's clock
    decides, as for the budget itself). ``t_loop``, ``now``: ``time.perf_counter()`` when the loop began and now."""
    cfg = run.cfg
    if not cfg.whole_cycles or cfg.max_minutes is None or run.epoch % cfg.scheduler_t0:
        return False
    if run.epoch >= cfg.num_epochs:
        return False  # the last epoch ends the run anyway: stopped by num_epochs
    now = time.perf_counter() if now is None else now
    pace = (now - t_loop) / max(run.epoch - run.start_epoch, 1)
    left = cfg.max_minutes * 60.0 - (now - run.t_start)
    return pace * cfg.scheduler_t0 > left


def _end_epoch(run: TrainRun, stats: EpochStats, lr_used: float, finished: bool, batch_in_epoch: int) -> None:
    """Rank 0 after an epoch (or a budget stop): validate, log, keep ``best.pt`` by validation MAE, write
    ``last.pt`` and one line of progress."""
    record: dict[str, Any] = {
        "epoch": run.epoch, "step": run.step, "lr": lr_used, "finished_epoch": finished,
        "train_loss": stats.train_loss,
        "samples_per_s": stats.samples / stats.seconds if stats.seconds > 0 else float("nan"),
    }
    if run.val_loader is not None:
        record.update({f"val_{k}": v for k, v in _validate(run, batch_in_epoch).items()})
    writer = run.writer
    writer.add_scalar("train/epoch_loss", record["train_loss"], run.step)
    writer.add_scalar("train/samples_per_s", record["samples_per_s"], run.step)
    writer.add_scalar("lr_epoch", lr_used, run.epoch)
    writer.flush()
    run.history.append(record)
    run.last_path = save(run, ckpt.LAST_NAME, batch_in_epoch)
    if run.cfg.progress:
        final, val_text = run.final_metrics, ""
        if final:
            val_text = (f", val MAE {final['mae_mm_init']:.3f} -> {final['mae_mm_refined']:.3f} mm "
                        "(initial -> refined)")
        log(run, f"epoch {run.epoch}: step {run.step}, train loss {record['train_loss']:.4f}, "
                 f"lr {lr_used:.2e}{val_text}")


def _validate(run: TrainRun, batch_in_epoch: int) -> dict[str, Any]:
    """Validation metrics (logged; a new best refined MAE writes ``best.pt``); image panels every
    ``image_log_every`` epochs, after the first and at a budget stop."""
    cfg = run.cfg
    log_images = bool(cfg.image_log_every) and (
        run.epoch % cfg.image_log_every == 0 or run.epoch == 1 or run.stopped_by is not None)
    metrics = evaluate_loader(run.net, run.val_loader, cfg.val_max_batches, run.device, run.weights, run.amp_dtype,
                              return_example=log_images, keep_holes=not cfg.fill_holes)
    example = metrics.pop("example", None)
    run.final_metrics = metrics
    log_validation(run.writer, metrics, example, run.step)
    mae = metrics["mae_mm_refined"]
    if math.isfinite(mae) and (run.best_val_mae is None or mae < run.best_val_mae):
        run.best_val_mae = float(mae)
        run.best_path = save(run, ckpt.BEST_NAME, batch_in_epoch)
    return metrics


def _result(run: TrainRun) -> dict[str, Any]:
    checkpoint_dir = Path(run.cfg.checkpoint_dir)
    last = run.last_path or (checkpoint_dir / ckpt.LAST_NAME if (checkpoint_dir / ckpt.LAST_NAME).is_file() else None)
    return {
        "checkpoint_dir": str(checkpoint_dir),
        "log_dir": str(Path(run.cfg.log_dir)),
        "last_checkpoint": str(last) if last else None,
        "best_checkpoint": str(run.best_path) if run.best_path else None,
        "config": run.cfg.to_dict(),
        "epochs_completed": run.epoch,
        "steps": run.step,
        "stopped_by": run.stopped_by or "num_epochs",
        "final_metrics": run.final_metrics,
        "best_val_mae": run.best_val_mae,
        "history": run.history,
        "nonfinite_skipped": run.nonfinite_total,
        "elapsed_s": time.perf_counter() - run.t_start,
        "device": str(run.device),
        "split": {"mode": run.split_mode, "reason": run.split_reason},
        "model": run.net,
    }
