"""A real DTU depth map with simulated errors: does the refiner beat the median filter on real geometry?

The real DTU fragments (``DELTAZ_DTU_SAMPLE``, see the README's "Real DTU") hold one MVSNet training depth map:
160×128, the ground truth of a real scan (meshed from DTU's structured light), its scan not known, no image. This
script draws simulated errors on it (:func:`deltaz.ops.corrupt.simulate_initial_depth`, ``--presets``, ``--draws``
seeds each) and compares, per half of the map (the **left half** is design data, the **right half** held out):
the input, a median filter tuned on the left half (by covered MAE, :data:`deltaz.ops.baselines.PARAM_GRIDS`), and
the refiner — with a uniform grey image when it takes one (the map has none), with and without the surface
smoothing (:mod:`deltaz.ops.smooth`), with the dead zone and the mirror agreement as every inference path.
Covered MAE / ``mae_good_mm`` / ``harm_pct`` (:mod:`deltaz.ops.metrics`), the mean over the draws, and the
refiner's covered MAE over the median filter's: the issue's bar for real captures with simulated input is ≤ 0.90.

    python benchmarks/real_dtu_map.py                     # the demo's checkpoint; ~1 min on a 2-core CPU
    python benchmarks/real_dtu_map.py --checkpoint CK --draws 5 --json out.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from deltaz.core.errors import DataError, DeltaZError
from deltaz.core.paths import dtu_sample_dir
from deltaz.io.dtu.formats import read_pfm
from deltaz.ops.baselines import BASELINES, PARAM_GRIDS, tune_baseline
from deltaz.ops.corrupt import PRESETS, simulate_initial_depth

import real_middlebury as bench  # the sibling script: its directory is on sys.path when a script runs

#: The depth map inside the fragments folder.
DEPTH_MAP = Path("ChikaYan_mvs_gaussian_splatting/depth_map_0000.pfm")
#: The issue's bar: the refiner's covered MAE at most this times the median filter's.
MEDIAN_BAR = 0.90
ROWS = ("identity", "median", "deltaz (no smoothing)", "deltaz")


def load_depth(sample: Path) -> torch.Tensor:
    """The fragments' depth map, ``(128, 160)`` mm, 0 = no ground truth; a DataError naming the file if absent."""
    path = sample / DEPTH_MAP
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected the real DTU fragments' MVSNet depth map there)")
    return torch.from_numpy(read_pfm(path).copy()).float()


def outputs(refiner: dict[str, Any], init: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each row's depth ``(H, W)`` mm for one input: the median filter tuned on the left half, the refiner with a
    grey image, without and with the surface smoothing."""
    grey = torch.full((3, *gt.shape), 0.5)
    sample = {"depth_init": init[None], "depth": gt[None], "mask": bench.left_mask(tuple(gt.shape))[None],
              "image": grey[None]}
    params, _ = tune_baseline("median", [sample], PARAM_GRIDS["median"], covered=True)
    rows = {"identity": init, "median": BASELINES["median"](init[None], None, params)[0]}
    keep_holes = not bench.fills_holes(refiner)
    for name, smooth in (("deltaz (no smoothing)", False), ("deltaz", True)):
        rows[name] = bench.refined_depth({**refiner, "smooth": smooth}, init, grey, keep_holes)
    return rows


def run(refiner: dict[str, Any], gt: torch.Tensor, preset: str, draws: int) -> dict[str, dict[str, list]]:
    """``{half: {row: [covered MAE, mae_good_mm, harm_pct]}}`` for ``preset``'s errors, the mean over ``draws``
    seeded draws (scored as the Middlebury benchmark scores: :func:`real_middlebury.score`)."""
    tables = []
    for seed in range(draws):
        init = simulate_initial_depth(gt, preset, generator=torch.Generator().manual_seed(seed))
        tables.append(bench.score(outputs(refiner, init, gt), init, gt))
    mean = bench._mean_tables(tables)
    return {half: {row["method"]: [row["mae_valid_mm"], row["mae_good_mm"], row["harm_pct"]] for row in mean[half]}
            for half in ("left", "right")}


def print_table(preset: str, table: dict[str, dict[str, list]]) -> None:
    print(f"\n=== {preset} errors (mean of the draws): covered MAE / mae_good_mm / harm_pct, and x the median filter")
    for half, rows in table.items():
        median = rows["median"][0]
        for name, (mae, good, harm) in rows.items():
            print(f"{half:5s} {name:22s} {mae:7.2f} {good:6.2f} {harm:6.1f}   x median {mae / median:.3f}")
    ratio = table["right"]["deltaz"][0] / table["right"]["median"][0]
    tick = "x" if ratio <= MEDIAN_BAR else " "
    print(f"  [{tick}] right half: deltaz <= {MEDIAN_BAR:.2f} x the median filter: {ratio:.3f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="refiner checkpoint (.pt or a run folder); default: the demo's")
    parser.add_argument("--sample", help="the real DTU fragments folder (default: $DELTAZ_DTU_SAMPLE)")
    parser.add_argument("--presets", nargs="+", default=["mvs", "noise"], metavar="PRESET",
                        help="deltaz.ops.corrupt presets to draw (default: mvs noise)")
    parser.add_argument("--draws", type=int, default=5, help="seeded draws of each preset (default 5)")
    parser.add_argument("--json", help="also write every number to this JSON file")
    args = parser.parse_args(argv)
    unknown = [p for p in args.presets if p not in PRESETS]
    if unknown:
        parser.error(f"--presets: expected presets among {', '.join(PRESETS)}, got {', '.join(unknown)}")
    if args.draws < 1:
        parser.error(f"--draws must be >= 1, got {args.draws}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sample = Path(args.sample) if args.sample else dtu_sample_dir()
    if sample is None:
        print("real_dtu_map: no real DTU fragments: set DELTAZ_DTU_SAMPLE or pass --sample", file=sys.stderr)
        return 2
    try:
        gt = load_depth(sample)
        refiner, note = bench.load_refiner_or_none(args.checkpoint, "cpu")
        if refiner is None:
            print(f"real_dtu_map: {note}", file=sys.stderr)
            return 2
        print(f"{sample / DEPTH_MAP}: {tuple(gt.shape)}, {note}")
        report = {preset: run(refiner, gt, preset, args.draws) for preset in args.presets}
    except DeltaZError as error:
        print(f"real_dtu_map: error: {error}", file=sys.stderr)
        return 2
    for preset, table in report.items():
        print_table(preset, table)
    bench.write_report(args.json, {"checkpoint": note, "draws": args.draws, "tables": report})
    return 0


if __name__ == "__main__":
    sys.exit(main())
