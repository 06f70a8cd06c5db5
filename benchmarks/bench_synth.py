"""Time ``deltaz synth``: render a synthetic DTU-like dataset into a temporary folder and print seconds.

    python benchmarks/bench_synth.py                                  # 8 scans x 49 views, 7 lights at 640x512
    python benchmarks/bench_synth.py --scans 12 --lights 1 --width 320 --height 256   # the demo's synth stage
    python benchmarks/bench_synth.py --scans 1 --style classic --no-full

Prints the wall time and process CPU time of a full run (``--style``, default real), then the
single-threaded CPU cost per view of each stage for both styles, measured on a few views of scans 1–2:
classic (depth, trace+surface, Lambertian shading, PNG) and real (depth, trace+surface at the
supersampled size, lamp terms with cast shadows and speculars, camera model, PNG), plus the real style
without shadows and without supersampling.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from deltaz.io.dtu.cameras import scale_intrinsics
from deltaz.io.synthetic import dataset_cameras, generate_dataset, make_scan_scene, render_depth, render_view, shade_lights
from deltaz.io.synthetic import lighting
from deltaz.io.synthetic.writer import camera_azimuth_of, encode_png

VIEWS = (0, 12, 24, 36, 48)


def classic_costs(n_lights: int, width: int, height: int) -> dict[str, float]:
    """Single-threaded CPU seconds per view of each stage of the classic style."""
    K, E, placement = dataset_cameras(49)
    K_image = scale_intrinsics(K, width / 160, height / 128)
    names = ("depth 160x128", f"trace+surface {width}x{height}", f"shade x{n_lights}", f"png x{n_lights}")
    costs = dict.fromkeys(names, 0.0)
    n = 0
    for scan in (1, 2):
        scene = make_scan_scene(0, scan, placement)
        for v in VIEWS:
            t = [time.process_time()]
            render_depth(scene, K[v], E[v], 128, 160)
            t.append(time.process_time())
            view = render_view(scene, K_image[v], E[v], height, width)
            t.append(time.process_time())
            images = shade_lights(view, range(n_lights))
            t.append(time.process_time())
            for image in images:
                encode_png(image)
            t.append(time.process_time())
            for key, a, b in zip(names, t[:-1], t[1:]):
                costs[key] += b - a
            n += 1
    return {k: v / n for k, v in costs.items()}


def real_costs(n_lights: int, width: int, height: int, options: lighting.RenderOptions) -> dict[str, float]:
    """Single-threaded CPU seconds per view of each stage of the realistic style with ``options``."""
    K, E, placement = dataset_cameras(49)
    K_image = scale_intrinsics(K, width / 160, height / 128)
    s = options.supersample
    names = ("depth 160x128", f"trace+surface {width * s}x{height * s}", "lamps (shadows, speculars)",
             f"compose+camera x{n_lights}", f"png x{n_lights}")
    costs = dict.fromkeys(names, 0.0)
    n = 0
    azimuth = camera_azimuth_of(E, placement)
    for scan in (1, 2):
        scene = make_scan_scene(0, scan, placement, "real", azimuth)
        for v in VIEWS:
            t0 = time.process_time()
            render_depth(scene, K[v], E[v], 128, 160)
            t1 = time.process_time()
            surf = lighting._surface(scene, lighting.supersample_intrinsics(K_image[v], s), E[v], height * s, width * s)
            t2 = time.process_time()
            lamps = lighting._lamps() if scene.lamps is None else scene.lamps
            used = sorted({int(i) for light in range(n_lights) for i in lighting.light_rig(light)[0]})
            for lamp in used:
                lighting._lamp_terms(scene, surf, lamps[lamp], options)
            t3 = time.process_time()
            images = lighting.render_images(scene, K_image[v], E[v], height, width, range(n_lights), (0, scan, v),
                                            options)
            t4 = time.process_time()
            for image in images:
                encode_png(image)
            t5 = time.process_time()
            compose = (t4 - t3) - (t3 - t1)  # render_images = trace + lamps + compose/camera
            for key, dt in zip(names, (t1 - t0, t2 - t1, t3 - t2, max(compose, 0.0), t5 - t4)):
                costs[key] += dt
            n += 1
    return {k: v / n for k, v in costs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=8, help="scans to render (default 8)")
    parser.add_argument("--views", type=int, default=49, help="views per scan (default 49)")
    parser.add_argument("--lights", type=int, default=7, help="lights per view (default 7)")
    parser.add_argument("--width", type=int, default=640, help="image width (default 640)")
    parser.add_argument("--height", type=int, default=512, help="image height (default 512)")
    parser.add_argument("--workers", type=int, default=2, help="render threads (default 2)")
    parser.add_argument("--style", choices=("real", "classic"), default="real", help="style of the full run")
    parser.add_argument("--supersample", type=int, default=2, help="real style: supersampling factor (default 2)")
    parser.add_argument("--no-shadows", action="store_true", help="real style: no cast shadows")
    parser.add_argument("--no-full", action="store_true", help="only the per-stage costs, no full run")
    parser.add_argument("--out", type=Path, default=None, help="keep the output here instead of a temporary folder")
    args = parser.parse_args()

    if not args.no_full:
        with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
            out = args.out or Path(tmp) / "synth"
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            generate_dataset(out, n_scans=args.scans, seed=0, n_views=args.views, n_lights=args.lights,
                             width=args.width, height=args.height, progress=False, workers=args.workers,
                             overwrite=True, style=args.style, supersample=args.supersample,
                             shadows=not args.no_shadows)
            wall = time.perf_counter() - start
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
            size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        n = args.scans * args.views
        print(f"deltaz synth --style {args.style}: {args.scans} scans x {args.views} views (depth 160x128 + "
              f"{args.lights} lights at {args.width}x{args.height}), workers={args.workers}")
        print(f"  wall {wall:.1f} s, cpu {cpu:.1f} s ({cpu / n:.3f} s per view), {size_mb:.0f} MiB written")
    torch.set_num_threads(1)
    runs = [("classic", None), ("real", lighting.RenderOptions(supersample=args.supersample)),
            ("real, no shadows", lighting.RenderOptions(supersample=args.supersample, shadows=False)),
            ("real, supersample 1", lighting.RenderOptions(supersample=1))]
    for label, options in runs:
        costs = (classic_costs(args.lights, args.width, args.height) if options is None
                 else real_costs(args.lights, args.width, args.height, options))
        print(f"  {label}: {sum(costs.values()) * 1000:.0f} ms per view (1 thread)")
        for key, value in costs.items():
            print(f"    {key:>30s}: {value * 1000:6.1f} ms")
    print(f"  load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
