"""Parsers of command-line option values shared by every ``deltaz`` subcommand."""

from __future__ import annotations

import argparse
import re

__all__ = ["parse_hw", "parse_dead_zone"]


def parse_hw(text: str, minimum: int = 1) -> tuple[int, int]:
    """``"HxW"`` (also ``"HXW"`` or ``"H,W"``) -> ``(H, W)`` in pixels, both at least ``minimum``.

    Raises :class:`argparse.ArgumentTypeError` (argparse prints it as one usage line) otherwise.
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", str(text))
    if not match or min(int(match.group(1)), int(match.group(2))) < minimum:
        raise argparse.ArgumentTypeError(f"expected HxW such as 128x160 (each >= {minimum}), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parse_dead_zone(text: str) -> tuple[float, float] | None:
    """``"F,N"`` (two fractions of the depth in [0, 1): farther, nearer) -> ``(F, N)``; ``"off"`` or ``"0"`` ->
    None (:mod:`deltaz.ops.dead_zone`). Raises :class:`argparse.ArgumentTypeError` otherwise."""
    if str(text).strip().lower() in ("off", "0", "none"):
        return None
    match = re.fullmatch(r"\s*([0-9.eE+-]+)\s*,\s*([0-9.eE+-]+)\s*", str(text))
    try:
        pair = (float(match.group(1)), float(match.group(2))) if match else None
    except ValueError:
        pair = None
    if pair is None or not all(0 <= v < 1 for v in pair):
        raise argparse.ArgumentTypeError(f"expected F,N (fractions of the depth in [0, 1), e.g. 0.002,0.01) "
                                         f"or off, got {text!r}")
    return pair
