"""``deltaz evaluate``: flags (choices from the registries) and the command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deltaz.core.errors import DeltaZError
from deltaz.core.options import parse_dead_zone
from deltaz.engine.evaluate.methods import CLASSICAL_BASELINES
from deltaz.engine.evaluate.runner import run_evaluation
from deltaz.engine.scans import EVAL_SPLITS
from deltaz.engine.report import summary_table
from deltaz.model import MODELS
from deltaz.model.selection import add_median_flag
from deltaz.ops.agreement import add_mirror_flags
from deltaz.ops.corrupt import INITIAL_MODELS
from deltaz.ops.dead_zone import DEAD_ZONE, DEAD_ZONE_HELP
from deltaz.ops.smooth import add_smooth_flags

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``deltaz evaluate``."""
    parser.add_argument("--checkpoint", required=True,
                        help=f"trained refiner ({', '.join(MODELS)}): a .pt file or a folder with best.pt/last.pt")
    parser.add_argument("--data-root", required=True, help="folder of train-ready scans (scan*/)")
    parser.add_argument(
        "--split", default="val", choices=list(EVAL_SPLITS),
        help="which scans of --data-root: the checkpoint's validation (or training) scans, the scans it never "
        "saw (test), or all (default: val)",
    )
    parser.add_argument("--preset", default="mvs", metavar="MODEL",
                        help=f"initial depth for scans without initial/: one of {', '.join(INITIAL_MODELS)} "
                        "(planesweep and sgbm run stereo on the images, cached per scan) or a weighted mix "
                        "such as planesweep:0.6,mvs:0.4 (default: mvs)")
    parser.add_argument("--out", default="runs/eval",
                        help="output folder for metrics.json, metrics.md, figures (default: runs/eval)")
    parser.add_argument("--baselines", default="all",
                        help=f"'all', 'none' or a comma-separated list of {','.join(CLASSICAL_BASELINES)}")
    parser.add_argument("--compare-checkpoint", default=None,
                        help="a trained MVSNet-style refiner (deltaz train --model mvsnet_refine) to add as "
                        "mvsnet_refine")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    parser.add_argument("--num-src-views", type=int, default=4, help="source views per reference view (default 4)")
    parser.add_argument("--batch-size", type=int, default=8, help="views per forward pass (default 8)")
    parser.add_argument("--tune-max-views", type=int, default=16,
                        help="validation views per scan used to tune the baselines (default 16; 0 = all)")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.add_argument("--no-pointclouds", action="store_true", help="skip point-cloud fusion and scoring")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--fusion-conf-thresh", type=float, default=None,
                        help="drop deltaz pixels with confidence below this from its fused point cloud "
                        "(models trained with --confidence; confidence = 1/(1 + b/1 mm))")
    parser.add_argument("--adapt-minutes", type=float, default=0.0,
                        help="also score deltaz+adapt: the checkpoint adapted to each evaluated scan for this many "
                        "minutes without its ground truth (deltaz adapt; default 0 = off)")
    parser.add_argument("--no-search", action="store_true",
                        help="skip the rows search and search+deltaz (the multi-view candidate search, 0.3-0.4 s "
                        "per 160x128 view with 4 sources on a 2-core CPU)")
    parser.add_argument("--dead-zone", type=parse_dead_zone, default=DEAD_ZONE, metavar="F,N", help=DEAD_ZONE_HELP)
    add_mirror_flags(parser)
    add_median_flag(parser)
    add_smooth_flags(parser)
    parser.add_argument("--colour-scale", type=float, default=1.0, metavar="K",
                        help="a selection refiner's colour weight times K in its rows (as deltaz refine "
                        "--colour-scale: K > 1 leaves more of the input alone; default 1 = as trained)")


def run(args: argparse.Namespace) -> int:
    """``deltaz evaluate``: evaluate, print the overall table, say where the files are."""
    try:
        result = run_evaluation(
            args.checkpoint, args.data_root, args.split, args.preset, args.out,
            baselines=args.baselines, compare_checkpoint=args.compare_checkpoint, device=args.device,
            num_src_views=args.num_src_views, batch_size=args.batch_size,
            tune_max_views=args.tune_max_views or None, figures=not args.no_figures,
            pointclouds=not args.no_pointclouds, progress=not args.no_progress,
            fusion_conf_thresh=args.fusion_conf_thresh, adapt_minutes=args.adapt_minutes, search=not args.no_search,
            dead_zone=args.dead_zone, colour_scale=args.colour_scale, mirror_agreement=args.mirror_agreement,
            weighted_median=args.weighted_median, smooth=args.smooth,
        )
    except DeltaZError as error:
        print(f"deltaz evaluate: error: {error}", file=sys.stderr)
        return 1
    print(summary_table(result["rows"]))
    print(f"\nwrote {Path(args.out) / 'metrics.md'} and metrics.json ({result['elapsed_s']:.1f} s)")
    return 0
