"""The ``deltaz`` command line: one subcommand per job, each defined in its own module.

Every subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``; this file only
wires them together, importing a module when its subcommand is used (so ``deltaz --help`` is fast).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help). Keep in the order a newcomer meets them.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("deltaz.apps.synth_cli", "render a synthetic DTU-like dataset (MVSNet dtu_training layout)"),
    "parse": ("deltaz.io.dtu.parse", "convert DTU (dtu_training or raw calibration) to the train-ready layout"),
    "train": ("deltaz.engine.train", "train DeltaZUnet (or the MVSNet-style refiner) on train-ready scans"),
    "evaluate": ("deltaz.engine.evaluate", "score a checkpoint against the initial depth and classical baselines"),
    "refine": ("deltaz.apps.refine_cli", "refine your own depth maps (a file or a folder) with a trained checkpoint"),
    "adapt": ("deltaz.apps.adapt_cli", "fit a trained refiner to your scene without ground truth (test-time self-supervision)"),
    "import-colmap": ("deltaz.io.colmap", "turn a COLMAP text model + depth maps into a train-ready scan"),
    "import-middlebury": ("deltaz.io.middlebury_scan", "write Middlebury Motorcycle as a 2-view train-ready scan (SGBM input)"),
    "demo": ("deltaz.apps.demo", "the whole pipeline on synthetic data: synth, parse, train, evaluate, report"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deltaz",
        description="DeltaZ: learn a depth correction delta_z so that depth_refined = depth_init + delta_z.",
    )
    from deltaz import __version__

    parser.add_argument("--version", action="version", version=f"deltaz {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        # Arguments are added lazily in main() for the chosen command only.
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in SUBCOMMANDS:
        args = parser.parse_args(argv)  # handles --help, --version and unknown commands
        parser.print_help()
        return 2
    name = argv[0]
    module = importlib.import_module(SUBCOMMANDS[name][0])
    sub_parser = argparse.ArgumentParser(prog=f"deltaz {name}", description=SUBCOMMANDS[name][1])
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
