"""The ``deltaz`` command line: one subcommand per job, each defined in its own module.

Every subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``; this file only
wires them together, importing a module when its subcommand is used (so ``deltaz --help`` is fast).

Errors: a bad flag, and any :class:`~deltaz.core.errors.DeltaZError` or ``OSError`` that a subcommand's
``run`` lets through, print ONE line ``deltaz <command>: error: <message>`` on stderr and exit with
status 2, never a traceback (``DELTAZ_DEBUG=1`` re-raises them). Subcommands that report their own
errors keep their status (1).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from deltaz import __version__
from deltaz.core.errors import ConfigError, DeltaZError

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


class _OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors raise :class:`ConfigError` (printed by :func:`main` as
    one line) instead of printing the usage block and exiting."""

    def error(self, message: str):
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="deltaz",
        description="DeltaZ: learn a depth correction delta_z so that depth_refined = depth_init + delta_z.",
    )
    parser.add_argument("--version", action="version", version=f"deltaz {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module_name)
        # Arguments are added lazily in main() for the chosen command only.
    return parser


def _one_line(error: BaseException) -> str:
    """The error's message on one line (``OSError``: ``<file>: <reason>``)."""
    if isinstance(error, OSError) and not isinstance(error, DeltaZError) and error.strerror:
        text = f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Run ``deltaz <command> [flags]``; returns the exit status (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = f"deltaz {argv[0]}" if argv and argv[0] in SUBCOMMANDS else "deltaz"
    try:
        return _main(argv)
    except (DeltaZError, OSError) as error:
        if os.environ.get("DELTAZ_DEBUG") == "1":
            raise
        print(f"{prog}: error: {_one_line(error)}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    parser = build_parser()
    if not argv or argv[0] not in SUBCOMMANDS:
        parser.parse_args(argv)  # handles --help, --version and unknown commands
        parser.print_help()
        return 2
    name = argv[0]
    module = importlib.import_module(SUBCOMMANDS[name][0])
    sub_parser = _OneLineParser(prog=f"deltaz {name}", description=SUBCOMMANDS[name][1])
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
