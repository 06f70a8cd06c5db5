"""Where a row's gain and its damage to good depth lie on train-ready scans, split by the kind of pixel.

    .venv/bin/python benchmarks/good_pixel_budget.py --checkpoint runs/demo/checkpoints/best.pt \\
        --data-root data/demo/train_ready --scans scan9 scan10     # the demo's validation scans (design data)

Each covered pixel (an input depth and a ground truth) is one of three kinds, decided from the input depth
alone — what a post-step could see without the ground truth:

* ``edge`` — the input's 5×5 window around it spans more than :data:`EDGE_SPAN_REL` of its depth;
* ``hole`` — not ``edge``, and within 2 px of an input hole;
* ``rest`` — everything else.

Per row and kind: ``gain`` = Σ (|input error| − |row error|) over the kind's covered pixels / the number of
covered pixels (mm; a row's gains add up to the input's covered MAE minus its own), and ``good`` = Σ (|row
error| − |input error|) over the kind's *good* pixels (input within 2 mm) / the number of good pixels (mm; they
add up to the row's ``mae_good_mm`` minus the input's). The rows are ``deltaz evaluate``'s: ``identity``,
``deltaz``, ``search`` and ``search+deltaz``.
"""

from __future__ import annotations

import argparse
import sys

import torch

from deltaz.core.errors import DeltaZError
from deltaz.engine.evaluate import apply_method, baseline_method, load_refiner, model_method, search_methods
from deltaz.engine.scans import load_scan_views
from deltaz.ops.corrupt import local_max, local_min
from deltaz.ops.metrics import GOOD_MM  # mae_good_mm's threshold

#: Kinds of covered pixel, in table order.
KINDS = ("edge", "hole", "rest")
#: A 5×5 input window spanning more than this fraction of the pixel's depth makes the pixel an edge.
EDGE_SPAN_REL = 0.02


def pixel_kinds(depth_init: torch.Tensor) -> dict[str, torch.Tensor]:
    """``(B, H, W)`` input depth, mm, 0 = hole → ``{kind: (B, H, W) bool}``, a partition of its pixels > 0."""
    d = depth_init.float()
    present = d > 0
    edge = present & (local_max(d, 2) - local_min(d, 2) > EDGE_SPAN_REL * d)
    near_hole = local_max((~present).float(), 2) > 0  # the border counts as no hole
    hole = present & ~edge & near_hole
    return dict(zip(KINDS, (edge, hole, present & ~edge & ~hole)))


def split(depth: torch.Tensor, depth_init: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """One row's sums per kind, ``(len(KINDS), 4)``: [gain over covered (mm), added error over good (mm), covered
    pixels, good pixels]; and the totals ``covered`` and ``good``."""
    covered = (depth_init > 0) & (gt > 0)
    before, after = (depth_init - gt).abs(), (depth - gt).abs()
    good = covered & (before < GOOD_MM)
    sums = torch.tensor([[(before - after)[covered & mask].sum().item(), (after - before)[good & mask].sum().item(),
                          (covered & mask).sum().item(), (good & mask).sum().item()]
                         for mask in pixel_kinds(depth_init).values()], dtype=torch.float64)
    return {"sums": sums, "covered": covered.sum().item(), "good": good.sum().item()}


def rows(checkpoint: str) -> dict:
    """The evaluated rows on the CPU, holes kept or filled as the checkpoint was trained."""
    model, config, _ = load_refiner(checkpoint, "cpu")
    keep_holes = not config.get("fill_holes", False)
    return {"identity": baseline_method("identity", {}), "deltaz": model_method(model, "cpu", keep_holes),
            **search_methods(model, "cpu", keep_holes)}


def budget(args: argparse.Namespace) -> dict[str, dict]:
    """Every row's split summed over the scans: ``{row: {"sums", "covered", "good"}}``."""
    methods, total = rows(args.checkpoint), {}
    for scan in args.scans:
        views = load_scan_views(args.data_root, scan, args.num_src_views, args.preset, use_images=True)
        for name, method in methods.items():
            part = split(apply_method(method, views), views.depth_init, views.depth)
            acc = total.setdefault(name, {"sums": torch.zeros(len(KINDS), 4, dtype=torch.float64),
                                          "covered": 0, "good": 0})
            for key in acc:
                acc[key] = acc[key] + part[key]
    return total


def format_table(total: dict[str, dict]) -> str:
    """A markdown table: per row, the gain per kind (mm over covered pixels) and the added error on good pixels;
    the header gives each kind's share of the covered and of the good pixels."""
    counts = next(iter(total.values()))["sums"][:, 2:]  # the same pixels for every row
    shares = counts / counts.sum(0)
    head = ("| row | " + " | ".join(f"gain: {k} ({100 * c:.1f} %)" for k, c in zip(KINDS, shares[:, 0])) + " | "
            + " | ".join(f"good +: {k} ({100 * c:.1f} %)" for k, c in zip(KINDS, shares[:, 1])))
    lines = [head + " |", "|" + " --- |" * (1 + 2 * len(KINDS))]
    for name, acc in total.items():
        gain = acc["sums"][:, 0] / max(acc["covered"], 1)
        added = acc["sums"][:, 1] / max(acc["good"], 1)
        lines.append(f"| {name} | " + " | ".join(f"{g:.2f}" for g in gain) + " | "
                     + " | ".join(f"{a:.2f}" for a in added) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a trained refiner (deltaz train / make demo)")
    p.add_argument("--data-root", required=True, help="train-ready scans with images")
    p.add_argument("--scans", nargs="+", required=True, help="scan folder names, e.g. scan9 scan10")
    p.add_argument("--preset", default="planesweep_raw", help="the initial depth (default planesweep_raw)")
    p.add_argument("--num-src-views", type=int, default=4, help="pair.txt sources per view (default 4)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        total = budget(args)
    except DeltaZError as exc:
        print(f"good_pixel_budget: {exc}", file=sys.stderr)
        return 2
    first = next(iter(total.values()))
    print(f"{len(args.scans)} scan(s), {first['covered']} covered pixels, {first['good']} good (input within "
          f"{GOOD_MM:g} mm); kinds from the input: edge (5x5 span > {EDGE_SPAN_REL:.0%} of the depth), hole "
          "(within 2 px of a hole), rest")
    print(format_table(total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
