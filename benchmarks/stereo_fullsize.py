"""``deltaz refine --right-image`` at full size: Middlebury *Motorcycle* (741×500, real scale), SGBM's disparity.

    .venv/bin/python benchmarks/stereo_fullsize.py                     # demo checkpoint, CPU, ~60 s
    .venv/bin/python benchmarks/stereo_fullsize.py --checkpoint CK --json out.json
    .venv/bin/python benchmarks/stereo_fullsize.py --colour-scale 3   # the refiner more cautious (K > 1) or bolder (< 1)
    .venv/bin/python benchmarks/stereo_fullsize.py --no-mirror-agreement  # the refiner without deltaz.ops.agreement

The table of docs/RESULTS.md, "Stereo pairs". The disparity is OpenCV SGBM's (the Middlebury benchmark's settings)
on the full-size pair; depth ``Z = f·B / (d + doffs)`` mm at the scene's real scale (median 2.75 m). Rows: SGBM; the
edge side choice (:func:`deltaz.ops.mvs.side.side_choice`); then the candidate search
(:func:`deltaz.ops.mvs.search.search_disparity` with ``planes=False``), or segment planes
(:func:`deltaz.ops.mvs.planes.segment_planes`), or both, then the sub-pixel refinement
(:func:`deltaz.ops.mvs.subpixel.subpixel_refine`; all four: ``search_disparity``'s default); the refiner on
SGBM's depth (``--disparity``), after side and search, after side, search and planes (``--right-image`` before the
sub-pixel step existed) and after all four (``--right-image``).
Columns: covered MAE (pixels with an SGBM disparity and a ground truth) of the left half (design) and the right
half (held out), and on the right half ``mae_good_mm`` over the pixels SGBM has within 8 mm and the share made
more than 4 mm worse: the 2 mm / 1 mm of the other tables at DTU scale, times this scene's ~4× larger depth.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from deltaz.model.selection import add_median_flag
from deltaz.ops.agreement import add_mirror_flags
from deltaz.ops.smooth import add_smooth_flags

GOOD_MM, HARM_MM = 8.0, 4.0


def scores(depth: np.ndarray, sgbm: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Covered MAE per half and the right half's good-pixel MAE and harm (module docstring)."""
    depth = np.nan_to_num(depth, nan=0.0)
    half = gt.shape[1] // 2
    out = {}
    for name, cols in (("left", slice(0, half)), ("right", slice(half, None))):
        g, s, z = gt[:, cols], sgbm[:, cols], depth[:, cols]
        covered = np.isfinite(g) & (g > 0) & np.isfinite(s) & (s > 0)
        error, before = np.abs(z - g), np.abs(s - g)
        out[f"{name}_mae_mm"] = float(error[covered].mean())
        if name == "right":
            out["right_mae_good_mm"] = float(error[covered & (before <= GOOD_MM)].mean())
            out["right_harm_pct"] = float(100 * (covered & (error > before + HARM_MM)).sum() / covered.sum())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="runs/demo/checkpoints/best.pt", help="refiner checkpoint")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--colour-scale", type=float, default=1.0, metavar="K",
                        help="a selection refiner's colour weight times K (deltaz refine --colour-scale; default 1)")
    add_mirror_flags(parser)
    add_smooth_flags(parser)
    add_median_flag(parser)
    args = parser.parse_args(argv)
    if not (np.isfinite(args.colour_scale) and args.colour_scale > 0):
        parser.error(f"--colour-scale: expected a positive number, got {args.colour_scale}")
    import deltaz
    from deltaz.core.errors import DeltaZError
    from deltaz.io.middlebury import (MOTORCYCLE_CALIBRATION as cal, disparity_to_depth, fixed_point_to_disparity,
                                      load_motorcycle, sgbm_disparity)
    from deltaz.ops.mvs.planes import segment_planes
    from deltaz.ops.mvs.search import search_disparity
    from deltaz.ops.mvs.side import side_choice
    from deltaz.ops.mvs.subpixel import subpixel_refine

    def depth(disparity: np.ndarray) -> np.ndarray:
        return disparity_to_depth(disparity, cal["f_px"], cal["baseline_mm"], cal["doffs_px"])

    try:
        data = load_motorcycle()
        left, right = data["rgb_left_full"], data["rgb_right_full"]
        disparity = fixed_point_to_disparity(sgbm_disparity(data)).astype(np.float32)
        gt, sgbm = depth(data["disparity_full"]), depth(disparity)
        seconds = {}
        start = time.perf_counter()
        side = side_choice(torch.from_numpy(disparity), torch.from_numpy(left).float().permute(2, 0, 1) / 255.0)
        seconds["side"] = time.perf_counter() - start
        start = time.perf_counter()
        searched = search_disparity(disparity, left, right, planes=False, subpixel=False)
        seconds["side, search"] = time.perf_counter() - start
        start = time.perf_counter()
        three = search_disparity(disparity, left, right, subpixel=False)
        seconds["side, search, planes"] = time.perf_counter() - start
        start = time.perf_counter()
        everything = subpixel_refine(three, left, right)  # = search_disparity's default, without redoing the three
        seconds["side, search, planes, subpixel"] = seconds["side, search, planes"] + time.perf_counter() - start
        side_planes = segment_planes(side.numpy(), left, right)

        def refined(z: np.ndarray) -> np.ndarray:
            return deltaz.refine_depth(np.nan_to_num(z, nan=0.0), left, checkpoint=args.checkpoint, device="cpu",
                                       colour_scale=args.colour_scale, mirror_agreement=args.mirror_agreement,
                                       weighted_median=args.weighted_median, smooth=args.smooth,
                                       on_note=lambda note: None)

        rows = {"SGBM": sgbm, "side": depth(side.numpy()), "side, search": depth(searched),
                "side, planes": depth(side_planes), "side, search, planes": depth(three),
                "side, search, planes, subpixel": depth(everything),
                "--disparity (refiner only)": refined(sgbm), "side, search, refiner": refined(depth(searched)),
                "side, search, planes, refiner": refined(depth(three)),
                "--right-image (all four, then refiner)": refined(depth(everything))}
    except DeltaZError as error:
        print(f"stereo_fullsize: error: {error}", file=sys.stderr)
        return 2
    table = {name: scores(z, sgbm, gt) for name, z in rows.items()}
    print(f"{'row':46s}{'left MAE':>10s}{'right MAE':>11s}{'good (right)':>14s}{'harm % (right)':>16s}")
    for name, row in table.items():
        print(f"{name:46s}{row['left_mae_mm']:10.2f}{row['right_mae_mm']:11.2f}{row['right_mae_good_mm']:14.2f}"
              f"{row['right_harm_pct']:16.1f}")
    print("seconds: " + ", ".join(f"{name} {value:.1f}" for name, value in seconds.items()))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"rows": table, "seconds": seconds, "checkpoint": args.checkpoint,
                       "colour_scale": args.colour_scale, "mirror_agreement": args.mirror_agreement,
                       "weighted_median": args.weighted_median, "smooth": args.smooth}, handle,
                      indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
