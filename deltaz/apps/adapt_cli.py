"""``deltaz adapt``: fit a trained refiner to your scene, with no ground truth (test-time self-supervision).

    deltaz adapt --checkpoint runs/demo/checkpoints/best.pt --data-root data/my_ready --minutes 3 --out runs/adapt

reads train-ready scans (``deltaz parse``, ``deltaz import-colmap`` or ``deltaz import-middlebury``), fine-tunes a
copy of the refiner on each scan's images and initial depths (:mod:`deltaz.engine.adapt`, losses of
:mod:`deltaz.ops.selfsup`), and writes the adapted checkpoint, the refined depths and a report (see
:mod:`deltaz.engine.adapt.outputs`). Kill it at any time; the same command resumes. Bad input prints one line.
"""

from __future__ import annotations

import argparse
import sys

import torch

from deltaz.core.errors import DeltaZError
from deltaz.engine.adapt import (ANCHOR_TARGETS, CONFIDENCE_MODES, GATE_TARGETS, LR_SCHEDULES, SOURCE_MODES,
                                 AdaptConfig, adapt)
from deltaz.engine.adapt.recipe import AUTO_BLEND
from deltaz.ops.corrupt import parse_initial_mix
from deltaz.ops.selfsup import SelfSupWeights

__all__ = ["add_arguments", "config_from_args", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``deltaz adapt``."""
    d, w = AdaptConfig(), SelfSupWeights()
    parser.add_argument("--checkpoint", required=True, help="trained refiner: a .pt file or a run folder (best.pt/last.pt)")
    parser.add_argument("--data-root", required=True, help="folder of train-ready scans (scan*/ with images/)")
    parser.add_argument("--scans", nargs="+", default=None, metavar="SCAN", help="scans to adapt to (default: all)")
    parser.add_argument("--minutes", type=float, default=d.minutes,
                        help=f"adaptation time per scan in minutes (default {d.minutes})")
    parser.add_argument("--max-steps", type=int, default=None, help="also stop after this many steps per scan")
    parser.add_argument("--max-passes", type=float, default=d.max_passes, metavar="P",
                        help="also stop after P passes over the scan's views, each view a reference once per pass "
                        f"(default {d.max_passes}; none: 0)")
    parser.add_argument("--out", required=True, help="output folder: checkpoints/, <scan>/refined/, report.md")
    parser.add_argument("--preset", default=d.preset, metavar="MODEL",
                        help="initial depth of scans without initial/: planesweep (deltaz.ops.mvs on the images), mvs, "
                        f"mde, noise, none (simulated) or a mix (default {d.preset})")
    parser.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    parser.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=d.lr_schedule,
                        help=f"constant, or cosine decay to 0 over the minutes/steps/passes budget (default {d.lr_schedule})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="reference views per step")
    parser.add_argument("--num-src-views", type=int, default=d.num_src_views, help="pair.txt sources per reference")
    parser.add_argument("--source-mode", choices=SOURCE_MODES, default=d.source_mode,
                        help="sources' refined depths: cached (refreshed each pass), nograd or grad (recomputed "
                        "every step)")
    parser.add_argument("--confidence", choices=CONFIDENCE_MODES, default=d.confidence,
                        help="anchor weight: the plane sweep's confidence, the inputs' multi-view agreement, or none")
    parser.add_argument("--anchor-to", choices=ANCHOR_TARGETS, default=d.anchor_to,
                        help="what the anchor term pulls towards: the input depth (weighted by --confidence), the "
                        "unadapted refiner's output (weight 1), or auto: per scan, the unadapted output (blend "
                        f"{AUTO_BLEND}, gated against the unadapted depths) where it agrees across views much better "
                        f"than the input, else the input (default {d.anchor_to})")
    parser.add_argument("--blend", type=float, default=d.blend, metavar="A",
                        help="the adapted network's share of the correction: refined = unadapted + A x (adapted - "
                        f"unadapted), both networks in the adapted checkpoint; 1 = the adapted network alone "
                        f"(default {d.blend})")
    parser.add_argument("--gate", action=argparse.BooleanOptionalAction, default=d.gate,
                        help="put the refined depths behind the photometric gate: the refined depth only where the "
                        "source views confirm it or it moved more than --gate-trust-rel of the depth, the input "
                        f"elsewhere (default {'on' if d.gate else 'off'})")
    parser.add_argument("--gate-trust-rel", type=float, default=d.gate_trust_rel, metavar="F",
                        help=f"moves larger than this fraction of the input depth pass the gate unconfirmed "
                        f"(default {d.gate_trust_rel})")
    parser.add_argument("--gate-against", choices=GATE_TARGETS, default=d.gate_against,
                        help="what the gate checks the adapted depths against and hands back where the sources refute "
                        f"them: the input or the unadapted refiner's depths (default {d.gate_against})")
    for term in w.as_dict():
        parser.add_argument(f"--w-{term}", type=float, default=getattr(w, term),
                            help=f"weight of the {term} term (default {getattr(w, term)})")
    parser.add_argument("--no-exposure-norm", action="store_true",
                        help="compare raw colours (default: each image divided by its mean colour first)")
    parser.add_argument("--seed", type=int, default=d.seed, help="seed of the view order")
    parser.add_argument("--save-every", type=float, default=d.save_every_s, metavar="S",
                        help=f"seconds between resumable state saves (default {d.save_every_s})")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's; 1 is fastest on a busy shared CPU)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    """The :class:`deltaz.engine.adapt.AdaptConfig` of the parsed flags."""
    weights = SelfSupWeights(**{t: getattr(args, f"w_{t}") for t in SelfSupWeights().as_dict()})
    return AdaptConfig(minutes=args.minutes, max_steps=args.max_steps, max_passes=args.max_passes or None,
                       lr=args.lr, lr_schedule=args.lr_schedule, batch_size=args.batch_size,
                       num_src_views=args.num_src_views, source_mode=args.source_mode, weights=weights,
                       confidence=args.confidence, anchor_to=args.anchor_to,
                       normalise_exposure=not args.no_exposure_norm, gate=args.gate, blend=args.blend,
                       gate_trust_rel=args.gate_trust_rel, gate_against=args.gate_against,
                       preset=args.preset, seed=args.seed, device=args.device, save_every_s=args.save_every,
                       progress=not args.no_progress)


def run(args: argparse.Namespace) -> int:
    """``deltaz adapt``: adapt, print one line per scan, say where the files are; errors in one line."""
    try:
        if args.threads is not None:
            if args.threads < 1:
                raise DeltaZError(f"--threads {args.threads}: expected an integer >= 1")
            torch.set_num_threads(args.threads)
        parse_initial_mix(args.preset)
        report = adapt(args.checkpoint, args.data_root, args.out, args.scans, config_from_args(args))
    except DeltaZError as error:
        print(f"deltaz adapt: error: {error}", file=sys.stderr)
        return 1
    for entry in report["scans"]:
        line = f"{entry['scan']}: {entry['steps']} steps in {entry['adapt_s']:.0f} s"
        scores = entry.get("scores")
        if scores:
            line += "; covered MAE " + " -> ".join(
                f"{m} {scores[m]['mae_covered_mm']:.3f}" for m in ("input", "deltaz", "deltaz+adapt")) + " mm"
            line += f"; harm_pct {scores['deltaz']['harm_pct']:.2f} -> {scores['deltaz+adapt']['harm_pct']:.2f}"
        print(line)
    print(f"wrote {report['out']}/report.md, checkpoints/<scan>.pt and <scan>/refined/")
    return 0
