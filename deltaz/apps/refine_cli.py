"""``deltaz refine``: refine your own depth maps, one file or a folder, with :func:`deltaz.engine.refine.refine_depth`.

Units: ``depth_mm = stored value × --depth-scale`` (default 1: the file holds mm); the output is written back in
the same units (PNG rounded to integers) and in the input's format unless ``--out``'s ending (or ``--out-format``
in folder mode) says otherwise. With ``--disparity`` the input holds disparity ``d = stored × --depth-scale``
(px, 0/NaN/inf = unknown) and the output is z-depth ``f·B / (d + doffs)`` in mm; ``--right-image`` (single file)
first runs the classical two-view steps on the disparity: the edge side choice, the candidate search, segment
planes and the sub-pixel refinement (:func:`deltaz.ops.mvs.search.search_disparity`).
Holes keep their marker (0, NaN or inf) unless ``--fill-holes``. Bad input ends with one ``deltaz refine: error: …``
line on stderr and exit status 1; nothing is half-written (every file goes to a temporary name in its folder, then
is renamed).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from deltaz.apps.refine_file import refine_file
from deltaz.apps.refine_folder import run_folder
from deltaz.core.errors import ConfigError, DeltaZError, FormatError
from deltaz.core.options import parse_dead_zone
from deltaz.engine.refine import DEFAULT_MAX_PIXELS, load_model
from deltaz.io.depth_io import FORMATS, format_of
from deltaz.model import check_colour_scale
from deltaz.model.selection import add_median_flag
from deltaz.ops.agreement import add_mirror_flags
from deltaz.ops.dead_zone import DEAD_ZONE, DEAD_ZONE_HELP
from deltaz.ops.smooth import add_smooth_flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``deltaz refine``."""
    parser.add_argument("--depth", required=True,
                        help="depth map (PFM, .npy, PNG, float TIFF, COLMAP .bin) or a folder of them")
    parser.add_argument("--image", default=None,
                        help="its RGB image (or a folder, paired by name stem); required when the model takes images")
    parser.add_argument("--out", required=True, help="output file (its ending picks the format) or folder")
    parser.add_argument("--checkpoint", default=None,
                        help="a .pt checkpoint or run folder "
                             "(default: the shipped weights, deltaz/weights/deltaz_refiner.pt, when the checkout "
                             "has them; otherwise e.g. runs/demo/checkpoints/best.pt from make demo)")
    parser.add_argument("--depth-scale", type=float, default=None, metavar="S",
                        help="depth_mm = stored value x S (default 1: mm); required for 8-bit PNG depth")
    parser.add_argument("--disparity", action="store_true", help="the input holds disparity (px) of rectified stereo")
    parser.add_argument("--focal", type=float, default=None, help="with --disparity: focal length f in px")
    parser.add_argument("--baseline", type=float, default=None, help="with --disparity: baseline B in mm")
    parser.add_argument("--doffs", type=float, default=0.0,
                        help="with --disparity: principal-point offset in px (default 0)")
    parser.add_argument("--right-image", default=None, metavar="IMG",
                        help="with --disparity and --image (one file): the right image of the rectified pair; the "
                             "disparity first goes through the edge side choice, a two-view search of the "
                             "neighbours' disparities, segment planes and a sub-pixel refinement")
    parser.add_argument("--fill-holes", action="store_true",
                        help="let the model fill holes (default: holes stay holes)")
    parser.add_argument("--resize-image", action="store_true",
                        help="resize an image of another size to the depth map's")
    parser.add_argument("--preview", default=None, metavar="PNG",
                        help="write a figure: image, input, refined, delta z (a folder in folder mode)")
    parser.add_argument("--overwrite", action="store_true", help="allow --out to be the input file (or folder)")
    parser.add_argument("--out-format", choices=sorted(FORMATS), default=None,
                        help="folder mode: write this format instead of each input's own")
    parser.add_argument("--depth-range", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="depth range in mm for the model's normalisation (default: the map's own min/max)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="refine larger maps in overlapping tiles of at most this many pixels "
                             f"(default {DEFAULT_MAX_PIXELS})")
    parser.add_argument("--bf16", action="store_true",
                        help="bfloat16 convolutions: ~1.3-1.5x faster on CPUs with AVX512-BF16 and on GPUs, "
                             "delta z within ~0.01 mm")
    parser.add_argument("--colour-scale", type=float, default=1.0, metavar="K",
                        help="selection models (deltaz_select with images): multiply the colour weight by K; "
                             "K > 1 leaves more of the input alone, K < 1 corrects more (default 1: as trained)")
    parser.add_argument("--dead-zone", type=parse_dead_zone, default=DEAD_ZONE, metavar="F,N", help=DEAD_ZONE_HELP)
    add_mirror_flags(parser)
    add_median_flag(parser)
    add_smooth_flags(parser)
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")


# ----------------------------------------------------------------------------------------- units
def _check_args(args: argparse.Namespace) -> None:
    if args.depth_scale is not None and not (np.isfinite(args.depth_scale) and args.depth_scale > 0):
        raise ConfigError(f"--depth-scale: expected a positive number (depth_mm = stored x S), got {args.depth_scale}")
    if args.disparity:
        for flag, value in (("--focal", args.focal), ("--baseline", args.baseline)):
            if value is None or not value > 0:
                raise ConfigError(f"{flag}: --disparity needs a positive {flag} (f in px, B in mm), got {value}")
    elif args.focal is not None or args.baseline is not None:
        raise ConfigError("--focal/--baseline: only used with --disparity (the input is disparity in px)")
    if args.right_image is not None:
        if not args.disparity or args.image is None:
            raise ConfigError("--right-image: needs --disparity and --image (the left image of the rectified pair)")
        if not Path(args.right_image).is_file():
            raise FormatError(args.right_image, "--right-image: expected an image file (single-file mode only)")
    if args.max_pixels is not None and args.max_pixels < 256 * 256:
        raise ConfigError(f"--max-pixels: expected at least {256 * 256} pixels per tile, got {args.max_pixels}")
    check_colour_scale(args.colour_scale)
    if args.depth_range is not None and not 0 <= args.depth_range[0] < args.depth_range[1]:
        raise ConfigError(f"--depth-range: expected 0 <= MIN < MAX in mm, got {args.depth_range}")


def _note(text: str) -> None:
    print(f"deltaz refine: {text}", file=sys.stderr)


def run_single(args: argparse.Namespace) -> int:
    depth_path, out_path = Path(args.depth), Path(args.out)
    if out_path.is_dir():
        raise ConfigError(f"--out: {out_path} is a folder but --depth {depth_path} is a file; give an output file name")
    if args.out_format is not None:
        raise ConfigError("--out-format: folder mode only; in single-file mode --out's ending picks the format")
    format_of(out_path)  # refuse an unknown ending before any work
    image_path = None if args.image is None else Path(args.image)
    if image_path is not None and not image_path.is_file():
        raise FormatError(image_path, "--image: expected an image file (a folder only goes with a --depth folder)")
    refine_file(args, depth_path, image_path, out_path, None if args.preview is None else Path(args.preview), _note)
    print(f"wrote {out_path}" + (f" and {args.preview}" if args.preview else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    """``deltaz refine``: one line on stderr and exit 1 for bad input (``DELTAZ_DEBUG=1`` shows the traceback)."""
    try:
        _check_args(args)
        if not Path(args.depth).exists():
            raise FormatError(args.depth, "--depth: no such file or folder")
        model = load_model(args.checkpoint, args.device)  # checkpoint problems first, before any output
        if getattr(model, "in_channels", 1) != 4 and args.image is not None:
            raise ConfigError("--image: this checkpoint's model takes depth only (in_channels 1); drop --image")
        if Path(args.depth).is_dir():
            return run_folder(args, model)
        return run_single(args)
    except DeltaZError as error:
        print(f"deltaz refine: error: {' '.join(str(error).split())}", file=sys.stderr)
    except OSError as error:
        print(f"deltaz refine: error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
    except Exception as error:  # a front door never shows a traceback; DELTAZ_DEBUG=1 does
        if os.environ.get("DELTAZ_DEBUG") == "1":
            raise
        print(f"deltaz refine: error: {type(error).__name__}: {' '.join(str(error).split())[:300]}", file=sys.stderr)
    return 1
