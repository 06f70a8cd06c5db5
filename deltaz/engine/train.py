"""Training loop of DeltaZ and the ``deltaz train`` command.

:func:`train` (Python API, used by notebooks and the demo) and ``deltaz train`` (CLI) run the same loop:

* same-scene batches from :func:`deltaz.data.create_dataloaders`, view 0 refined by
  :func:`deltaz.model.refine`, losses from :func:`deltaz.ops.losses.losses_for_batch`;
* Adam (β 0.9/0.999, weight decay ``config.weight_decay``), ``CosineAnnealingWarmRestarts(T_0)``
  stepped once per epoch, gradient-norm clipping at ``config.grad_clip``;
* a step whose loss is NaN/inf is skipped and logged; ``config.max_nonfinite`` in a row stop the run
  with :class:`TrainingDiverged`;
* TensorBoard in ``config.log_dir`` (``loss/train/<term>``, ``loss/val``, ``lr``,
  ``metrics/val/<metric>_<init|refined>``, image panels), ``config.json`` next to the events;
* ``last.pt`` after every epoch (and when a budget stops the run mid-epoch) and ``best.pt`` by
  validation MAE in ``config.checkpoint_dir`` (see :mod:`deltaz.engine.checkpoint`); resuming continues exactly;
* budgets: ``max_steps`` optimizer steps and ``max_minutes`` wall-clock minutes (checked every step);
* AMP and ``channels_last`` on CUDA only (bf16 autocast where supported, else fp16 + GradScaler);
  ``--amp`` on a CPU prints a warning and trains in float32;
* DDP under ``torchrun`` (see :mod:`deltaz.engine.distributed`): the training batches are sharded across
  ranks, rank 0 alone evaluates, logs and writes checkpoints.

Holes of the initial depth stay holes (``refine(keep_holes=True)``) unless ``config.fill_holes``.
With ``config.multiscale`` the training loss is :func:`deltaz.ops.multiscale.multiscale_losses` (extra
``loss/train/<term>_s<k>`` tags per pyramid level); the validation loss stays single-scale, so runs compare.

Validation metrics (:class:`deltaz.ops.metrics.MetricAccumulator`) of the reference view: ``*_init`` and
``*_refined`` over the pixels with ground truth *and* an initial depth (the same pixels for both — the
headline comparison; ``best.pt`` uses ``mae_mm_refined``), and ``mae_mm_refined_all`` /
``mae_mm_init_all`` over every ground-truth pixel (initial holes count as errors of their full depth).
Explained in notebooks/04_training.ipynb.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from deltaz.engine import checkpoint as ckpt
from deltaz.engine import distributed as ddp
from deltaz.engine.device import resolve_device  # noqa: F401 (deltaz.engine.train.resolve_device stays importable)
from deltaz.engine.config import LOSS_WEIGHT_FIELDS, TrainConfig
from deltaz.data import create_dataloaders, set_epoch, to_device
from deltaz.core.errors import ConfigError, DeltaZError
from deltaz.ops.losses import losses_for_batch
from deltaz.ops.metrics import MetricAccumulator
from deltaz.model import build_model, model_config, refine
from deltaz.ops.multiscale import multiscale_losses

__all__ = ["TrainingDiverged", "train", "evaluate_loader", "forward_batch", "loss_batch", "add_arguments", "run"]

#: Metrics logged and returned for both the initial and the refined depth.
VAL_METRICS = ("mae_mm", "rmse_mm", "acc_1mm", "acc_2mm", "acc_4mm")


class TrainingDiverged(DeltaZError, RuntimeError):
    """Too many consecutive non-finite losses."""


# =========================================================================== helpers
def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _amp_settings(device: torch.device, amp: bool) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, use GradScaler). AMP is CUDA-only (documented in the module)."""
    if not amp:
        return None, False
    if device.type != "cuda":
        warnings.warn("--amp is CUDA-only; training in float32 on the CPU", stacklevel=3)
        return None, False
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, False
    return torch.float16, True


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def forward_batch(
    model: nn.Module, batch: dict[str, Any], amp_dtype: torch.dtype | None = None, keep_holes: bool = True
) -> dict[str, Any]:
    """:func:`deltaz.model.refine` on view 0 of a batch; outputs ``(B, H, W)`` float32 (mm).

    The image goes in when the model takes one (``in_channels == 4``); ``depth_range`` always does.
    ``keep_holes=True`` (default) zeroes Δz where ``depth_init`` has no value, so holes stay holes;
    ``False`` lets the model fill them (``TrainConfig.fill_holes``).
    """
    net = _unwrap(model)
    image = batch["image"][:, 0] if getattr(net, "in_channels", 1) == 4 else None
    if getattr(net, "in_channels", 1) == 4 and "image" not in batch:
        raise ConfigError("the model takes an image (use_images=True) but the batch has none")
    device = batch["depth_init"].device
    with _autocast(device, amp_dtype):
        out = refine(model, batch["depth_init"][:, 0], image=image, depth_range=batch["depth_range"],
                     keep_holes=keep_holes)
    return {k: (v.float() if torch.is_tensor(v) else v) for k, v in out.items()}


@torch.no_grad()
def forward_sources(model: nn.Module, batch: dict[str, Any], amp_dtype: torch.dtype | None = None,
                    keep_holes: bool = True) -> torch.Tensor:
    """The source views' (1…V−1) refined depths ``(B, V−1, H, W)`` mm, without gradient: the multi-view
    target of ``TrainConfig.multiview_target = "refined"``."""
    B, V = batch["depth_init"].shape[:2]
    flat = {k: (v[:, 1:].reshape(B * (V - 1), 1, *v.shape[2:]) if k in ("depth_init", "image") else v)
            for k, v in batch.items()}
    flat["depth_range"] = batch["depth_range"].repeat_interleave(V - 1, dim=0)
    depth = forward_batch(model, flat, amp_dtype, keep_holes)["depth_refined"]
    return torch.where(depth > 0, depth, torch.zeros_like(depth)).reshape(B, V - 1, *depth.shape[1:])


def loss_batch(batch: dict[str, Any], keep_holes: bool = True) -> dict[str, Any]:
    """The batch as the losses see it: with holes kept, reference pixels without an initial depth leave
    the mask (their error, the full ground-truth depth, is a constant no correction can change; left in,
    it would add ~70 mm to the logged depth loss for 10 % holes)."""
    if not keep_holes:
        return batch
    mask = batch["mask"].clone()
    mask[:, 0] &= batch["depth_init"][:, 0] > 0
    return {**batch, "mask": mask}


@torch.no_grad()
def evaluate_loader(
    model: nn.Module,
    loader,
    max_batches: int | None = None,
    device: str | torch.device | None = None,
    weights=None,
    amp_dtype: torch.dtype | None = None,
    return_example: bool = False,
    keep_holes: bool = True,
) -> dict[str, Any]:
    """Validation loss and depth metrics over at most ``max_batches`` batches of ``loader``.

    Returns ``loss`` (mean weighted total) and, for ``init`` and ``refined``,
    ``<metric>_<which>`` for :data:`VAL_METRICS` over pixels with ground truth and an initial depth,
    plus ``mae_mm_init_all``/``mae_mm_refined_all`` over every ground-truth pixel, ``n_batches`` and
    ``n_pixels``. With ``return_example=True`` also ``example``: the first batch's sample 0
    (``depth_init, depth_refined, depth, delta_z`` as ``(H, W)`` CPU tensors). The model is put back in
    its previous train/eval mode. ``keep_holes`` as in :func:`forward_batch`.
    """
    net = _unwrap(model)
    was_training = net.training
    net.eval()
    if device is None:
        device = next(net.parameters()).device
    acc = {"init": MetricAccumulator(), "refined": MetricAccumulator(),
           "init_all": MetricAccumulator(), "refined_all": MetricAccumulator()}
    loss_sum, n_batches, example = 0.0, 0, None
    try:
        for batch in loader:
            if max_batches is not None and n_batches >= max_batches:
                break
            batch = to_device(batch, device)
            out = forward_batch(net, batch, amp_dtype, keep_holes)
            loss, _ = losses_for_batch(loss_batch(batch, keep_holes), out, weights)
            loss_sum += float(loss)
            n_batches += 1
            gt = batch["depth"][:, 0]
            init = batch["depth_init"][:, 0]
            both = batch["mask"][:, 0] & (init > 0)
            acc["init"].update(init, gt, both)
            acc["refined"].update(out["depth_refined"], gt, both)
            acc["init_all"].update(init, gt)
            acc["refined_all"].update(out["depth_refined"], gt)
            if return_example and example is None:
                example = {
                    "depth_init": init[0].cpu(), "depth_refined": out["depth_refined"][0].cpu(),
                    "depth": gt[0].cpu(), "delta_z": out["delta_z"][0].cpu(), "scene": batch["scene"],
                }
    finally:
        net.train(was_training)
    result: dict[str, Any] = {"loss": loss_sum / max(n_batches, 1) if n_batches else float("nan"),
                              "n_batches": n_batches}
    for which in ("init", "refined"):
        values = acc[which].result()
        for name in VAL_METRICS:
            result[f"{name}_{which}"] = values[name]
        result[f"mae_mm_{which}_all"] = acc[f"{which}_all"].result()["mae_mm"]
    result["n_pixels"] = acc["refined"].n_pixels
    if return_example:
        result["example"] = example
    return result


def _panel_figure(example: dict[str, Any]):
    """Initial / refined / GT / Δz / error panels of one validation view (:mod:`deltaz.viz`)."""
    from deltaz import viz

    layers = viz.layers_from_view({k: v for k, v in example.items() if k != "scene"})
    return viz.render_depth_row(layers, title=f"validation: {example['scene']}")


# =========================================================================== the loop
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
        ``stopped_by`` (``"num_epochs" | "max_steps" | "max_minutes"``), ``final_metrics`` (the last
        validation, see :func:`evaluate_loader`; ``{}`` without validation), ``best_val_mae``,
        ``history`` (one dict per validation: epoch, step, lr, train_loss, val metrics, samples_per_s),
        ``nonfinite_skipped``, ``elapsed_s``, ``device`` and ``model`` (the unwrapped ``nn.Module``).
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
        return _train(cfg, resume, device, info, t_start)
    finally:
        ddp.cleanup(info)


def _train(cfg: TrainConfig, resume, device: torch.device, info: ddp.DistInfo, t_start: float) -> dict[str, Any]:
    import random

    import numpy as np

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    amp_dtype, use_scaler = _amp_settings(device, cfg.amp)
    on_cuda = device.type == "cuda"

    train_loader, val_loader = create_dataloaders(
        cfg.data_root, cfg.batch_size, cfg.num_views, cfg.val_split,
        seed=cfg.seed, preset=cfg.preset, use_images=cfg.use_images, num_workers=cfg.num_workers,
        pin_memory=on_cuda, split=cfg.split, initial_source=cfg.initial_source,
        estimator=cfg.estimator or None, align_fraction=cfg.align_fraction, crop_hw=cfg.crop,
        distributed=(info.rank, info.world_size) if info.enabled else False,
    )
    model = build_model(cfg.model, **cfg.model_kwargs()).to(device)
    if on_cuda:
        model = model.to(memory_format=torch.channels_last)
    weights = cfg.loss_weights()
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=cfg.scheduler_t0)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

    start_epoch, start_batch, step, best_val_mae = 0, 0, 0, None
    if resume is not None:
        path = ckpt.resolve_resume_path(str(resume), cfg.checkpoint_dir)
        state = ckpt.load_checkpoint(path, map_location="cpu")
        ckpt.check_compatible(state, model_config(model), path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if use_scaler and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, start_batch = int(state["epoch"]), int(state.get("batch_in_epoch", 0))
        step, best_val_mae = int(state["step"]), state.get("best_val_mae")
        ckpt.restore_rng_state(state["rng"])
        if info.is_main:
            print(f"resumed from {path}: epoch {start_epoch}, batch {start_batch}, step {step}", file=sys.stderr)
    net = model  # the plain module: evaluation, checkpoints
    if info.enabled:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if on_cuda else None)

    writer = None
    checkpoint_dir, log_dir = Path(cfg.checkpoint_dir), Path(cfg.log_dir)
    if info.is_main:
        from torch.utils.tensorboard import SummaryWriter

        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        cfg.save_json(log_dir / "config.json")
        writer = SummaryWriter(log_dir=str(log_dir), purge_step=step if resume is not None else None)

    def budget_exceeded() -> str | None:
        if cfg.max_steps is not None and step >= cfg.max_steps:
            return "max_steps"
        if cfg.max_minutes is not None and (time.perf_counter() - t_start) / 60.0 >= cfg.max_minutes:
            return "max_minutes"
        return None

    def save(name: str, epoch: int, batch_in_epoch: int) -> Path:
        return ckpt.save_checkpoint(checkpoint_dir / name, {
            "model": net.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "epoch": epoch, "batch_in_epoch": batch_in_epoch, "step": step,
            "best_val_mae": best_val_mae, "config": cfg.to_dict(), "model_config": model_config(net),
            "rng": ckpt.capture_rng_state(),
        })

    history: list[dict[str, Any]] = []
    final_metrics: dict[str, Any] = {}
    nonfinite_total, nonfinite_run = 0, 0
    # max_minutes is checked after each step (a run always makes at least one); max_steps also here,
    # for a resumed run that already reached it.
    stopped_by: str | None = "max_steps" if cfg.max_steps is not None and step >= cfg.max_steps else None
    epoch = start_epoch
    last_path = best_path = None
    if (checkpoint_dir / ckpt.BEST_NAME).is_file() and resume is not None:
        best_path = checkpoint_dir / ckpt.BEST_NAME

    while epoch < cfg.num_epochs and stopped_by is None:
        skip = start_batch if epoch == start_epoch else 0
        set_epoch(train_loader, epoch, skip)
        model.train()
        n_batches = len(train_loader)
        bar = None
        if info.is_main and cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_batches, initial=skip, desc=f"epoch {epoch + 1}/{cfg.num_epochs}", leave=False)
        running, window, loss_sum, loss_count, samples = None, {}, 0.0, 0, 0
        t_epoch = time.perf_counter()
        batch_index = skip
        for batch in train_loader:
            batch = to_device(batch, device)
            out = forward_batch(model, batch, amp_dtype, keep_holes=not cfg.fill_holes)
            if cfg.multiview_target == "refined":
                out["depth_src_refined"] = forward_sources(model, batch, amp_dtype, keep_holes=not cfg.fill_holes)
            if cfg.multiscale:
                loss, terms = multiscale_losses(
                    loss_batch(batch, not cfg.fill_holes), out, weights, cfg.scale_weights)
            else:
                loss, terms = losses_for_batch(loss_batch(batch, not cfg.fill_holes), out, weights,
                                               multiview_target=cfg.multiview_target)
            batch_index += 1
            finite = ddp.all_true(bool(torch.isfinite(loss)), info, device)
            if not finite:
                nonfinite_total += 1
                nonfinite_run += 1
                if writer is not None:
                    writer.add_scalar("train/nonfinite_skipped", nonfinite_total, step)
                if info.is_main:
                    print(f"step {step}: non-finite loss ({float(loss.detach())}), step skipped "
                          f"({nonfinite_run} in a row)", file=sys.stderr)
                if nonfinite_run >= cfg.max_nonfinite:
                    if bar is not None:
                        bar.close()
                    if writer is not None:
                        writer.close()
                    raise TrainingDiverged(
                        f"{nonfinite_run} non-finite losses in a row (epoch {epoch + 1}, step {step}); check "
                        f"the learning rate (lr={cfg.lr}: try 10x lower), the data (run the dataset checks "
                        f"on {cfg.data_root}), and AMP (amp={cfg.amp}: try without --amp)"
                    )
            else:
                nonfinite_run = 0
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                step += 1
                value = float(terms["total"])
                loss_sum += value
                loss_count += 1
                samples += int(batch["depth"].shape[0])
                running = value if running is None else 0.9 * running + 0.1 * value
                for name, term in terms.items():
                    window.setdefault(name, []).append(float(term))
                if writer is not None and step % cfg.log_every == 0:
                    for name, values in window.items():
                        writer.add_scalar(f"loss/train/{name}", sum(values) / len(values), step)
                    writer.add_scalar("lr", optimizer.param_groups[0]["lr"], step)
                    window = {}
            if bar is not None:
                bar.update(1)
                if running is not None:
                    bar.set_postfix(loss=f"{running:.3f}")
            reason = budget_exceeded()
            if ddp.any_true(reason is not None and info.is_main, info, device):
                stopped_by = reason or "max_minutes"
                break
        if bar is not None:
            bar.close()
        epoch_seconds = time.perf_counter() - t_epoch
        finished_epoch = batch_index >= n_batches
        lr_used = optimizer.param_groups[0]["lr"]
        if finished_epoch:
            epoch += 1
            start_batch = 0
            scheduler.step()
            batch_in_epoch = 0
        else:
            batch_in_epoch = batch_index

        if info.is_main:
            record: dict[str, Any] = {
                "epoch": epoch, "step": step, "lr": lr_used, "finished_epoch": finished_epoch,
                "train_loss": loss_sum / loss_count if loss_count else float("nan"),
                "samples_per_s": samples / epoch_seconds if epoch_seconds > 0 else float("nan"),
            }
            if val_loader is not None:
                log_images = bool(cfg.image_log_every) and (
                    epoch % cfg.image_log_every == 0 or epoch == 1 or stopped_by is not None)
                metrics = evaluate_loader(net, val_loader, cfg.val_max_batches, device, weights, amp_dtype,
                                          return_example=log_images, keep_holes=not cfg.fill_holes)
                example = metrics.pop("example", None)
                final_metrics = metrics
                record.update({f"val_{k}": v for k, v in metrics.items()})
                writer.add_scalar("loss/val", metrics["loss"], step)
                for name in VAL_METRICS:
                    for which in ("init", "refined"):
                        writer.add_scalar(f"metrics/val/{name}_{which}", metrics[f"{name}_{which}"], step)
                writer.add_scalar("metrics/val/mae_mm_refined_all", metrics["mae_mm_refined_all"], step)
                writer.add_scalar("metrics/val/mae_mm_init_all", metrics["mae_mm_init_all"], step)
                if example is not None:
                    writer.add_figure("val/panels", _panel_figure(example), step, close=False)
                mae = metrics["mae_mm_refined"]
                if math.isfinite(mae) and (best_val_mae is None or mae < best_val_mae):
                    best_val_mae = float(mae)
                    best_path = save(ckpt.BEST_NAME, epoch, batch_in_epoch)
            writer.add_scalar("train/epoch_loss", record["train_loss"], step)
            writer.add_scalar("train/samples_per_s", record["samples_per_s"], step)
            writer.add_scalar("lr_epoch", lr_used, epoch)
            writer.flush()
            history.append(record)
            last_path = save(ckpt.LAST_NAME, epoch, batch_in_epoch)
            if cfg.progress:
                val_text = ""
                if final_metrics:
                    val_text = (f", val MAE {final_metrics['mae_mm_init']:.3f} -> "
                                f"{final_metrics['mae_mm_refined']:.3f} mm (initial -> refined)")
                print(f"epoch {epoch}: step {step}, train loss {record['train_loss']:.4f}, "
                      f"lr {lr_used:.2e}{val_text}", file=sys.stderr)
        ddp.barrier(info)

    if writer is not None:
        writer.close()
    return {
        "checkpoint_dir": str(checkpoint_dir),
        "log_dir": str(log_dir),
        "last_checkpoint": str(last_path) if last_path else (
            str(checkpoint_dir / ckpt.LAST_NAME) if (checkpoint_dir / ckpt.LAST_NAME).is_file() else None),
        "best_checkpoint": str(best_path) if best_path else None,
        "config": cfg.to_dict(),
        "epochs_completed": epoch,
        "steps": step,
        "stopped_by": stopped_by or "num_epochs",
        "final_metrics": final_metrics,
        "best_val_mae": best_val_mae,
        "history": history,
        "nonfinite_skipped": nonfinite_total,
        "elapsed_s": time.perf_counter() - t_start,
        "device": str(device),
        "model": net,
    }


# =========================================================================== CLI
_FLAGS: list[tuple[str, str, dict[str, Any], str]] = [
    # (flag, TrainConfig field, argparse kwargs, help)
    ("--data-root", "data_root", {}, "folder of train-ready scans (scan*/ from `deltaz parse`)"),
    ("--batch-size", "batch_size", {"type": int}, "samples per batch, all from one scan"),
    ("--num-views", "num_views", {"type": int}, "views per sample: the reference + its best source views"),
    ("--num-epochs", "num_epochs", {"type": int}, "epochs to train (total, counting resumed ones)"),
    ("--lr", "lr", {"type": float}, "Adam learning rate"),
    ("--device", "device", {}, "cuda or cpu (default: cuda when available, else cpu)"),
    ("--val-split", "val_split", {"type": float}, "fraction of scans held out for validation (by scene)"),
    ("--split", "split", {"choices": ["auto", "random", "mvsnet"]},
     "scene split: MVSNet's lists for real DTU (auto), a seeded random split, or mvsnet"),
    ("--checkpoint-dir", "checkpoint_dir", {}, "where last.pt and best.pt go"),
    ("--log-dir", "log_dir", {}, "TensorBoard run folder (config.json is written there too)"),
    ("--seed", "seed", {"type": int}, "seed of the weights, data order and training corruption"),
    ("--max-steps", "max_steps", {"type": int}, "stop after this many optimizer steps"),
    ("--max-minutes", "max_minutes", {"type": float}, "stop after this many wall-clock minutes (time budget)"),
    ("--w-depth", "w_depth", {"type": float}, "weight of the L1 depth loss (mm)"),
    ("--w-improvement", "w_improvement", {"type": float}, "weight of the do-no-harm improvement loss"),
    ("--w-magnitude", "w_magnitude", {"type": float}, "weight of the delta_z magnitude loss"),
    ("--w-smoothness", "w_smoothness", {"type": float}, "weight of the edge-aware smoothness loss"),
    ("--w-multiview", "w_multiview", {"type": float}, "weight of the multi-view consistency loss"),
    ("--w-confidence", "w_confidence", {"type": float}, "weight of the confidence (Laplacian NLL) loss"),
    ("--scale-weights", "scale_weights", {"type": float, "nargs": "+", "metavar": "W"},
     "with --multiscale: weight of each pyramid level, full resolution first (one level per weight)"),
    ("--model", "model", {"choices": ["deltaz_unet", "mvsnet_refine"]}, "refinement network"),
    ("--base-channel", "base_channel", {"type": int}, "channels of the network's first level"),
    ("--unet-depth", "unet_depth", {"type": int}, "number of U-Net downsamplings (deltaz_unet)"),
    ("--depth-scale-mm", "depth_scale_mm", {"type": float, "metavar": "MM"},
     "normalise the network's depth input by this fixed half span in mm around the middle of the scan's depth "
     "range (the demo uses 20) instead of by the whole range"),
    ("--depth-scale-rel", "depth_scale_rel", {"type": float, "metavar": "R"},
     "scale-free normalisation: half span = R x the input's median depth (e.g. 0.03); overrides --depth-scale-mm "
     "and works at any scene scale"),
    ("--preset", "preset", {"metavar": "MODEL[:W,...]"},
     "initial-depth model when a scan has no initial/: mvs, mde, noise, none (simulated from the ground truth), "
     "planesweep / planesweep_raw (deltaz.ops.mvs on the images after / before its geometric filter, cached in each "
     "scan), or a weighted mix such as planesweep_raw:0.6,mvs:0.3,none:0.1"),
    ("--initial-source", "initial_source", {"choices": ["auto", "simulate", "estimator"]},
     "initial depths: initial/ when present else simulated (auto), always simulated, or from --estimator"),
    ("--estimator", "estimator", {"metavar": "MODULE:NAME"},
     "with --initial-source estimator: your depth network, image (3,H,W) -> depth up to scale/shift "
     "(deltaz.ops.align.load_estimator); aligned to the ground truth at --align-fraction of the pixels"),
    ("--align-fraction", "align_fraction", {"type": float}, "share of GT pixels used to align --estimator"),
    ("--multiview-target", "multiview_target", {"choices": ["gt", "refined"]},
     "multi-view loss against the sources' ground truth (gt) or their refined depths (refined, no gradient)"),
    ("--num-workers", "num_workers", {"type": int}, "data-loader worker processes"),
    ("--crop", "crop", {"type": int, "nargs": 2, "metavar": ("H", "W")},
     "train on random H x W windows of the views (cheaper steps, more of them in a time budget); "
     "validation sees whole views"),
    ("--val-max-batches", "val_max_batches", {"type": int}, "validate on at most this many batches"),
    ("--log-every", "log_every", {"type": int}, "steps between TensorBoard loss points"),
    ("--image-log-every", "image_log_every", {"type": int}, "epochs between TensorBoard image panels (0 = never)"),
]
_SWITCHES: list[tuple[str, str, str]] = [
    ("--images", "use_images", "feed the RGB image to the network (image guidance)"),
    ("--confidence", "out_confidence", "also predict a per-pixel confidence"),
    ("--multiscale", "multiscale", "depth, smoothness and multi-view losses on a 3-level pyramid (deltaz.ops.multiscale)"),
    ("--fill-holes", "fill_holes", "let the model fill holes of the initial depth (default: holes stay holes)"),
    ("--prefill-holes", "prefill_holes", "with --fill-holes: start each hole from a classical fill of its neighbours "
     "instead of 0 mm (the demo's recipe)"),
    ("--amp", "amp", "mixed precision on CUDA (bf16, or fp16 + GradScaler); ignored with a warning on CPU"),
    ("--no-progress", "progress", "no tqdm bars or per-epoch lines"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``deltaz train``. Every flag defaults to ``None`` (= not given), so ``--resume``
    keeps the resumed run's settings except the flags given explicitly."""
    defaults = TrainConfig()
    for flag, field, kwargs, help_text in _FLAGS:
        default = getattr(defaults, field)
        shown = "" if field == "device" else f" (default: {default})"
        parser.add_argument(flag, dest=field, default=None, help=help_text + shown, **kwargs)
    for flag, field, help_text in _SWITCHES:
        if field == "progress":
            parser.add_argument(flag, dest=field, action="store_const", const=False, default=None, help=help_text)
        else:
            parser.add_argument(flag, dest=field, action="store_const", const=True, default=None, help=help_text)
    parser.add_argument(
        "--resume", nargs="?", const="latest", default=None, metavar="PATH",
        help="continue a run: alone = <checkpoint-dir>/last.pt; or a checkpoint file/folder. "
             "Settings come from the checkpoint unless given as flags",
    )


def run(args: argparse.Namespace) -> int:
    """``deltaz train``: build the config from the flags (and the resumed run), train, print a summary.
    A bad option or dataset prints one ``deltaz train: error: ...`` line and returns 1."""
    try:
        return _run(args)
    except DeltaZError as error:
        print(f"deltaz train: error: {error}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    fields = [f for _, f, _, _ in _FLAGS] + [f for _, f, _ in _SWITCHES]
    given = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    base = TrainConfig(data_root="")
    if args.resume is not None:
        path = ckpt.resolve_resume_path(args.resume, given.get("checkpoint_dir", base.checkpoint_dir))
        saved = ckpt.load_checkpoint(path).get("config") or {}
        base = TrainConfig.from_dict(saved)
        args.resume = str(path)
    data = base.to_dict()
    data.update(given)
    if not data.get("data_root"):
        raise ConfigError("--data-root is required: a folder of train-ready scans (see `deltaz parse`)")
    config = TrainConfig.from_dict(data)
    device = resolve_device(config.device)
    config.device = str(device)
    print(f"deltaz train: device {device}", file=sys.stderr)
    result = train(config, resume=args.resume)
    if ddp.env_world_size() <= 1 or int(__import__("os").environ.get("RANK", "0")) == 0:
        metrics = result["final_metrics"]
        print(f"stopped by {result['stopped_by']} after {result['epochs_completed']} epoch(s), "
              f"{result['steps']} step(s), {result['elapsed_s']:.1f} s")
        if metrics:
            print(f"validation MAE: initial {metrics['mae_mm_init']:.3f} mm -> refined "
                  f"{metrics['mae_mm_refined']:.3f} mm; within 1 mm: {metrics['acc_1mm_init']:.1f}% -> "
                  f"{metrics['acc_1mm_refined']:.1f}%")
        print(f"checkpoints: {result['last_checkpoint']} (best: {result['best_checkpoint']}); "
              f"TensorBoard: tensorboard --logdir {result['log_dir']}")
    return 0
