"""Time ``deltaz synth``: render a synthetic DTU-like dataset into a temporary folder and print seconds.

    python benchmarks/bench_synth.py                 # 8 scans x 49 views, depth 160x128 + 7 lights at 640x512
    python benchmarks/bench_synth.py --scans 1 --workers 1

Prints the wall time, the process CPU time and the per-view cost of each stage (measured separately
on a few views of scan 1, single-threaded).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from deltaz.dtu.cameras import scale_intrinsics
from deltaz.synthetic import dataset_cameras, generate_dataset, make_scan_scene, render_depth, render_view, shade_lights
from deltaz.synthetic.writer import encode_png


def stage_costs(n_lights: int, width: int, height: int, views=(0, 12, 24, 36, 48)) -> dict[str, float]:
    """Single-threaded CPU seconds per view of each stage."""
    torch.set_num_threads(1)
    K, E, placement = dataset_cameras(49)
    K_image = scale_intrinsics(K, width / 160, height / 128)
    scene = make_scan_scene(0, 1, placement)
    names = ("depth 160x128", f"trace+surface {width}x{height}", f"shade x{n_lights}", f"png x{n_lights}")
    costs = dict.fromkeys(names, 0.0)
    keys = list(costs)
    for v in views:
        t0 = time.process_time()
        render_depth(scene, K[v], E[v], 128, 160)
        t1 = time.process_time()
        view = render_view(scene, K_image[v], E[v], height, width)
        t2 = time.process_time()
        images = shade_lights(view, range(n_lights))
        t3 = time.process_time()
        for image in images:
            encode_png(image)
        t4 = time.process_time()
        for key, dt in zip(keys, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            costs[key] += dt / len(views)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=8, help="scans to render (default 8)")
    parser.add_argument("--views", type=int, default=49, help="views per scan (default 49)")
    parser.add_argument("--lights", type=int, default=7, help="lights per view (default 7)")
    parser.add_argument("--width", type=int, default=640, help="image width (default 640)")
    parser.add_argument("--height", type=int, default=512, help="image height (default 512)")
    parser.add_argument("--workers", type=int, default=2, help="render threads (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="keep the output here instead of a temporary folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
        out = args.out or Path(tmp) / "synth"
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        generate_dataset(out, n_scans=args.scans, seed=0, n_views=args.views, n_lights=args.lights,
                         width=args.width, height=args.height, progress=False, workers=args.workers, overwrite=True)
        wall = time.perf_counter() - start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    n = args.scans * args.views
    print(f"deltaz synth: {args.scans} scans x {args.views} views (depth 160x128 + {args.lights} lights at "
          f"{args.width}x{args.height}), workers={args.workers}")
    print(f"  wall {wall:.1f} s, cpu {cpu:.1f} s ({cpu / n:.3f} s per view), {size_mb:.0f} MiB written")
    for key, value in stage_costs(args.lights, args.width, args.height).items():
        print(f"  {key:>28s}: {value * 1000:6.1f} ms per view (1 thread)")
    print(f"  load average now: {' '.join(f'{x:.1f}' for x in np.round(__import__('os').getloadavg(), 1))}")


if __name__ == "__main__":
    main()
