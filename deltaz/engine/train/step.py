"""One training step (forward, loss, non-finite check, backward, clip, optimiser step) and one epoch of them.

A step whose loss is NaN/inf (on any rank) is skipped and logged; ``cfg.max_nonfinite`` in a row stop the run
with :class:`TrainingDiverged`. Losses: :func:`deltaz.ops.losses.losses_for_batch`, or with ``cfg.multiscale``
:func:`deltaz.ops.multiscale.multiscale_losses` (extra ``loss/train/<term>_s<k>`` tags per pyramid level).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from deltaz.core.errors import DeltaZError
from deltaz.data import set_epoch, to_device
from deltaz.engine import distributed as ddp
from deltaz.engine.train.forward import forward_batch, forward_sources, loss_batch
from deltaz.engine.train.state import TrainRun, budget_exceeded, log
from deltaz.ops.losses import losses_for_batch
from deltaz.ops.multiscale import multiscale_losses

__all__ = ["TrainingDiverged", "EpochStats", "train_step", "run_epoch"]


class TrainingDiverged(DeltaZError, RuntimeError):
    """Too many consecutive non-finite losses."""


@dataclass
class EpochStats:
    """What one epoch measured: mean training loss, samples per second, where it stopped."""

    loss_sum: float = 0.0
    loss_count: int = 0
    samples: int = 0
    running: float | None = None  # exponential moving average of the loss, for the progress bar
    window: dict[str, list[float]] = field(default_factory=dict)  # loss terms since the last TensorBoard point
    batch_index: int = 0
    n_batches: int = 0
    seconds: float = 0.0

    @property
    def train_loss(self) -> float:
        return self.loss_sum / self.loss_count if self.loss_count else float("nan")


def _losses(run: TrainRun, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    cfg, keep = run.cfg, not run.cfg.fill_holes
    out = forward_batch(run.model, batch, run.amp_dtype, keep_holes=keep, image_dropout=cfg.image_dropout)
    if cfg.multiview_target == "refined":
        out["depth_src_refined"] = forward_sources(run.model, batch, run.amp_dtype, keep_holes=keep)
    if cfg.multiscale:
        return multiscale_losses(loss_batch(batch, keep), out, run.weights, cfg.scale_weights)
    return losses_for_batch(loss_batch(batch, keep), out, run.weights, multiview_target=cfg.multiview_target)


def _skip_nonfinite(run: TrainRun, loss: torch.Tensor) -> None:
    """Count and log a skipped step; raise :class:`TrainingDiverged` after ``max_nonfinite`` in a row."""
    run.nonfinite_total += 1
    run.nonfinite_run += 1
    if run.writer is not None:
        run.writer.add_scalar("train/nonfinite_skipped", run.nonfinite_total, run.step)
    log(run, f"step {run.step}: non-finite loss ({float(loss.detach())}), step skipped ({run.nonfinite_run} in a row)")
    if run.nonfinite_run >= run.cfg.max_nonfinite:
        cfg = run.cfg
        raise TrainingDiverged(
            f"{run.nonfinite_run} non-finite losses in a row (epoch {run.epoch + 1}, step {run.step}); check "
            f"the learning rate (lr={cfg.lr}: try 10x lower), the data (run the dataset checks "
            f"on {cfg.data_root}), and AMP (amp={cfg.amp}: try without --amp)"
        )


def train_step(run: TrainRun, batch: dict[str, Any], stats: EpochStats) -> None:
    """One optimizer step on ``batch`` (already on the device), or a skipped one for a non-finite loss."""
    loss, terms = _losses(run, batch)
    stats.batch_index += 1
    if not ddp.all_true(bool(torch.isfinite(loss)), run.info, run.device):
        _skip_nonfinite(run, loss)
        return
    run.nonfinite_run = 0
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.grad_clip)
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.step += 1
    value = float(terms["total"])
    stats.loss_sum += value
    stats.loss_count += 1
    stats.samples += int(batch["depth"].shape[0])
    stats.running = value if stats.running is None else 0.9 * stats.running + 0.1 * value
    for name, term in terms.items():
        stats.window.setdefault(name, []).append(float(term))
    if run.writer is not None and run.step % run.cfg.log_every == 0:
        for name, values in stats.window.items():
            run.writer.add_scalar(f"loss/train/{name}", sum(values) / len(values), run.step)
        run.writer.add_scalar("lr", run.optimizer.param_groups[0]["lr"], run.step)
        stats.window = {}


def _progress_bar(run: TrainRun, stats: EpochStats):
    if not (run.info.is_main and run.cfg.progress):
        return None
    from tqdm.auto import tqdm  # tqdm loads only for a run that shows bars

    return tqdm(total=stats.n_batches, initial=stats.batch_index, desc=f"epoch {run.epoch + 1}/{run.cfg.num_epochs}",
                leave=False)


def run_epoch(run: TrainRun) -> EpochStats:
    """The training batches of epoch ``run.epoch`` (after the ``start_batch`` a resumed run already did) until
    the loader ends or a budget is used up (then ``run.stopped_by`` says which; every rank agrees)."""
    skip = run.start_batch if run.epoch == run.start_epoch else 0
    set_epoch(run.train_loader, run.epoch, skip)
    run.model.train()
    stats = EpochStats(batch_index=skip, n_batches=len(run.train_loader))
    bar = _progress_bar(run, stats)
    t_epoch = time.perf_counter()
    try:
        for batch in run.train_loader:
            train_step(run, to_device(batch, run.device), stats)
            if bar is not None:
                bar.update(1)
                if stats.running is not None:
                    bar.set_postfix(loss=f"{stats.running:.3f}")
            reason = budget_exceeded(run)
            if ddp.any_true(reason is not None and run.info.is_main, run.info, run.device):
                run.stopped_by = reason or "max_minutes"
                break
    finally:
        if bar is not None:
            bar.close()
    stats.seconds = time.perf_counter() - t_epoch
    return stats
