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
* budgets: ``max_steps`` optimizer steps and ``max_minutes`` wall-clock minutes (checked every step); with
  ``whole_cycles`` a time-budgeted run stops at the end of a learning-rate cycle when the next whole cycle would not
  fit (in the demo's run of 2026-12-05 the restart the budget cut raised the validation error; best.pt was the
  cycle's end);
* AMP and ``channels_last`` on CUDA only (bf16 autocast where supported, else fp16 + GradScaler);
  ``--amp`` on a CPU prints a warning and trains in float32;
* DDP under ``torchrun`` (see :mod:`deltaz.engine.distributed`): the training batches are sharded across
  ranks, rank 0 alone evaluates, logs and writes checkpoints.

Holes of the initial depth stay holes (``refine(keep_holes=True)``) unless ``config.fill_holes``.
With ``config.multiscale`` the training loss is :func:`deltaz.ops.multiscale.multiscale_losses` (extra
``loss/train/<term>_s<k>`` tags per pyramid level); the validation loss stays single-scale, so runs compare.

Validation metrics: :mod:`deltaz.engine.train.validate`. The training log names the scene split used and
why (:func:`deltaz.data.splits.resolve_split`). Explained in notebooks/06_training.ipynb.

Modules, one job each: :mod:`~deltaz.engine.train.forward` (a forward pass, AMP, the loss mask),
:mod:`~deltaz.engine.train.state` (build, restore, open the logs, save), :mod:`~deltaz.engine.train.step`
(a step, an epoch, non-finite skipping), :mod:`~deltaz.engine.train.validate` (validation and its logs),
:mod:`~deltaz.engine.train.loop` (:func:`train`), :mod:`~deltaz.engine.train.cli` (``deltaz train``).
"""

from __future__ import annotations

from deltaz.engine.device import resolve_device  # noqa: F401 (deltaz.engine.train.resolve_device stays importable)
from deltaz.engine.train.cli import add_arguments, run
from deltaz.engine.train.forward import amp_settings as _amp_settings  # noqa: F401 (benchmarks/bench_train.py)
from deltaz.engine.train.forward import forward_batch, forward_sources, loss_batch
from deltaz.engine.train.loop import train
from deltaz.engine.train.step import TrainingDiverged
from deltaz.engine.train.validate import VAL_METRICS, evaluate_loader

__all__ = ["TrainingDiverged", "train", "evaluate_loader", "forward_batch", "forward_sources", "loss_batch",
           "VAL_METRICS", "add_arguments", "run"]
