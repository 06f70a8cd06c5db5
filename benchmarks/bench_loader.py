"""Data-loader throughput (samples/s) next to what training consumes.

    python benchmarks/bench_loader.py                         # renders a small synthetic set first
    python benchmarks/bench_loader.py --data-root data/train  # an existing train-ready folder

For each ``--workers`` setting it times one pass over the training loader (same-scene batches,
initial depth simulated with ``--preset`` unless the scans have ``initial/``), then times training
steps of the default model on those batches, so you can see whether the loader keeps up.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def make_data(root: Path, n_scans: int, n_views: int) -> Path:
    """A small synthetic train-ready set: ``deltaz synth`` + ``deltaz parse`` at 160x128."""
    from deltaz.io.dtu.parse import parse_dtu
    from deltaz.io.synthetic import generate_dataset

    raw = root / "dtu_training"
    generate_dataset(raw, n_scans=n_scans, n_views=n_views, n_lights=1, width=160, height=128, progress=False)
    summary = parse_dtu(raw, root / "train", light=0, progress=False)
    if not summary.ok:
        raise SystemExit(f"parse failed: {summary.failed}")
    return root / "train"


def time_loader(data_root: Path, args, workers: int) -> tuple[float, int]:
    from deltaz.data import create_dataloaders, set_epoch

    loader, _ = create_dataloaders(
        data_root, args.batch_size, args.num_views, val_split=0.0, split="random", preset=args.preset,
        use_images=args.images, num_workers=workers, seed=0,
    )
    set_epoch(loader, 0)
    n = 0
    t = time.perf_counter()
    for batch in loader:
        n += int(batch["depth"].shape[0])
        if n >= args.max_samples:
            break
    return n / (time.perf_counter() - t), n


def time_training(data_root: Path, args) -> float:
    from deltaz.data import create_dataloaders
    from deltaz.ops.losses import losses_for_batch
    from deltaz.model import build_model
    from deltaz.engine.train import forward_batch

    loader, _ = create_dataloaders(data_root, args.batch_size, args.num_views, val_split=0.0, split="random",
                                   preset=args.preset, use_images=args.images)
    batches = [b for _, b in zip(range(3), loader)]
    model = build_model("deltaz_unet", in_channels=4 if args.images else 1,
                        base_channel=args.base_channel, depth=args.unet_depth)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    samples, seconds = 0, 0.0
    for i, batch in enumerate(batches * 2):
        t = time.perf_counter()
        loss, _ = losses_for_batch(batch, forward_batch(model, batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i >= 1:  # first step is warm-up
            seconds += time.perf_counter() - t
            samples += int(batch["depth"].shape[0])
    return samples / seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="train-ready scans (default: render a small synthetic set)")
    parser.add_argument("--n-scans", type=int, default=2, help="scans to render when --data-root is not given")
    parser.add_argument("--n-views", type=int, default=16, help="views per rendered scan")
    parser.add_argument("--batch-size", type=int, default=4, help="samples per batch")
    parser.add_argument("--num-views", type=int, default=2, help="views per sample")
    parser.add_argument("--preset", default="mvs", help="initial-depth simulation preset")
    parser.add_argument("--images", action="store_true", help="load the RGB images too")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="num_workers settings to time")
    parser.add_argument("--max-samples", type=int, default=64, help="samples per timed pass")
    parser.add_argument("--base-channel", type=int, default=32, help="model width for the training comparison")
    parser.add_argument("--unet-depth", type=int, default=4, help="model depth for the training comparison")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.data_root:
            data_root = Path(args.data_root)
        else:
            t = time.perf_counter()
            data_root = make_data(Path(tmp), args.n_scans, args.n_views)
            print(f"rendered {args.n_scans} scans x {args.n_views} views in {time.perf_counter() - t:.1f} s")
        for workers in args.workers:
            rate, n = time_loader(data_root, args, workers)
            print(f"loader, num_workers={workers}: {rate:7.1f} samples/s ({n} samples, preset {args.preset}, "
                  f"{args.num_views} views each{', images' if args.images else ''})")
        rate = time_training(data_root, args)
        print(f"training consumes {rate:7.1f} samples/s (deltaz_unet base_channel={args.base_channel} "
              f"depth={args.unet_depth}, batch {args.batch_size}, {torch.get_num_threads()} threads)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
