"""Same-scene batching: the batch sampler, the collate function that makes a :class:`deltaz.core.batch.MultiViewBatch`,
and moving batches to a device."""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Sampler

from deltaz.core.batch import MultiViewBatch
from deltaz.core.errors import ConfigError, DataError

__all__ = ["SameSceneBatchSampler", "collate_same_scene", "to_device", "DeviceLoader", "set_epoch"]


class SameSceneBatchSampler(Sampler[list[int]]):
    """Batches of sample indices that all come from one scene (scan).

    Per epoch: the indices of each scene are shuffled and cut into batches of ``batch_size``; the
    last, incomplete batch of a scene is kept (``drop_last=False``, default) or dropped; then the
    batches of all scenes are shuffled together. Shuffling uses a generator seeded with
    ``seed + epoch``, so call :meth:`set_epoch` every epoch; ``shuffle=False`` keeps index order.

    Sharding for DDP: with ``world_size > 1`` rank ``r`` takes batches ``r, r + world_size, ...`` of
    that list after truncating it to a multiple of ``world_size``, so every rank runs the same number
    of steps and no batch is seen by two ranks (up to ``world_size - 1`` batches per epoch are left
    out, different ones each epoch).

    Args:
        scenes: the scene of every sample index (e.g. ``dataset.scenes``).
    """

    def __init__(
        self,
        scenes: Sequence[str],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r}: must be an integer >= 1")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank={rank}, world_size={world_size}: need 0 <= rank < world_size")
        self.by_scene: dict[str, list[int]] = {}
        for index, scene in enumerate(scenes):
            self.by_scene.setdefault(scene, []).append(index)
        if not self.by_scene:
            raise DataError("SameSceneBatchSampler: no samples")
        largest = max(len(v) for v in self.by_scene.values())
        if batch_size > largest:
            raise ConfigError(
                f"batch_size={batch_size}: larger than any scene can fill (the largest scene has "
                f"{largest} samples); use --batch-size {largest} or less"
            )
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self._skip = 0
        if len(self) == 0:
            raise ConfigError(
                f"batch_size={batch_size}, drop_last={drop_last}, world_size={world_size}: "
                "no complete batch to give every rank; lower the batch size"
            )

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Use the order of ``epoch``; the next iteration starts after ``skip_batches`` of this rank's
        batches (used to resume a run stopped in the middle of an epoch)."""
        self.epoch = int(epoch)
        self._skip = int(skip_batches)

    def all_batches(self) -> list[list[int]]:
        """Every batch of the epoch before sharding, in order."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        batches: list[list[int]] = []
        for scene in sorted(self.by_scene):
            indices = self.by_scene[scene]
            if self.shuffle:
                indices = [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]
            for start in range(0, len(indices), self.batch_size):
                batch = indices[start : start + self.batch_size]
                if len(batch) < self.batch_size and self.drop_last:
                    continue
                batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return batches

    def _my_batches(self) -> list[list[int]]:
        batches = self.all_batches()
        usable = len(batches) - len(batches) % self.world_size
        return batches[:usable][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._my_batches()[self._skip :]
        self._skip = 0
        return iter(batches)

    def __len__(self) -> int:
        total = 0
        for indices in self.by_scene.values():
            total += len(indices) // self.batch_size if self.drop_last else math.ceil(len(indices) / self.batch_size)
        return total // self.world_size


def collate_same_scene(samples: list[dict[str, Any]]) -> MultiViewBatch:
    """Stack samples (dicts of ``(V, …)`` tensors) into a :class:`deltaz.core.batch.MultiViewBatch` of ``(B, V, …)``
    tensors; ``scene`` stays one string (all samples share it).

    Raises :class:`DataError` when the samples come from different scenes (use
    :class:`SameSceneBatchSampler`)."""
    return MultiViewBatch.collate(samples)


def to_device(batch: MultiViewBatch, device: str | torch.device | None, non_blocking: bool = True) -> MultiViewBatch:
    """The batch (a :class:`deltaz.core.batch.MultiViewBatch` or its dict form) with every tensor on ``device``
    (other values unchanged); ``None`` returns it as is."""
    if device is None:
        return batch
    return MultiViewBatch.from_mapping(batch).to(device, non_blocking=non_blocking)


class DeviceLoader:
    """A ``DataLoader`` whose batches arrive on ``device`` (``.loader``, ``.dataset``,
    ``.batch_sampler`` and ``len()`` pass through)."""

    def __init__(self, loader: DataLoader, device: str | torch.device):
        self.loader = loader
        self.device = torch.device(device)

    @property
    def dataset(self):
        return self.loader.dataset

    @property
    def batch_sampler(self):
        return self.loader.batch_sampler

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[MultiViewBatch]:
        for batch in self.loader:
            yield to_device(batch, self.device)


def set_epoch(loader: DataLoader | DeviceLoader | None, epoch: int, skip_batches: int = 0) -> None:
    """Tell a loader's sampler and dataset which epoch comes next (order and training corruption)."""
    if loader is None:
        return
    sampler = loader.batch_sampler
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch, skip_batches)
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)
