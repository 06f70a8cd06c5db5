"""Plane-sweep speed and memory next to its targets (printed, never asserted).

    python benchmarks/bench_mvs.py                 # CPU, 2 torch threads
    python benchmarks/bench_mvs.py --device cuda   # the same on a GPU (peak memory: CUDA allocator)

1. seconds per view at 160×128, 48 planes, 4 sources (target ≤ 1 s on a 2-core CPU with 2 threads);
2. one 640×512 reference, 4 sources, 192 planes: time and peak memory (target ≤ 2 GiB). On CPU the peak
   is the child process's peak resident set size (``ru_maxrss``), which sees torch's allocations.
3. two-view SGBM (:func:`deltaz.ops.mvs.stereo_depth`, the ``sgbm`` initial depth) at 160×128, matched
   at 2× (OpenCV; CPU only): seconds per view.
4. the multi-view candidate search (``deltaz evaluate``'s row ``search``: :func:`deltaz.ops.mvs.consensus_depth`,
   then :func:`deltaz.ops.mvs.propagate_depth`, then :func:`deltaz.ops.mvs.planes_views`, then
   :func:`deltaz.ops.mvs.subpixel.subpixel_views`, with their defaults) at 160×128 with 4 sources, on the plane
   sweep of case 1: seconds per view of the first two, of segment planes and of the sub-pixel step, one view at a
   time and in batches of 8 (as ``deltaz evaluate`` runs it).

The scene is a random texture on a slanted plane seen by five cameras (made with ``deltaz.core.geometry``);
the benchmark also prints the median depth error there, as a sanity check.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

TARGET_SMALL_S = 1.0
TARGET_PEAK_GIB = 2.0
#: DTU's depth range: 192 planes are 2.65 mm apart, as in the PyTorch MVSNet code.
DEPTH_MIN_MM, DEPTH_MAX_MM = 425.0, 931.15


def make_views(H: int, W: int, n_views: int = 5, seed: int = 0):
    """A slanted, textured plane at ~600 mm in ``n_views`` cameras: images (V, 3, H, W), K (V, 3, 3),
    E (V, 3, 4) world-to-camera, exact z-depth (V, H, W)."""
    import torch
    import torch.nn.functional as F

    from deltaz.core import geometry as g

    gen = torch.Generator().manual_seed(seed)
    f = 1.1 * W
    K = torch.tensor([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    normal = F.normalize(torch.tensor([0.2, -0.1, -1.0], dtype=torch.float64), dim=0)
    offset = float(normal @ torch.tensor([0.0, 0.0, 600.0], dtype=torch.float64))
    texture = torch.rand(1, 1, 256, 256, generator=gen, dtype=torch.float64)
    for _ in range(2):  # band-limit it: at 160x128 a pixel covers ~2 texels
        texture = F.avg_pool2d(texture, 5, stride=1, padding=2, count_include_pad=False)
    texture = (texture - texture.mean()) / texture.std() * 0.15 + 0.5
    images, Es, depths = [], [], []
    for i in range(n_views):
        angle = 2 * math.pi * i / max(n_views - 1, 1)
        centre = torch.tensor([0.0, 0.0, 0.0] if i == 0 else [60 * math.cos(angle), 60 * math.sin(angle), 0.0],
                              dtype=torch.float64)
        z = F.normalize(torch.tensor([0.0, 0.0, 600.0], dtype=torch.float64) - centre, dim=0)
        x = F.normalize(torch.linalg.cross(torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64), z), dim=0)
        R = torch.stack([x, torch.linalg.cross(z, x), z])
        E = torch.cat([R, (-R @ centre)[:, None]], dim=1)
        rays, _ = g.get_ray_dirs_mask(K, H, W)
        depth = (offset - normal @ centre) / ((rays @ R) @ normal)
        points = g.camera_to_world(g.backproject_depth(depth, K), E)
        uv = (points[..., :2] + 300.0) * (255 / 600)  # a 600 mm texture patch around the optical axis
        gray = g.sample_pixels(texture, uv[None])[0, 0]
        images.append(torch.stack([gray, gray, gray]).float())
        Es.append(E.float())
        depths.append(depth.float())
    return torch.stack(images), K.float().expand(n_views, 3, 3).clone(), torch.stack(Es), torch.stack(depths)


def run_case(H: int, W: int, planes: int, sources: int, device: str, repeats: int, threads: int) -> dict:
    """Sweep view 0 against ``sources`` others ``repeats`` times; return timing, error and peak memory."""
    import resource

    import torch

    from deltaz.ops.mvs import plane_sweep

    torch.set_num_threads(threads)
    images, K, E, depth = (t.to(device) for t in make_views(H, W, sources + 1))
    args = (images[0], K[0], E[0], images[1:], K[1:], E[1:], DEPTH_MIN_MM, DEPTH_MAX_MM, planes)
    plane_sweep(*args)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = plane_sweep(*args)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    valid = result.depth > 0
    error = (result.depth - depth[0]).abs()[valid]
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"seconds": min(times), "cpu_seconds": min(cpu), "median_error_mm": float(error.median()) if valid.any() else float("nan"),
            "spacing_mm": (DEPTH_MAX_MM - DEPTH_MIN_MM) / (planes - 1), "valid": float(valid.float().mean()),
            "peak_bytes": peak}


def stereo_case(repeats: int) -> dict:
    """Time :func:`deltaz.ops.mvs.stereo_depth` for view 0 against view 1 at 160×128; median error too."""
    import numpy as np

    from deltaz.ops.mvs import stereo_depth

    images, K, E, depth = (t.numpy() for t in make_views(128, 160, 2))
    args = (images[0], K[0], E[0], images[1], K[1], E[1], DEPTH_MIN_MM, DEPTH_MAX_MM)
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        start = time.perf_counter()
        result = stereo_depth(*args)
        times.append(time.perf_counter() - start)
    valid = result > 0
    error = np.abs(result - depth[0])[valid]
    return {"seconds": min(times[1:]), "median_error_mm": float(np.median(error)) if valid.any() else float("nan"),
            "valid": float(valid.mean())}


def propagate_case(device: str, repeats: int, threads: int, batch: int = 1) -> dict:
    """Time the search (:func:`deltaz.ops.mvs.consensus_depth`, then :func:`deltaz.ops.mvs.propagate_depth`, then
    :func:`deltaz.ops.mvs.planes_views`, then :func:`deltaz.ops.mvs.subpixel.subpixel_views`) on view 0's plane
    sweep (160×128, 48 planes, 4 sources), ``batch`` copies at once; seconds per view of the first two steps, of the
    third and of the fourth."""
    import torch

    from deltaz.core.batch import MultiView
    from deltaz.ops.mvs import consensus_depth, plane_sweep, planes_views, propagate_depth
    from deltaz.ops.mvs.subpixel import subpixel_views

    torch.set_num_threads(threads)
    images, K, E, depth = (t.to(device) for t in make_views(128, 160, 5))
    swept = plane_sweep(images[0], K[0], E[0], images[1:], K[1:], E[1:], DEPTH_MIN_MM, DEPTH_MAX_MM, 48).depth
    def rep(t: torch.Tensor) -> torch.Tensor:
        return t.expand(batch, *t.shape[1:]).contiguous()

    multiview = MultiView(rep(K[:1]), rep(E[:1]), rep(depth[None, 1:]), rep(K[None, 1:]), rep(E[None, 1:]))
    swept_b, image_ref, image_src = rep(swept[None]), rep(images[:1]), rep(images[None, 1:])
    times, plane_times, sub_times = [], [], []
    for _ in range(repeats + 1):  # the first is a warm-up
        start = time.perf_counter()
        agreed = consensus_depth(swept_b, image_ref, image_src, multiview, fill_holes=True)
        out = propagate_depth(agreed, image_ref, image_src, multiview)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
        planed = planes_views(out, image_ref, image_src, multiview)
        if device == "cuda":
            torch.cuda.synchronize()
        plane_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        subpixel_views(planed, image_ref, image_src, multiview)
        if device == "cuda":
            torch.cuda.synchronize()
        sub_times.append(time.perf_counter() - start)
    valid = swept > 0
    return {"seconds": min(times[1:]) / batch, "planes_seconds": min(plane_times[1:]) / batch,
            "subpixel_seconds": min(sub_times[1:]) / batch,
            "changed": float((out[0] != swept)[valid].float().mean())}


def in_child(case: dict) -> dict:
    """Run :func:`run_case` in a fresh interpreter so that its peak RSS is this case's alone."""
    here = os.path.dirname(os.path.abspath(__file__))
    code = (f"import json, sys; sys.path.insert(0, {here!r}); from bench_mvs import run_case; "
            "print(json.dumps(run_case(**json.loads(sys.argv[1]))))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(case)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def tick(ok: bool) -> str:
    return "✓" if ok else "✗"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (target: 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed sweeps per case; the best is reported")
    parser.add_argument("--skip-large", action="store_true", help="only the 160x128 case")
    args = parser.parse_args()
    base = {"device": args.device, "threads": args.threads}
    small = in_child({**base, "H": 128, "W": 160, "planes": 48, "sources": 4, "repeats": args.repeats})
    print(f"160x128, 48 planes, 4 sources: {small['seconds']:.2f} s/view (target <= {TARGET_SMALL_S:.0f} s) "
          f"{tick(small['seconds'] <= TARGET_SMALL_S)} (CPU time {small['cpu_seconds']:.2f} s)   median error {small['median_error_mm']:.2f} mm "
          f"(plane spacing {small['spacing_mm']:.2f} mm), {100 * small['valid']:.0f}% valid")
    if not args.skip_large:
        large = in_child({**base, "H": 512, "W": 640, "planes": 192, "sources": 4, "repeats": 1})
        gib = large["peak_bytes"] / 2**30
        what = "peak CUDA memory" if args.device == "cuda" else "peak RSS"
        print(f"640x512, 192 planes, 4 sources: {large['seconds']:.1f} s, {what} {gib:.2f} GiB "
              f"(target <= {TARGET_PEAK_GIB:.0f} GiB) {tick(gib <= TARGET_PEAK_GIB)}   median error "
              f"{large['median_error_mm']:.2f} mm (plane spacing {large['spacing_mm']:.2f} mm)")
    stereo = stereo_case(args.repeats)
    print(f"SGBM 160x128 (matched at 320x256), 1 source: {1000 * stereo['seconds']:.0f} ms/view   median error "
          f"{stereo['median_error_mm']:.2f} mm, {100 * stereo['valid']:.0f}% valid")
    one, eight = (propagate_case(args.device, args.repeats, args.threads, batch) for batch in (1, 8))
    print(f"multi-view candidate search 160x128, 4 sources: {one['seconds']:.2f} s/view one at a time, "
          f"{eight['seconds']:.2f} s/view in batches of 8 ({100 * one['changed']:.1f} % of the sweep's pixels "
          f"changed); its segment planes {one['planes_seconds']:.2f} / {eight['planes_seconds']:.2f} s/view, its "
          f"sub-pixel step {one['subpixel_seconds']:.2f} / {eight['subpixel_seconds']:.2f} s/view")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(load average {load:.1f} on {os.cpu_count()} CPUs: other processes slow the CPU timings down)")


if __name__ == "__main__":
    main()
