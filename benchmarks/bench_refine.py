"""Speed and memory of ``deltaz refine``'s forward pass, one network pass per map (the mirror agreement, on by
default, runs two: :mod:`deltaz.ops.agreement`); figures are printed, never asserted.

1. One 640×512 depth map with its image, steady state after a warm-up, 2 torch threads, through the real path
   (:func:`deltaz.engine.refine.predict_delta_z` on a :func:`deltaz.engine.refine.for_inference` model), for the demo's shape
   (deltaz_unet, base 16, depth 4, in_channels 4) and the default (base 32); also plain NCHW weights for comparison.
2. One 1600×1200 map, each way in a fresh process (so the peak RSS is that way's own): whole map, tiles of at
   most 1 MP and 0.33 MP (64 px overlap), and refining at half resolution with Δz upsampled bilinearly (not in the
   package, measured to compare). Quality on a synthetic scene (slanted plane, boxes, a sphere; Gaussian noise,
   depth quantisation, holes): MAE against ground truth on valid pixels, and mean |Δz − Δz of the whole map|.
   With ``--checkpoint`` (e.g. runs/demo/checkpoints/best.pt) the trained weights are used; otherwise a randomly
   initialised model with a perturbed head (then only the |Δz − whole map| column means anything).
3. CUDA: milliseconds per 640×512 map when a GPU is present, else "no CUDA".

    python benchmarks/bench_refine.py [--checkpoint runs/demo/checkpoints/best.pt] [--repeats 5] [--skip-large]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deltaz.model import build_model
from deltaz.engine.refine import for_inference, load_model, predict_delta_z

LARGE = (1200, 1600)
WAYS = {"whole map": None, "tiles <= 1 MP": 1_048_576, "tiles <= 0.33 MP": 327_680, "half resolution": "half"}


def one_pass(*args, **kwargs):
    """:func:`predict_delta_z` with one network pass and nothing after it: the figures here are per pass (the mirror
    agreement, ``deltaz refine``'s default, runs two: :mod:`deltaz.ops.agreement`; the surface smoothing,
    :mod:`deltaz.ops.smooth`, adds about 0.15 s at 640×512 on the project's 2-core CPU)."""
    return predict_delta_z(*args, mirror_agreement=False, smooth=False, **kwargs)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, load avg {load}"


def scene(H: int, W: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(gt mm, noisy input mm with holes, image (3, H, W))`` of a synthetic table-top scene at ~600 mm."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    gt = 650 - 60 * v / H + 20 * u / W
    for (y0, x0, h, w, z) in ((0.2, 0.1, 0.3, 0.25, 560), (0.55, 0.6, 0.25, 0.3, 590)):
        box = (v >= y0 * H) & (v < (y0 + h) * H) & (u >= x0 * W) & (u < (x0 + w) * W)
        gt[box] = z
    r2 = ((u - 0.7 * W) ** 2 + (v - 0.3 * H) ** 2) / (0.12 * W) ** 2
    gt = np.where(r2 < 1, np.minimum(gt, 540 + 30 * (1 - np.sqrt(1 - np.minimum(r2, 1)))), gt).astype(np.float32)
    noisy = gt + rng.normal(0, 1.5, gt.shape).astype(np.float32)
    noisy = np.round(noisy / 2.65) * 2.65  # MVS depth-plane quantisation
    holes = rng.random(gt.shape) < 0.02
    noisy[holes] = 0
    image = np.stack([(gt - 500) / 200, 0.5 + 0.3 * np.sin(u / 17), 0.5 + 0.3 * np.cos(v / 23)]).clip(0, 1)
    return gt, noisy.astype(np.float32), image.astype(np.float32)


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench_640(repeats: int, checkpoint: str | None) -> None:
    _, depth, image = scene(512, 640)
    print("\n640x512 depth + image, forward pass (s), 2 threads, after one warm-up:")
    for base in (16, 32):
        for name, prep in (("plain NCHW", lambda m: m.eval()), ("channels-last (refine path)", for_inference)):
            torch.manual_seed(0)
            model = prep(build_model("deltaz_unet", in_channels=4, base_channel=base, depth=4))
            one_pass(model, depth, image)
            t = timed(lambda: one_pass(model, depth, image), repeats)
            print(f"  base {base:2d} depth 4, {name:30s} median {np.median(t):.3f}  min {min(t):.3f}  "
                  f"(n={repeats}, load avg {os.getloadavg()[0]:.2f})")
        one_pass(model, depth, image, bf16=True)
        t = timed(lambda: one_pass(model, depth, image, bf16=True), repeats)
        print(f"  base {base:2d} depth 4, {'channels-last + --bf16':30s} median {np.median(t):.3f}  min {min(t):.3f}  "
              f"(n={repeats}, load avg {os.getloadavg()[0]:.2f})")
    if checkpoint:
        model = load_model(checkpoint, "cpu")
        dz, dz_bf16 = one_pass(model, depth, image), one_pass(model, depth, image, bf16=True)
        valid = depth > 0
        print(f"  --bf16 with {checkpoint}: mean |dz| {np.abs(dz[valid]).mean():.4f} mm, "
              f"mean |dz bf16 - dz fp32| {np.abs(dz_bf16 - dz)[valid].mean():.4f} mm")


def worker(way: str, base: int, checkpoint: str | None, out: str) -> None:
    """One way of refining the large map in this process; writes Δz to ``out`` and prints a JSON line."""
    torch.set_num_threads(2)
    if checkpoint:
        model = load_model(checkpoint, "cpu")
    else:
        torch.manual_seed(0)
        model = for_inference(build_model("deltaz_unet", in_channels=4, base_channel=base, depth=4,
                                          depth_scale_mm=20.0, prefill_holes=True))
        torch.nn.init.normal_(model.head.weight, std=0.02)
    _, depth, image = scene(*LARGE)
    one_pass(model, depth[:128, :160], image[:, :128, :160])  # warm-up
    start = time.perf_counter()
    if WAYS[way] == "half":
        lo = F.interpolate(torch.from_numpy(image)[None], scale_factor=0.5, mode="area")[0].numpy()
        d_lo = depth[::2, ::2]
        dz = one_pass(model, np.ascontiguousarray(d_lo), lo, max_pixels=None)
        dz = F.interpolate(torch.from_numpy(dz)[None, None], size=LARGE, mode="bilinear", align_corners=False)[0, 0]
        dz = np.where(depth > 0, dz.numpy(), 0)
    else:
        dz = one_pass(model, depth, image, max_pixels=WAYS[way])
    seconds = time.perf_counter() - start
    np.save(out, dz.astype(np.float32))
    print(json.dumps({"s": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def bench_large(base: int, checkpoint: str | None) -> None:
    gt, depth, _ = scene(*LARGE)
    valid = depth > 0
    what = f"checkpoint {checkpoint}" if checkpoint else f"random base {base} (perturbed head)"
    print(f"\n1600x1200 depth + image, {what}; a fresh process per way (peak RSS includes ~0.4 GB of torch):")
    print(f"  input MAE vs ground truth: {np.abs(depth - gt)[valid].mean():.3f} mm")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for way in WAYS:
            out = str(Path(tmp) / "dz.npy")
            cmd = [sys.executable, __file__, "--worker", way, "--base", str(base), "--out", out]
            proc = subprocess.run(cmd + (["--checkpoint", checkpoint] if checkpoint else []),
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"  {way:18s} FAILED: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            stats = json.loads(proc.stdout.strip().splitlines()[-1])
            results[way] = (stats, np.load(out))
    full = results.get("whole map", (None, None))[1]
    for way, (stats, dz) in results.items():
        mae = np.abs(depth + dz - gt)[valid].mean()
        diff = "" if full is None else f"  mean |dz - whole| {np.abs(dz - full)[valid].mean():.4f} mm"
        print(f"  {way:18s} {stats['s']:7.2f} s  peak RSS {stats['rss_mb']:7.0f} MB  MAE {mae:.3f} mm  "
              f"mean |dz| {np.abs(dz)[valid].mean():.4f} mm{diff}")


def bench_cuda(repeats: int) -> None:
    if not torch.cuda.is_available():
        print("\nCUDA: no CUDA")
        return
    _, depth, image = scene(512, 640)
    print(f"\nCUDA ({torch.cuda.get_device_name(0)}), 640x512, ms per map:")
    for base in (16, 32):
        model = for_inference(build_model("deltaz_unet", in_channels=4, base_channel=base, depth=4)).cuda()
        one_pass(model, depth, image)
        torch.cuda.synchronize()
        t = timed(lambda: (one_pass(model, depth, image), torch.cuda.synchronize()), max(repeats, 10))
        print(f"  base {base}: median {1000 * np.median(t):.1f} ms (includes host-device copies)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="trained weights for the 1600x1200 quality comparison")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per 640x512 configuration")
    parser.add_argument("--skip-large", action="store_true", help="skip the 1600x1200 runs")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--base", type=int, default=32, help="base channels of the random 1600x1200 model")
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.worker:
        worker(args.worker, args.base, args.checkpoint, args.out)
        return
    print("machine:", machine())
    bench_640(args.repeats, args.checkpoint)
    if not args.skip_large:
        bench_large(args.base, args.checkpoint)
    bench_cuda(args.repeats)
    print("\nload avg at the end:", ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
