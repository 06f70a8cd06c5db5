"""Course helpers of notebook 05 (losses): loss maps whose means are the losses, and with/without experiments.

* :func:`contribution_maps` — one map per loss term whose mean over the pixels that count is exactly the
  term of :func:`deltaz.ops.losses.losses_for_batch` (the loss explorer shows these).
* :func:`term_values` — the unweighted terms of :func:`~deltaz.ops.losses.losses_for_batch` as floats.
* :func:`lesson_batches` — small training crops of some views and one held-out view to score on.
* :func:`seed_runs`, :func:`spread`, :func:`paired_effect`, :func:`exceeds_spread` — a short training run per
  seed with some loss weights changed, scored on the held-out view, and the seed-to-seed spread of an effect.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Sequence

import torch

from deltaz.core.batch import MultiViewBatch
from deltaz.core.errors import DataError
from deltaz.course import sample_view, train_briefly
from deltaz.data import collate_same_scene
from deltaz.engine.train import forward_batch, loss_batch
from deltaz.io.dtu.layout import list_scans
from deltaz.ops.losses import TERMS, LossWeights, losses_for_batch
from deltaz.ops.losses.multiview import _multiview_pairs
from deltaz.ops.losses.terms import _has_input, _smoothness_terms, depth_loss_map, improvement_loss_map, magnitude_loss_map

__all__ = ["contribution_maps", "term_values", "crop_views", "lesson_batches", "seed_runs", "spread",
           "paired_effect", "exceeds_spread", "show_spread"]

#: The five weighted terms of the training loss (``TERMS`` without ``total``).
NAMES = tuple(name for name in TERMS if name != "total")


def _scaled(parts: Sequence[tuple[torch.Tensor, torch.Tensor]], shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel share of a loss that is ``Σ_parts Σ kept values / Σ_parts kept count``, times the number of
    pixels that carry any share: a map whose mean over those pixels is the loss. Each part is a
    ``(values, keep)`` pair whose last two dimensions start at the pixel the value belongs to."""
    total = torch.zeros(shape, dtype=parts[0][0].dtype, device=parts[0][0].device)
    used = torch.zeros(shape, dtype=torch.bool, device=total.device)
    for values, keep in parts:
        h, w = values.shape[-2:]
        total[..., :h, :w] += torch.where(keep, values, torch.zeros_like(values))
        used[..., :h, :w] |= keep
    return total, used


def contribution_maps(batch: MultiViewBatch | dict, depth_refined: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-pixel maps ``(B, H, W)`` of the five unweighted terms for view 0 of ``batch``, NaN where a pixel
    does not count; the mean over the non-NaN pixels of each map is that term of
    :func:`deltaz.ops.losses.losses_for_batch` with ``delta_z = depth_refined − depth_init`` (pass
    :func:`deltaz.engine.train.loss_batch` of the loader's batch, as training does).

    depth, improvement, magnitude: the per-pixel values over their masks (their losses are masked means).
    smoothness: each pixel holds the x-term of the pair to its right and the y-term of the pair below it,
    each scaled by ``N / N_x`` and ``N / N_y`` (``N`` pixels with a pair, ``N_x``/``N_y`` pairs): the loss is
    ``mean_x + mean_y``. multiview: the sum over sources of the pixel's residuals, times
    ``N / (number of kept pairs)`` (``N`` pixels kept by a source): the loss averages over pairs.
    """
    b = MultiViewBatch.from_mapping(batch)
    ref = b.ref
    depth_refined = depth_refined.detach()
    depth_init, depth_gt, mask = ref.depth_init, ref.depth, ref.mask.bool()
    maps = {
        "depth": depth_loss_map(depth_refined, depth_gt, mask),
        "improvement": improvement_loss_map(depth_refined, depth_init, depth_gt, mask),
        "magnitude": magnitude_loss_map(depth_refined - depth_init, _has_input(depth_init)),
    }
    guide = ref.image if ref.image is not None else depth_init
    pair_sets = {"smoothness": list(_smoothness_terms(depth_refined, guide))}
    multiview = b.multiview("depth")
    if multiview is not None:
        pair_sets["multiview"] = list(_multiview_pairs(depth_refined, multiview, None, 0.02, 0.5))
    for name, parts in pair_sets.items():
        counts = [keep.sum() for _, keep in parts]
        if name == "smoothness":  # mean_x + mean_y: each direction divided by its own pair count
            parts = [(values / count.clamp(min=1), keep) for (values, keep), count in zip(parts, counts)]
        else:  # one mean over every (pixel, source) pair
            parts = [(values / sum(counts).clamp(min=1), keep) for values, keep in parts]
        total, used = _scaled(parts, depth_refined.shape)
        maps[name] = (total * used.sum(), used)
    out = {name: torch.where(keep, values, torch.full_like(values, math.nan)) for name, (values, keep) in maps.items()}
    if "multiview" not in out:
        out["multiview"] = torch.full_like(depth_refined, math.nan)
    return out


def term_values(batch: MultiViewBatch | dict, depth_refined: torch.Tensor) -> dict[str, float]:
    """The unweighted terms of :func:`deltaz.ops.losses.losses_for_batch` for ``depth_refined`` (view 0)."""
    depth_init = MultiViewBatch.from_mapping(batch).ref.depth_init
    with torch.no_grad():
        _, terms = losses_for_batch(batch, {"depth_refined": depth_refined, "delta_z": depth_refined - depth_init})
    return {name: float(terms[name]) for name in NAMES}


def crop_views(sample: dict[str, Any], top: int, left: int, height: int, width: int) -> dict[str, Any]:
    """A window of every view of a sample (``(V, …)`` tensors); ``cx, cy`` lose the window's offset, so the
    cameras still describe the cropped pixels (docs/DESIGN.md §1)."""
    out = dict(sample)
    for key in ("depth", "depth_init", "mask", "image"):
        if key in sample:
            out[key] = sample[key][..., top:top + height, left:left + width].contiguous()
    K = sample["intrinsics"].clone()
    K[:, 0, 2] -= left
    K[:, 1, 2] -= top
    out["intrinsics"] = K
    return out


def lesson_batches(
    root: str | Path, train_views: Sequence[int], crop_hw: tuple[int, int], num_views: int = 3, preset: str = "mvs"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(train, held_out)``, both as the losses see them (:func:`deltaz.engine.train.loss_batch`).

    ``train``: the centre ``crop_hw`` window of each of ``train_views`` of the first scan, one batch
    (``B = len(train_views)``). ``held_out``: view 0 of the last scan, whole, when the root has more than
    one scan; otherwise the first view of the first scan that is not a training view.
    """
    scans = list_scans(root)
    samples = [sample_view(root, scans[0], view_id=v, num_views=num_views, preset=preset) for v in train_views]
    H, W = samples[0]["depth"].shape[-2:]
    h, w = crop_hw
    if h > H or w > W:
        raise DataError(f"crop_hw={crop_hw} is larger than the views ({H}, {W})")
    train = collate_same_scene([crop_views(s, (H - h) // 2, (W - w) // 2, h, w) for s in samples])
    if len(scans) > 1:
        held = sample_view(root, scans[-1], view_id=0, num_views=num_views, preset=preset)
    else:
        spare = next(v for v in range(max(train_views) + 2) if v not in train_views)
        held = sample_view(root, scans[0], view_id=spare, num_views=num_views, preset=preset)
    return loss_batch(train), loss_batch(collate_same_scene([held]))


def seed_runs(
    train: dict[str, Any], held_out: dict[str, Any], steps: int, seeds: Sequence[int] = (0, 1, 2), **weight_changes
) -> list[dict[str, dict[str, torch.Tensor]]]:
    """One :func:`deltaz.course.train_briefly` run per seed on ``train`` with ``LossWeights`` changed by
    ``weight_changes``. Each run gives the trained model's output (``depth_refined``, ``delta_z``, mm) on the
    training batch (``"train"``) and on ``held_out`` (``"held_out"``). The same seed starts from the same
    weights, so runs that differ only in the loss weights are paired."""
    weights = dataclasses.replace(LossWeights(), **weight_changes)
    runs = []
    for seed in seeds:
        model, _ = train_briefly(train, weights, steps=steps, seed=seed)
        with torch.no_grad():
            outs = {name: forward_batch(model, b) for name, b in (("train", train), ("held_out", held_out))}
        runs.append({name: {k: out[k] for k in ("depth_refined", "delta_z")} for name, out in outs.items()})
    return runs


def spread(values: Sequence[float]) -> tuple[float, float]:
    """``(mean, standard deviation)`` of one measurement over seeds (the sample std, ``n − 1``)."""
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    return float(t.mean()), (float(t.std()) if len(t) > 1 else 0.0)


def paired_effect(before: Sequence[float], after: Sequence[float]) -> tuple[float, float]:
    """``(mean, std)`` over seeds of ``before − after`` (runs paired by seed): how much lower ``after`` is."""
    if len(before) != len(after):
        raise DataError(f"paired_effect: {len(before)} and {len(after)} values; expected one per seed each")
    return spread([b - a for b, a in zip(before, after)])


def exceeds_spread(before: Sequence[float], after: Sequence[float]) -> bool:
    """True when ``after`` is lower than ``before`` by more than the seeds' spread: the mean of the per-seed
    differences ``before − after`` is larger than their standard deviation."""
    mean, std = paired_effect(before, after)
    return mean > std


def show_spread(label: str, values: Sequence[float], digits: int = 3) -> str:
    """``"label: mean ± std (v1, v2, v3)"`` — every seed's value, so the spread is visible."""
    mean, std = spread(values)
    return f"{label}: {mean:.{digits}f} ± {std:.{digits}f} ({', '.join(f'{v:.{digits}f}' for v in values)})"
