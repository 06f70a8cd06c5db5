"""Where Motorcycle's covered error lies: each method's covered MAE split by the kind of pixel that carries it.

    .venv/bin/python benchmarks/middlebury_budget.py                 # demo checkpoint, SGBM input, CPU
    .venv/bin/python benchmarks/middlebury_budget.py --input planesweep --checkpoint CK --json out.json

The scene and the rows are those of ``benchmarks/real_middlebury.py`` (185×125, 680 mm median depth). Each
covered pixel (an input depth and a ground truth) falls in one of four kinds, decided from the ground truth:

* ``edge`` — sub-resolution: the ground truth over the full-size block the pixel stands for (4×4 px) spans
  more than :data:`EDGE_SPAN_MM` (at 680 mm median depth). Which side of the edge this one full-size pixel lies
  on is below the 185×125 grid's resolution;
* ``occluded`` — not ``edge``, and hidden from the right camera (the ground truth's own z-buffer,
  :func:`deltaz.ops.occlusion.half_occlusion` at full size): no second-view evidence exists;
* ``wrong`` — neither, and the input is off by more than :data:`WRONG_MM`: wrong matches the right image sees;
* ``rest`` — everything else.

A row's cell is ``Σ |error| over the kind's pixels / number of covered pixels`` (mm), so a row's cells add up to
its covered MAE (``mae_valid_mm`` of the other benchmark); the header gives each kind's share of the pixels.
Printed for the LEFT half (design) and the RIGHT half (held out). A second table splits each row's covered MAE by
the size of *its own* disparity error against the ground truth (full-size px; :data:`ERROR_BINS_PX`; a hole falls
in the last bin), each cell ``share of the covered pixels / Σ |error| over the bin ÷ the covered pixels`` (mm, so the
cells add up to the covered MAE): where the millimetres are — one pixel of disparity is about 10 mm at the scene's
680 mm median depth (more farther away), so a few gross errors outweigh all the sub-pixel ones.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from deltaz.core.errors import DeltaZError
from deltaz.io.middlebury import depth_to_disparity, disparity_to_depth, resize_nearest
from deltaz.model.selection import add_median_flag
from deltaz.ops.agreement import add_mirror_flags
from deltaz.ops.occlusion import half_occlusion
from deltaz.ops.smooth import add_smooth_flags

import real_middlebury as bench  # the sibling script: its directory is on sys.path when a script runs

#: Kinds of covered pixel, in table order.
KINDS = ("edge", "occluded", "wrong", "rest")
#: A full-size block spanning more than this (mm, at 680 mm median depth × the scene's scale) is a depth edge.
EDGE_SPAN_MM = 30.0
#: An input error above this (mm, same scaling) is a wrong match.
WRONG_MM = 20.0
#: Bin edges (full-size px of disparity error) of the second table: < 0.25, 0.25–1, 1–5, >= 5 px.
ERROR_BINS_PX = (0.25, 1.0, 5.0)
#: The median depth (mm) the thresholds are given at.
MEDIAN_DEPTH_MM = 680.0
#: The rows, when the run has them.
METHODS = ("identity", "side", "search", "planes", "subpixel", "deltaz", "deltaz+gate", "search+deltaz",
           "planes+deltaz", "subpixel+deltaz")


def full_size_depth(data: dict[str, Any]) -> torch.Tensor:
    """The ground truth at full size: ``(500, 741)`` float32 mm in the scene's scale, 0 = unknown."""
    cal = data["calibration"]
    depth = disparity_to_depth(data["disparity_full"], cal["f_px"], cal["baseline_mm"], cal["doffs_px"])
    return torch.from_numpy(np.nan_to_num(np.asarray(depth, dtype=np.float32), nan=0.0))


def block_span(data: dict[str, Any]) -> torch.Tensor:
    """``(H, W)`` mm: max − min of the ground truth over the full-size block each grid pixel stands for
    (unknown pixels left out; 0 where the block has fewer than two known pixels)."""
    depth = full_size_depth(data)
    k = max(1, round(depth.shape[0] / data["size"][0]))
    known = depth > 0
    high = torch.where(known, depth, torch.full_like(depth, -float("inf")))
    low = torch.where(known, -depth, torch.full_like(depth, -float("inf")))
    pad = (k // 2, (k - 1) // 2, k // 2, (k - 1) // 2)  # the block ends at the sampled pixel's k//2 - 1 side
    top = F.max_pool2d(F.pad(high[None, None], pad, value=-float("inf")), k, 1)[0, 0]
    bottom = -F.max_pool2d(F.pad(low[None, None], pad, value=-float("inf")), k, 1)[0, 0]
    span = resize_nearest(top - bottom, data["size"])
    return torch.where(torch.isfinite(span), span, torch.zeros_like(span))


def covered_pixels(data: dict[str, Any], depth_init: torch.Tensor) -> torch.Tensor:
    """``(H, W)`` bool: the pixels with an input depth and a ground truth (both tables' pixels)."""
    return (depth_init > 0) & (data["depth_gt"] > 0)


def pixel_kinds(data: dict[str, Any], depth_init: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{kind: (H, W) bool}`` over the covered pixels (module docstring); the kinds partition them."""
    gt = data["depth_gt"]
    covered = covered_pixels(data, depth_init)
    unit = float(gt[gt > 0].median()) / MEDIAN_DEPTH_MM  # the thresholds scale with the scene
    depth = full_size_depth(data)
    disparity = torch.from_numpy(np.nan_to_num(data["disparity_full"], nan=0.0))
    hidden, _ = half_occlusion(depth[None], disparity[None], max_band_px=64)
    edge = covered & (block_span(data) > EDGE_SPAN_MM * unit)
    occluded = covered & ~edge & resize_nearest(hidden[0], data["size"])
    wrong = covered & ~edge & ~occluded & ((depth_init - gt).abs() > WRONG_MM * unit)
    return {"edge": edge, "occluded": occluded, "wrong": wrong, "rest": covered & ~edge & ~occluded & ~wrong}


def budget(outputs: dict[str, torch.Tensor], kinds: dict[str, torch.Tensor], gt: torch.Tensor, region: torch.Tensor
           ) -> dict[str, Any]:
    """``{"share_pct": {kind: %}, "rows": [{"method", "mae_valid_mm", kind: mm, ...}]}`` over ``region``'s
    covered pixels; a row's kind cells add up to its ``mae_valid_mm``."""
    parts = {kind: mask & region for kind, mask in kinds.items()}
    n = max(1, sum(int(m.sum()) for m in parts.values()))
    rows = []
    for method in [m for m in METHODS if m in outputs]:
        error = (outputs[method] - gt).abs()
        cells = {kind: float(error[mask].sum()) / n for kind, mask in parts.items()}
        rows.append({"method": method, "mae_valid_mm": sum(cells.values()), **cells})
    return {"share_pct": {kind: 100.0 * int(m.sum()) / n for kind, m in parts.items()}, "rows": rows}


def bin_labels() -> list[str]:
    """The second table's column names, e.g. ``"< 0.25 px"``, ``"0.25-1 px"``, ``">= 5 px"``."""
    edges = [f"{e:g}" for e in ERROR_BINS_PX]
    return [f"< {edges[0]} px", *(f"{a}-{b} px" for a, b in zip(edges, edges[1:])), f">= {edges[-1]} px"]


def error_bins(outputs: dict[str, torch.Tensor], data: dict[str, Any], depth_init: torch.Tensor,
               region: torch.Tensor) -> list[dict[str, Any]]:
    """Per method: ``{"method", "mae_valid_mm", label: [share %, mm], ...}`` over ``region``'s covered pixels
    (``outputs``' maps, ``depth_init`` and ``region``: ``(H, W)`` at the grid, mm / bool).

    Each pixel falls in the bin ``[low, high)`` of its own disparity error: full-size px, since the depths are turned
    into disparity with the full-size calibration (the baseline scaled with the scene); a hole is an infinite error.
    ``share %`` is the bin's share of the covered pixels, ``mm`` its Σ |depth error| ÷ the covered pixels, so a row's
    mm add up to its ``mae_valid_mm``."""
    cal, gt = data["calibration"], data["depth_gt"]
    covered = region & covered_pixels(data, depth_init)
    n = max(1, int(covered.sum()))

    def disparity(depth: torch.Tensor) -> np.ndarray:
        return depth_to_disparity(depth.float().numpy(), cal["f_px"], cal["baseline_mm"], cal["doffs_px"])

    truth = disparity(gt)
    rows = []
    for method in [m for m in METHODS if m in outputs]:
        off = np.nan_to_num(np.abs(disparity(outputs[method]) - truth), nan=np.inf)
        off = torch.from_numpy(np.ascontiguousarray(off))
        index = torch.bucketize(off, torch.tensor(ERROR_BINS_PX, dtype=off.dtype), right=True)  # [low, high)
        error = (outputs[method] - gt).abs().double()
        row: dict[str, Any] = {"method": method, "mae_valid_mm": float(error[covered].sum()) / n}
        for i, label in enumerate(bin_labels()):
            mask = covered & (index == i)
            row[label] = [100.0 * int(mask.sum()) / n, float(error[mask].sum()) / n]
        rows.append(row)
    return rows


def format_bins(rows: list[dict[str, Any]]) -> str:
    """The table of :func:`error_bins`: ``share % / mm`` per bin."""
    labels = bin_labels()
    lines = [f"{'method':16s}{'covered MAE':>13s}" + "".join(f"{label:>18s}" for label in labels)]
    lines += [f"{row['method']:16s}{row['mae_valid_mm']:13.2f}"
              + "".join(f"{f'{row[k][0]:.1f} % / {row[k][1]:.2f}':>18s}" for k in labels) for row in rows]
    return "\n".join(lines)


def format_budget(result: dict[str, Any]) -> str:
    """The table of :func:`budget`: one row per method, the kinds' shares in the header."""
    share = result["share_pct"]
    head = f"{'method':16s}{'covered MAE':>13s}" + "".join(f"{f'{k} ({share[k]:.1f} %)':>18s}" for k in KINDS)
    lines = [head] + [f"{row['method']:16s}{row['mae_valid_mm']:13.2f}" + "".join(f"{row[k]:18.2f}" for k in KINDS)
                      for row in result["rows"]]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None,
                        help="refiner checkpoint (.pt or a folder with best.pt/last.pt); default: the demo's; "
                        "without one only the classical rows")
    parser.add_argument("--input", choices=("sgbm", "planesweep"), default="sgbm", help="the initial depth")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--json", default=None, help="also write every number to this JSON file")
    add_mirror_flags(parser)
    add_smooth_flags(parser)
    add_median_flag(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data = bench.load_scene(1.0)
        refiner, note = bench.load_refiner_or_none(args.checkpoint, args.device)
        if refiner is not None:
            note += bench.set_dials(refiner, args)
        depth_init, input_note = bench.input_depths(data)[args.input]
        if depth_init is None:
            raise DeltaZError(f"--input {args.input}: {input_note}")
        outputs, _ = bench.method_outputs(args.input, depth_init, data, refiner)
    except DeltaZError as error:
        print(f"middlebury_budget: error: {error}", file=sys.stderr)
        return 1
    kinds = pixel_kinds(data, depth_init)
    left = bench.left_mask(depth_init.shape)
    print(f"Motorcycle, {args.input} input ({input_note}); refiner: {note}")
    print(f"covered MAE (mm) split by kind of pixel: edge = a full-size block spanning > {EDGE_SPAN_MM:g} mm, "
          f"occluded = hidden from the right camera, wrong = input off by > {WRONG_MM:g} mm, rest = the others")
    report = {"input": args.input, "refiner": refiner and refiner["path"]}
    for region, mask in (("left", left), ("right", ~left)):
        report[region] = budget(outputs, kinds, data["depth_gt"], mask)
        label = "LEFT half (design)" if region == "left" else "RIGHT half (held out)"
        report[region]["error_bins"] = error_bins(outputs, data, depth_init, mask)
        print(f"\n{label}\n{format_budget(report[region])}")
        print(f"by the size of each row's own disparity error, full-size px, a hole counted as >= "
              f"{ERROR_BINS_PX[-1]:g} px (share of the covered pixels / mm of its covered MAE)\n"
              f"{format_bins(report[region]['error_bins'])}")
    bench.write_report(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
