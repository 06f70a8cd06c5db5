"""The train and validation loaders of same-scene batches (:func:`create_dataloaders`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from deltaz.core.errors import ConfigError, DataError
from deltaz.data.batching import DeviceLoader, SameSceneBatchSampler, collate_same_scene
from deltaz.data.dataset import DepthRefinementDataset
from deltaz.data.splits import split_scans
from deltaz.io.dtu import layout
from deltaz.ops.align import load_estimator

__all__ = ["create_dataloaders"]


def create_dataloaders(
    data_root: str | Path,
    batch_size: int = 4,
    num_views: int = 2,
    val_split: float = 0.1,
    device: str | torch.device | None = None,
    *,
    seed: int = 0,
    preset: str = "mvs",
    use_images: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    split: str = "auto",
    distributed: bool | tuple[int, int] | None = None,
    drop_last: bool = False,
    initial_source: str = "auto",
    estimator: Any = None,
    align_fraction: float = 0.01,
    crop_hw: Sequence[int] | None = None,
    split_seed: int | None = None,
    image_augment: float = 0.0,
) -> tuple[DataLoader | DeviceLoader, DataLoader | DeviceLoader | None]:
    """Train and validation loaders of same-scene batches from the train-ready scans in ``data_root``.

    Batches are :class:`deltaz.core.batch.MultiViewBatch` es of ``(B, V, ...)`` tensors (see :mod:`deltaz.data`). The training loader
    shuffles (seeded by ``seed`` and the epoch: call :func:`set_epoch` each epoch) and uses random
    corruption; the validation loader keeps a fixed order and the fixed per-view corruption. The
    validation loader is ``None`` when ``val_split == 0``.

    Args:
        device: when given, loaders are :class:`DeviceLoader` s yielding batches on that device.
        distributed: ``None`` = shard the training batches when ``torch.distributed`` is initialised;
            ``True``/``False`` force it; a ``(rank, world_size)`` tuple sets it explicitly. Validation is
            never sharded (rank 0 evaluates).
        drop_last: drop each scene's incomplete last training batch (validation keeps it).
        initial_source, estimator, align_fraction, crop_hw, image_augment: see :class:`DepthRefinementDataset` (a
            ``"module:name"`` estimator is imported once here; validation sees whole views).
        split_seed: the seed of a random scene split (:func:`split_scans`); None = ``seed``.

    Raises :class:`DataError` for an empty/missing root or broken scans, :class:`ConfigError` for
    impossible arguments (naming them).
    """
    root = Path(data_root)
    if not str(data_root) or not root.is_dir():
        raise DataError(f"data_root={str(data_root)!r}: folder not found; pass --data-root <folder of scan*/>")
    scans = layout.list_scans(root)
    if not scans:
        raise DataError(
            f"data_root={str(root)!r}: no train-ready scans inside (expected scan*/ folders with depths/, "
            "intrinsics/, extrinsics/, pair.txt, meta.json); create some with `deltaz synth` + `deltaz parse`"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r}: must be an integer >= 1")
    if num_workers < 0:
        raise ConfigError(f"num_workers={num_workers!r}: must be >= 0")
    sources = [str(layout.read_meta(root / s).get("source", "")) for s in scans]
    train_scans, val_scans = split_scans(scans, val_split, seed=seed if split_seed is None else split_seed,
                                         split=split, sources=sources)

    rank, world_size = _resolve_distributed(distributed)
    if isinstance(estimator, str):
        estimator = load_estimator(estimator)
    common = dict(num_views=num_views, preset=preset, seed=seed, use_images=use_images, image_augment=image_augment,
                  initial_source=initial_source, estimator=estimator, align_fraction=align_fraction)
    train_set = DepthRefinementDataset(root, train_scans, train=True, crop_hw=crop_hw, **common)
    train_sampler = SameSceneBatchSampler(
        train_set.scenes, batch_size, shuffle=True, seed=seed, drop_last=drop_last, rank=rank, world_size=world_size
    )
    loader_kw = dict(num_workers=num_workers, pin_memory=pin_memory, collate_fn=collate_same_scene)
    train_loader: DataLoader | DeviceLoader = DataLoader(train_set, batch_sampler=train_sampler, **loader_kw)
    val_loader: DataLoader | DeviceLoader | None = None
    if val_scans:
        val_set = DepthRefinementDataset(root, val_scans, train=False, **common)
        largest = max(len(v) for v in SameSceneBatchSampler(val_set.scenes, 1, shuffle=False).by_scene.values())
        val_sampler = SameSceneBatchSampler(val_set.scenes, min(batch_size, largest), shuffle=False)
        val_loader = DataLoader(val_set, batch_sampler=val_sampler, **loader_kw)
    if device is not None:
        train_loader = DeviceLoader(train_loader, device)
        val_loader = DeviceLoader(val_loader, device) if val_loader is not None else None
    return train_loader, val_loader


def _resolve_distributed(distributed: bool | tuple[int, int] | None) -> tuple[int, int]:
    if isinstance(distributed, tuple):
        rank, world_size = distributed
        return int(rank), int(world_size)
    active = dist.is_available() and dist.is_initialized()
    if distributed is None:
        distributed = active
    if not distributed:
        return 0, 1
    if not active:
        raise ConfigError("distributed=True but torch.distributed is not initialised; launch with torchrun")
    return dist.get_rank(), dist.get_world_size()
