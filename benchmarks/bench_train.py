"""Training and inference speed of DeltaZ: samples/s, ms/step split into forward, each loss, backward.

    python benchmarks/bench_train.py                      # 160x128, batch 4, 2 views, this CPU
    python benchmarks/bench_train.py --device cuda --amp  # on a GPU (bf16 autocast, channels_last)

The batch is built in memory (a slanted, wavy surface seen by two cameras 60 mm apart, with an
MVS-like noisy initial depth), so the numbers measure the model and the losses, not the disk; see
``bench_loader.py`` for the data side. Timings are medians over ``--steps`` steps after ``--warmup``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from deltaz.core.batch import MultiViewBatch
from deltaz.ops.losses import (
    LossWeights,
    depth_loss,
    improvement_loss,
    losses_for_batch,
    magnitude_loss,
    multiview_consistency_loss,
    smoothness_loss,
)
from deltaz.model import MODELS, build_model, refine
from deltaz.engine.train import _amp_settings, forward_batch


def make_batch(batch_size: int, num_views: int, height: int, width: int, device: torch.device) -> dict:
    """A ``(B, V, …)`` batch like the data loader's: z-depth in mm, world-to-camera extrinsics."""
    g = torch.Generator().manual_seed(0)
    s = width / 160
    K = torch.tensor([[361.54 * s, 0, 82.90 * s], [0, 360.40 * s, 66.38 * s], [0, 0, 1]])
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                          indexing="ij")
    depth = 650 + 0.4 * (u - width / 2) / s + 15 * torch.sin(u / (9 * s)) * torch.cos(v / (11 * s))
    depth = depth.expand(batch_size, num_views, height, width).clone()
    E = torch.zeros(batch_size, num_views, 3, 4)
    E[..., :3, :3] = torch.eye(3)
    E[:, :, 0, 3] = -60.0 * torch.arange(num_views, dtype=torch.float32)  # cameras 60 mm apart along x
    noise = torch.randn(depth.shape, generator=g) * 3
    holes = torch.rand(depth.shape, generator=g) < 0.05
    depth_init = torch.where(holes, torch.zeros_like(depth), depth + noise)
    batch = {
        "depth": depth, "depth_init": depth_init, "mask": depth > 0,
        "intrinsics": K.expand(batch_size, num_views, 3, 3).clone(), "extrinsics": E,
        "image": torch.rand(batch_size, num_views, 3, height, width, generator=g),
        "view_ids": torch.arange(num_views).expand(batch_size, num_views).clone(),
        "depth_range": torch.tensor([[425.0, 935.0]]).expand(batch_size, 2).clone(), "scene": "bench",
    }
    return {k: (t.to(device) if torch.is_tensor(t) else t) for k, t in batch.items()}


class Timer:
    """Wall-clock ms of a block, synchronising CUDA so GPU work is counted where it happens."""

    def __init__(self, device: torch.device):
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, fn):
        self.sync()
        t = time.perf_counter()
        out = fn()
        self.sync()
        return out, 1000 * (time.perf_counter() - t)


def loss_terms(batch: dict, out: dict) -> dict:
    """Each loss term as :func:`deltaz.ops.losses.compute_losses` calls it (reference view 0)."""
    gt, init, mask = batch["depth"][:, 0], batch["depth_init"][:, 0], batch["mask"][:, 0]
    d, dz = out["depth_refined"], out["delta_z"]
    terms = {
        "depth": lambda: depth_loss(d, gt, mask),
        "improvement": lambda: improvement_loss(d, init, gt, mask),
        "magnitude": lambda: magnitude_loss(dz),
        "smoothness": lambda: smoothness_loss(d, init),
    }
    if batch["depth"].shape[1] > 1:
        # the sources' ground truth, zeroed outside their masks
        terms["multiview"] = lambda: multiview_consistency_loss(d, MultiViewBatch.from_mapping(batch).multiview("depth"))
    return terms


def bench_training(args, device: torch.device) -> dict:
    amp_dtype, use_scaler = _amp_settings(device, args.amp)
    model = build_model(args.model, **_model_kwargs(args)).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-6)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    batch = make_batch(args.batch_size, args.num_views, args.height, args.width, device)
    weights = LossWeights()
    timer = Timer(device)
    rows: dict[str, list[float]] = {}
    for i in range(args.warmup + args.steps):
        out, t_fwd = timer(lambda: forward_batch(model, batch, amp_dtype))
        loss_and_terms, t_loss = timer(lambda: losses_for_batch(batch, out, weights))
        loss = loss_and_terms[0]
        optimizer.zero_grad(set_to_none=True)
        _, t_bwd = timer(lambda: scaler.scale(loss).backward())

        def opt_step():
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()

        _, t_opt = timer(opt_step)
        # each term on its own (forward only; what losses_for_batch spends per term)
        with torch.no_grad():
            out_d = {k: v.detach() if torch.is_tensor(v) else v for k, v in out.items()}
            term_times = {name: timer(fn)[1] for name, fn in loss_terms(batch, out_d).items()}
        if i >= args.warmup:
            for name, value in [("forward", t_fwd), ("losses (all)", t_loss), ("backward", t_bwd),
                                ("optimizer+clip", t_opt), ("step", t_fwd + t_loss + t_bwd + t_opt)]:
                rows.setdefault(name, []).append(value)
            for name, value in term_times.items():
                rows.setdefault(f"  loss {name}", []).append(value)
    med = {k: statistics.median(v) for k, v in rows.items()}
    med["samples_per_s"] = 1000 * args.batch_size / med["step"]
    return med


def bench_inference(args, device: torch.device) -> dict:
    amp_dtype, _ = _amp_settings(device, args.amp)
    model = build_model(args.model, **_model_kwargs(args)).to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    timer = Timer(device)
    result = {}
    for h, w in ((128, 160), (512, 640)):
        depth_init = make_batch(1, 1, h, w, device)["depth_init"][:, 0]
        depth_range = torch.tensor([[425.0, 935.0]], device=device)
        times = []
        for i in range(args.warmup + args.infer_runs):
            with torch.no_grad(), (torch.autocast(device.type, amp_dtype) if amp_dtype else _null()):
                _, t = timer(lambda: refine(model, depth_init, depth_range=depth_range))
            if i >= args.warmup:
                times.append(t)
        result[f"{w}x{h}"] = statistics.median(times)
    return result


def _null():
    import contextlib

    return contextlib.nullcontext()


def _model_kwargs(args) -> dict:
    kwargs = {"in_channels": 1, "base_channel": args.base_channel}
    if "depth" in MODELS[args.model].SHAPE_ARGS:  # the U-Nets
        kwargs["depth"] = args.unet_depth
    return kwargs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--amp", action="store_true", help="mixed precision (CUDA only; ignored with a warning on CPU)")
    parser.add_argument("--batch-size", type=int, default=4, help="samples per step")
    parser.add_argument("--num-views", type=int, default=2, help="views per sample (reference + sources)")
    parser.add_argument("--height", type=int, default=128, help="training crop height in pixels")
    parser.add_argument("--width", type=int, default=160, help="training crop width in pixels")
    parser.add_argument("--model", default="deltaz_unet", choices=sorted(MODELS), help="network")
    parser.add_argument("--base-channel", type=int, default=32, help="channels of the first level")
    parser.add_argument("--unet-depth", type=int, default=4, help="U-Net downsamplings")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--infer-runs", type=int, default=10, help="timed inference runs per size")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    train_ms = bench_training(args, device)
    infer_ms = bench_inference(args, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    if args.json:
        print(json.dumps({"device": name, "train_ms": train_ms, "inference_ms": infer_ms}, indent=2))
        return 0
    print(f"device: {name}; {args.model} base_channel={args.base_channel} depth={args.unet_depth}; "
          f"batch {args.batch_size} x {args.num_views} views at {args.width}x{args.height}; amp={args.amp}")
    print(f"training: {train_ms['samples_per_s']:.1f} samples/s, {train_ms['step']:.1f} ms/step (median)")
    for key, value in train_ms.items():
        if key not in ("samples_per_s",):
            print(f"  {key:<20s} {value:8.2f} ms")
    for size, ms in infer_ms.items():
        print(f"inference {size}: {ms:.1f} ms per depth map (batch 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
