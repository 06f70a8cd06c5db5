"""The design data in one table: every number a change to the refiner may be chosen on, and no held-out one.

Settings are chosen on design data only (README, "Words used here"): the left half of Middlebury Motorcycle's
reference view, the left half of the real DTU depth map (``DELTAZ_DTU_SAMPLE``), the demo's synthetic validation
scans. This script scores one or more checkpoints on all three, each run with every inference default (the dead zone,
the mirror agreement, the surface smoothing), and prints one row per measure and one column per checkpoint, beside a
reference (the input, or the classical row to beat). It never prints or writes a score of a right half, of Aloe or
of the demo's test scans, so a rule can be checked before the held-out data is looked at.

Cells are covered MAE / ``mae_good_mm`` / ``harm_pct`` (mm, mm, %). The parts and their cost on a 2-core CPU, per
checkpoint: Motorcycle (SGBM and the plane sweep with the classical two-view steps; simulated ``mvs`` errors and 2 mm
noise, ``--sim-seeds`` draws) about 1 min, the DTU map (``--draws`` draws each of ``mvs`` and 2 mm noise) seconds,
the validation scans (raw plane sweep, ``deltaz`` and ``search+deltaz``) about 1.5 min. A part whose data is
missing is skipped with a line that says why.

    python benchmarks/design_check.py                                  # the demo's checkpoint
    python benchmarks/design_check.py --checkpoint A.pt B.pt --json out.json
    python benchmarks/design_check.py --parts dtu motorcycle           # leave out the validation scans
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from deltaz.core.errors import DeltaZError
from deltaz.core.paths import data_dir, dtu_sample_dir

import real_dtu_map
import real_middlebury as bench  # sibling scripts: their directory is on sys.path when a script runs

PARTS = ("motorcycle", "dtu", "validation")
#: Motorcycle's measures: (input, row scored, reference row).
MOTO_ROWS = (("sgbm", "deltaz", "identity"), ("sgbm", "search+deltaz", "search"),
             ("sgbm", "subpixel+deltaz", "subpixel"), ("planesweep", "search+deltaz", "search"),
             ("planesweep", "subpixel+deltaz", "subpixel"), ("mvs", "deltaz", "median"), ("noise", "deltaz", "identity"))
#: The validation scans' measures: (row scored, reference row).
VAL_ROWS = (("deltaz", "identity"), ("search+deltaz", "search"))
Cell = list  # [covered MAE, mae_good_mm, harm_pct]


def _cell(row: dict[str, Any]) -> Cell:
    return [float(row["mae_valid_mm"]), float(row["mae_good_mm"]), float(row["harm_pct"])]


def motorcycle_left(refiner: dict[str, Any], sim_seeds: int) -> dict[str, dict[str, Cell]]:
    """``{measure: {"ref": cell, "value": cell}}`` on Motorcycle's left half (:mod:`real_middlebury`'s rows)."""
    data = bench.load_scene()
    left: dict[str, list[dict]] = {}
    for name, (depth_init, _note) in bench.input_depths(data).items():
        if depth_init is not None:
            left[name] = bench.run_input(name, depth_init, data, refiner)["rows"]["left"]
    for preset in ("mvs", "noise"):
        left[preset] = bench.run_simulated(preset, data, refiner, sim_seeds)["rows"]["left"]
    out = {}
    for source, method, reference in MOTO_ROWS:
        if source in left:
            by = {row["method"]: row for row in left[source]}
            label = f"{'sim ' if source in ('mvs', 'noise') else ''}{source}"
            out[f"Motorcycle left, {label}: {method} ({reference})"] = {"ref": _cell(by[reference]),
                                                                        "value": _cell(by[method])}
    return out


def dtu_left(refiner: dict[str, Any], sample: Path, draws: int) -> dict[str, dict[str, Cell]]:
    """The real DTU depth map's left half, ``mvs`` errors and 2 mm noise (:mod:`real_dtu_map`'s rows)."""
    gt = real_dtu_map.load_depth(sample)
    out = {}
    for preset in ("mvs", "noise"):
        rows = real_dtu_map.run(refiner, gt, preset, draws)["left"]
        out[f"DTU map left, {preset}: deltaz (median)"] = {"ref": list(rows["median"]), "value": list(rows["deltaz"])}
    return out


def validation(checkpoint: str, data_root: Path) -> dict[str, dict[str, Cell]]:
    """The demo's validation scans, raw plane-sweep input, over all their views (``deltaz evaluate --split val``)."""
    from deltaz.engine.evaluate.runner import run_evaluation

    rows = run_evaluation(checkpoint, data_root, split="val", preset="planesweep_raw", baselines="none",
                          figures=False, pointclouds=False, progress=False)["rows"]
    by = {row["method"]: row for row in rows if row["scan"] == "all"}
    return {f"validation scans, plane sweep: {method} ({reference})": {"ref": _cell(by[reference]),
                                                                       "value": _cell(by[method])}
            for method, reference in VAL_ROWS}


def check(checkpoint: str, parts: tuple[str, ...], args: argparse.Namespace) -> tuple[dict, list[str]]:
    """One checkpoint's measures over ``parts``, and a line for each part skipped."""
    refiner, note = bench.load_refiner_or_none(checkpoint, "cpu")
    if refiner is None:
        raise DeltaZError(note)
    measures, skipped = {}, []
    if "motorcycle" in parts:
        measures.update(motorcycle_left(refiner, args.sim_seeds))
    if "dtu" in parts:
        sample = Path(args.sample) if args.sample else dtu_sample_dir()
        if sample is None:
            skipped.append("dtu: no real DTU fragments (set DELTAZ_DTU_SAMPLE or pass --sample)")
        else:
            measures.update(dtu_left(refiner, sample, args.draws))
    if "validation" in parts:
        root = Path(args.data_root)
        if not root.is_dir():
            skipped.append(f"validation: {root}: no train-ready folder (make demo writes one; or pass --data-root)")
        else:
            measures.update(validation(refiner["path"], root))
    return measures, skipped


def format_cell(cell: Cell | None) -> str:
    return "-" if cell is None else f"{cell[0]:.3f} / {cell[1]:.2f} / {cell[2]:.1f}"


def print_table(results: dict[str, dict], names: list[str]) -> None:
    """One row per measure: the reference (from the first checkpoint's run), then each checkpoint's cell."""
    measures = list(dict.fromkeys(m for r in results.values() for m in r))
    print("| design measure (reference row) | reference | " + " | ".join(names) + " |")
    print("| --- | --- |" + " --- |" * len(names))
    for m in measures:
        ref = next((r[m]["ref"] for r in results.values() if m in r), None)
        cells = [format_cell(results[n][m]["value"] if m in results[n] else None) for n in names]
        print(f"| {m} | {format_cell(ref)} | " + " | ".join(cells) + " |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", nargs="+", default=None, metavar="CK",
                        help="one or more refiner checkpoints (.pt or a run folder); default: the demo's")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="the design data to score")
    parser.add_argument("--sim-seeds", type=int, default=bench.SIM_SEEDS, metavar="N",
                        help=f"Motorcycle: draws of each simulated error model (default {bench.SIM_SEEDS})")
    parser.add_argument("--draws", type=int, default=5, metavar="N", help="the DTU map: draws of each (default 5)")
    parser.add_argument("--sample", default=None, help="the real DTU fragments folder (default $DELTAZ_DTU_SAMPLE)")
    parser.add_argument("--data-root", default=str(data_dir() / "demo" / "train_ready"),
                        help="the demo's train-ready folder, for the validation scans (default <data>/demo/train_ready)")
    parser.add_argument("--json", default=None, help="also write every number to this JSON file")
    args = parser.parse_args(argv)
    for flag in ("sim_seeds", "draws"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    checkpoints = args.checkpoint or [None]
    results, names = {}, []
    try:
        for ck in checkpoints:
            name = ck or "the demo's checkpoint"
            results[name], skipped = check(ck, tuple(args.parts), args)
            names.append(name)
            for line in skipped:
                print(f"design_check: skipped {line}", file=sys.stderr)
    except DeltaZError as error:
        print(f"design_check: error: {error}", file=sys.stderr)
        return 2
    print_table(results, names)
    print(f"\n{len(names)} checkpoint(s) in {time.perf_counter() - start:.0f} s; design data only (left halves, "
          "validation scans): no held-out score printed or written")
    bench.write_report(args.json, {"checkpoints": names, "measures": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
