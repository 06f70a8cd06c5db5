"""Parsers of command-line option values shared by every ``deltaz`` subcommand."""

from __future__ import annotations

import argparse
import re

__all__ = ["parse_hw"]


def parse_hw(text: str, minimum: int = 1) -> tuple[int, int]:
    """``"HxW"`` (also ``"HXW"`` or ``"H,W"``) -> ``(H, W)`` in pixels, both at least ``minimum``.

    Raises :class:`argparse.ArgumentTypeError` (argparse prints it as one usage line) otherwise.
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", str(text))
    if not match or min(int(match.group(1)), int(match.group(2))) < minimum:
        raise argparse.ArgumentTypeError(f"expected HxW such as 128x160 (each >= {minimum}), got {text!r}")
    return int(match.group(1)), int(match.group(2))
