"""Multi-process (DDP) plumbing for ``torchrun``: detect, initialise, agree, tear down.

``torchrun --nproc_per_node N -m deltaz train ...`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``;
:func:`init_distributed` reads them, starts the process group (``gloo`` on CPU, ``nccl`` on CUDA) and
picks this rank's device. Without those variables everything here is a no-op for one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from deltaz.core.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` (``local_rank`` on its machine)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False  # this module started the process group (so it ends it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs, evaluates and writes checkpoints."""
        return self.rank == 0


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def init_distributed(device: str | torch.device) -> tuple[DistInfo, torch.device]:
    """Start the process group when launched by ``torchrun`` (``WORLD_SIZE > 1``).

    Returns this rank's :class:`DistInfo` and device: ``cuda:<LOCAL_RANK>`` for a CUDA ``device``,
    else ``device`` unchanged. Already-initialised groups are reused.
    """
    device = torch.device(device)
    world_size = env_world_size()
    if world_size <= 1:
        return DistInfo(), device
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ConfigError(f"WORLD_SIZE={world_size} but {name} is not set; launch with torchrun")
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if device.type == "cuda":
        if torch.cuda.device_count() <= local_rank:
            raise ConfigError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA device(s); "
                "lower --nproc_per_node or use --device cpu"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    started = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        started = True
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, started), device


def cleanup(info: DistInfo) -> None:
    """End the process group if :func:`init_distributed` started it."""
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def all_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True only when ``flag`` is True on every rank (all ranks must call it)."""
    if not info.enabled:
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def any_true(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True when ``flag`` is True on any rank (all ranks must call it), e.g. "rank 0 says stop"."""
    if not info.enabled:
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op for one process)."""
    if info.enabled:
        dist.barrier()
