"""``deltaz import-middlebury``: Middlebury *Motorcycle* as a 2-view train-ready scan, so ``deltaz adapt`` runs on it.

    deltaz import-middlebury --out data/middlebury_ready            # writes data/middlebury_ready/motorcycle

The scene of :func:`deltaz.io.middlebury.load_motorcycle` (mm, z-depth, ``E = [I | 0]`` and ``[I | (−B·s, 0, 0)]``,
the right ``cx`` + doffs) becomes view 0 (left) and view 1 (right), written with
:func:`deltaz.io.dtu.layout.write_scan`:

* ``initial/``: OpenCV SGBM depth — the left view's :func:`deltaz.io.middlebury.sgbm_depth`; the right view's from
  the matching right matcher (``cv2.ximgproc.createRightMatcher``, its disparities negated), converted and
  resized the same way;
* ``depths/``: the left view's ground truth (used **only to score**); 0 for the right view (none shipped);
* ``images/``: both views at the depth's size; ``pair.txt``: each view is the other's source.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from deltaz.core.errors import DataError, DeltaZError
from deltaz.io.dtu.layout import write_scan
from deltaz.io.middlebury import (disparity_to_depth, load_motorcycle, resize_nearest, sgbm_depth, sgbm_matcher,
                                  sgbm_params)

__all__ = ["right_sgbm_depth", "write_motorcycle_scan", "add_arguments", "run"]


def right_sgbm_depth(data: dict[str, Any]) -> np.ndarray:
    """SGBM depth of the RIGHT view, ``(H, W)`` float32 mm at ``data["size"]``, 0 = hole.

    OpenCV's right matcher returns negative fixed-point disparities ``−16·d`` (``d = x_left − x_right``) and
    ``(minDisparity − 1)·16`` where it found none; ``Z = f·B·s / (d + doffs)`` as for the left view.
    """
    import cv2  # optional (opencv-contrib-python-headless, the dev extra): only this benchmark scan needs it

    if not hasattr(cv2, "ximgproc"):
        raise DataError("the right view's SGBM needs cv2.ximgproc (opencv-contrib-python-headless)")
    left_matcher = sgbm_matcher(cv2, sgbm_params(data))
    right_matcher = cv2.ximgproc.createRightMatcher(left_matcher)
    raw = right_matcher.compute(data["grey_right_full"], data["grey_left_full"]).astype(np.float32)
    invalid = raw <= (right_matcher.getMinDisparity() - 1) * 16
    disparity = np.where(invalid, np.nan, -raw / 16.0)
    disparity[disparity < 0] = np.nan
    cal = data["calibration"]
    depth = disparity_to_depth(disparity, cal["f_px"], cal["baseline_mm"], cal["doffs_px"])
    return np.ascontiguousarray(resize_nearest(depth, data["size"]))


def write_motorcycle_scan(root: str | Path, name: str = "motorcycle", size: tuple[int, int] = (125, 185),
                          median_depth_mm: float = 680.0) -> Path:
    """Write the 2-view scan ``<root>/<name>`` (see the module docstring); returns its folder."""
    data = load_motorcycle(size, median_depth_mm)
    gt = data["depth_gt"].numpy()
    views = {
        0: {"depth": gt, "initial": sgbm_depth(data).numpy(), "intrinsics": data["K_left"].numpy(),
            "extrinsics": data["E_left"].numpy(), "image": data["image_left"].numpy()},
        1: {"depth": np.zeros_like(gt), "initial": right_sgbm_depth(data), "intrinsics": data["K_right"].numpy(),
            "extrinsics": data["E_right"].numpy(), "image": data["image_right"].numpy()},
    }
    valid = np.concatenate([v["initial"][v["initial"] > 0] for v in views.values()])  # the inputs', not the truth's
    meta = {"source": "middlebury-motorcycle", "depth_range_mm": [float(valid.min()) * 0.95, float(valid.max()) * 1.05],
            "scale": data["scale"], "baseline_mm": data["baseline_mm"], "ground_truth": "view 0 only"}
    return write_scan(root, name, views, {0: [(1, 1.0)], 1: [(0, 1.0)]}, meta)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``deltaz import-middlebury``."""
    parser.add_argument("--out", required=True, help="train-ready root to write the scan into")
    parser.add_argument("--name", default="motorcycle", help="scan folder name (default motorcycle)")
    parser.add_argument("--size", type=int, nargs=2, default=[125, 185], metavar=("H", "W"),
                        help="depth and image size (default 125 185, about 1/4 of the 500x741 original)")
    parser.add_argument("--median-depth-mm", type=float, default=680.0,
                        help="median ground-truth depth the scene is scaled to (default 680, DTU-like)")


def run(args: argparse.Namespace) -> int:
    """``deltaz import-middlebury``: write the scan; errors in one line."""
    try:
        path = write_motorcycle_scan(args.out, args.name, tuple(args.size), args.median_depth_mm)
    except DeltaZError as error:
        print(f"deltaz import-middlebury: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path} (2 views, SGBM in initial/, left ground truth in depths/ for scoring only)")
    return 0
