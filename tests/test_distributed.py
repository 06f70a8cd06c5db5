"""DDP on the CPU: two processes (gloo) see disjoint batches and end with identical weights.

The ranks are spawned from the test process with the variables ``torchrun`` sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), so :func:`deltaz.engine.train.train` takes
exactly its ``torchrun`` path. Spawned, not forked: a fork copies the test process's other threads' locks (the
suite has run torch, loaders and writers by then), and one forked rank hung once in a full CI run (2026-12-06);
spawning costs two fresh ``import torch`` (a few seconds).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import traceback
from pathlib import Path

import pytest
import torch

from _tiny_scans import make_dataset

WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, port: int, config: dict, out: str) -> None:
    """One rank: record this rank's epoch-0 batches, train, save the final weights."""
    code = 0
    try:
        torch.set_num_threads(1)
        os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE),
                          MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        from deltaz.engine.config import TrainConfig
        from deltaz.data import create_dataloaders, set_epoch
        from deltaz.engine.train import train

        cfg = TrainConfig(**config)
        # the batches this rank trains on in epoch 0: the loader train() builds, with the same sharding
        loader, _ = create_dataloaders(cfg.data_root, cfg.batch_size, cfg.num_views, cfg.val_split,
                                       seed=cfg.seed, distributed=(rank, WORLD_SIZE))
        set_epoch(loader, 0)
        seen = [[b["scene"], ref] for b in loader for ref in b["view_ids"][:, 0].tolist()]
        result = train(cfg)
        torch.save(result["model"].state_dict(), f"{out}/weights{rank}.pt")
        with open(f"{out}/seen{rank}.json", "w") as fh:
            json.dump({"seen": seen, "steps": result["steps"]}, fh)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)  # no interpreter teardown in the child


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_cpu_ranks_disjoint_batches_identical_weights(tmp_path):
    data = make_dataset(tmp_path / "data", n_scans=3, n_views=4, initial=True)
    config = dict(
        data_root=str(data), batch_size=2, num_views=2, num_epochs=1, lr=1e-3, val_split=0.34,
        base_channel=8, unet_depth=2, device="cpu", seed=0, progress=False, image_log_every=0,
        checkpoint_dir=str(tmp_path / "ckpt"), log_dir=str(tmp_path / "logs"),
    )
    ctx = multiprocessing.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, port, config, str(tmp_path))) for r in range(WORLD_SIZE)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=100)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0], "a rank failed (its traceback is in the captured stderr)"

    seen = [json.loads((tmp_path / f"seen{r}.json").read_text()) for r in range(WORLD_SIZE)]
    batches = [{(scene, ref) for scene, ref in s["seen"]} for s in seen]
    assert batches[0] and batches[1]
    assert not batches[0] & batches[1]  # no sample on both ranks
    assert len(seen[0]["seen"]) == len(seen[1]["seen"])
    assert seen[0]["steps"] == seen[1]["steps"] == 2  # 4 batches of 2 shared by 2 ranks

    w0 = torch.load(tmp_path / "weights0.pt", weights_only=True)
    w1 = torch.load(tmp_path / "weights1.pt", weights_only=True)
    for name in w0:
        assert torch.equal(w0[name], w1[name]), name
    saved = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)["model"]
    for name in w0:  # rank 0's checkpoint holds the final weights
        assert torch.equal(saved[name], w0[name]), name
    assert len(list(Path(tmp_path / "logs").glob("events.out.tfevents.*"))) == 1  # rank 0 alone logs
