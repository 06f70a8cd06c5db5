"""``deltaz synth``: render a synthetic DTU-like dataset in MVSNet's ``dtu_training`` layout.

Example (8 scans × 49 views × 7 lights at 640×512)::

    deltaz synth --out data/synthetic_dtu --scans 8 --seed 0                   # realistic (default)
    deltaz synth --out data/synthetic_dtu --scans 8 --supersample 1 --no-shadows   # cheaper
    deltaz synth --out data/classic_dtu --scans 8 --style classic              # the original scenes

``--style real`` (default): rooms with walls, corners, thin structures, CC0 photo textures, cast
shadows, speculars, anti-aliasing and a noisy camera; ``--style classic``: textured solids on a
table, Lambertian, no shadows. Measured costs: ``benchmarks/bench_synth.py``.

See :mod:`deltaz.io.synthetic.writer` for the layout, the scan numbering and how re-runs behave.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from deltaz.core.errors import DeltaZError
from deltaz.core.paths import data_dir
from deltaz.io.synthetic.writer import generate_dataset

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: <DELTAZ_DATA>/synthetic_dtu)")
    parser.add_argument("--scans", type=int, default=8, help="number of scans, written as scan1..scanN (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="base seed; scan k's scene depends only on (seed, k)")
    parser.add_argument("--views", type=int, default=49, help="cameras per scan (DTU: 49)")
    parser.add_argument("--lights", type=int, default=7, help="lighting conditions per view, 0..N-1 (DTU: 7)")
    parser.add_argument("--width", type=int, default=640, help="image width in pixels (default 640)")
    parser.add_argument("--height", type=int, default=512, help="image height in pixels (default 512)")
    parser.add_argument("--calibration", type=Path, default=None,
                        help="render from real DTU cameras: a folder of pos_NNN.txt or rect_NNN_3_r5000.png.P files")
    parser.add_argument("--overwrite", action="store_true",
                        help="re-render everything, even views already on disk or made with other settings")
    parser.add_argument("--workers", type=int, default=2, help="views rendered in parallel (threads, default 2)")
    parser.add_argument("--style", choices=("real", "classic"), default="real",
                        help="real: walls, photos, shadows, speculars, camera noise (default); classic: the "
                             "original Lambertian table-top scenes")
    parser.add_argument("--supersample", type=int, default=2,
                        help="real style: samples per pixel along each axis for anti-aliasing (1..8, default 2)")
    parser.add_argument("--no-shadows", action="store_true", help="real style: no cast shadows (faster)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    out = args.out if args.out is not None else data_dir() / "synthetic_dtu"
    start = time.perf_counter()
    try:
        generate_dataset(
            out, n_scans=args.scans, seed=args.seed, n_views=args.views, n_lights=args.lights,
            width=args.width, height=args.height, calibration=args.calibration,
            progress=not args.quiet, overwrite=args.overwrite, workers=args.workers,
            style=args.style, supersample=args.supersample, shadows=not args.no_shadows,
        )
    except DeltaZError as exc:
        print(f"deltaz synth: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.scans} scans x {args.views} views to {out} in {time.perf_counter() - start:.1f} s")
    return 0
