"""Validation of a refiner on a loader, and its TensorBoard scalars and image panels.

Metrics (:class:`deltaz.ops.metrics.MetricAccumulator`) of the reference view: ``*_init`` and ``*_refined``
over the pixels with ground truth *and* an initial depth (the same pixels for both — the headline comparison;
``best.pt`` uses ``mae_mm_refined``), and ``mae_mm_refined_all`` / ``mae_mm_init_all`` over every ground-truth
pixel (initial holes count as errors of their full depth).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from deltaz.data import to_device
from deltaz.ops.losses import losses_for_batch
from deltaz.ops.metrics import MetricAccumulator
from deltaz.engine.train.forward import forward_batch, loss_batch, unwrap

__all__ = ["VAL_METRICS", "evaluate_loader", "log_validation"]

#: Metrics logged and returned for both the initial and the refined depth.
VAL_METRICS = ("mae_mm", "rmse_mm", "acc_1mm", "acc_2mm", "acc_4mm")


def _accumulate(acc: dict[str, MetricAccumulator], batch: dict[str, Any], refined: torch.Tensor) -> None:
    """Add one batch's reference view (init and refined, ``(B, H, W)`` mm) to the four accumulators."""
    gt, init = batch["depth"][:, 0], batch["depth_init"][:, 0]
    both = batch["mask"][:, 0] & (init > 0)
    acc["init"].update(init, gt, both)
    acc["refined"].update(refined, gt, both)
    acc["init_all"].update(init, gt)
    acc["refined_all"].update(refined, gt)


def _summary(acc: dict[str, MetricAccumulator], loss_sum: float, n_batches: int) -> dict[str, Any]:
    result: dict[str, Any] = {"loss": loss_sum / n_batches if n_batches else float("nan"), "n_batches": n_batches}
    for which in ("init", "refined"):
        values = acc[which].result()
        for name in VAL_METRICS:
            result[f"{name}_{which}"] = values[name]
        result[f"mae_mm_{which}_all"] = acc[f"{which}_all"].result()["mae_mm"]
    result["n_pixels"] = acc["refined"].n_pixels
    return result


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
    its previous train/eval mode. ``keep_holes`` as in :func:`~deltaz.engine.train.forward.forward_batch`.
    """
    net = unwrap(model)
    was_training = net.training
    net.eval()
    if device is None:
        device = next(net.parameters()).device
    acc = {key: MetricAccumulator() for key in ("init", "refined", "init_all", "refined_all")}
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
            _accumulate(acc, batch, out["depth_refined"])
            if return_example and example is None:
                example = {
                    "depth_init": batch["depth_init"][0, 0].cpu(), "depth_refined": out["depth_refined"][0].cpu(),
                    "depth": batch["depth"][0, 0].cpu(), "delta_z": out["delta_z"][0].cpu(), "scene": batch["scene"],
                }
    finally:
        net.train(was_training)
    result = _summary(acc, loss_sum, n_batches)
    if return_example:
        result["example"] = example
    return result


def _panel_figure(example: dict[str, Any]):
    """Initial / refined / GT / Δz / error panels of one validation view (:mod:`deltaz.viz`)."""
    from deltaz import viz  # lazy: matplotlib loads only when image panels are logged

    layers = viz.layers_from_view({k: v for k, v in example.items() if k != "scene"})
    return viz.render_depth_row(layers, title=f"validation: {example['scene']}")


def log_validation(writer, metrics: dict[str, Any], example: dict[str, Any] | None, step: int) -> None:
    """TensorBoard: ``loss/val``, ``metrics/val/<metric>_<init|refined>``, the ``*_all`` MAEs and, with an
    ``example``, the ``val/panels`` figure."""
    writer.add_scalar("loss/val", metrics["loss"], step)
    for name in VAL_METRICS:
        for which in ("init", "refined"):
            writer.add_scalar(f"metrics/val/{name}_{which}", metrics[f"{name}_{which}"], step)
    writer.add_scalar("metrics/val/mae_mm_refined_all", metrics["mae_mm_refined_all"], step)
    writer.add_scalar("metrics/val/mae_mm_init_all", metrics["mae_mm_init_all"], step)
    if example is not None:
        writer.add_figure("val/panels", _panel_figure(example), step, close=False)
