"""Reading helpers of the DTU text formats: whole files, numbered lines, checked numbers.

Every problem is one :class:`~deltaz.core.errors.FormatError` naming the file, the line and the field.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from deltaz.core.errors import FormatError

__all__ = ["PathLike", "read_bytes"]

PathLike = str | os.PathLike


def read_bytes(path: PathLike) -> bytes:
    """A file's bytes; a missing file, a folder or an unreadable file is one :class:`FormatError` naming it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except IsADirectoryError:
        raise FormatError(path, "expected a file, got a directory") from None
    except OSError as error:
        raise FormatError(path, f"cannot read: {error.strerror or error}") from None


def _read_lines(path: PathLike) -> list[tuple[int, str]]:
    """Non-empty stripped lines with their 1-based line numbers; CRLF and blank lines tolerated."""
    data = read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormatError(path, "expected a text file, got undecodable bytes") from None
    return [(i + 1, line.strip()) for i, line in enumerate(text.splitlines()) if line.strip()]


def _floats(path: PathLike, lineno: int, field: str, line: str, count: int | tuple[int, ...]) -> list[float]:
    tokens = line.split()
    counts = (count,) if isinstance(count, int) else count
    if len(tokens) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise FormatError(path, f"line {lineno} / {field}: expected {want} numbers, got {len(tokens)}: {line[:80]!r}")
    values = []
    for token in tokens:
        try:
            value = float(token)
        except ValueError:
            raise FormatError(path, f"line {lineno} / {field}: expected a number, got {token!r}") from None
        if not math.isfinite(value):
            raise FormatError(path, f"line {lineno} / {field}: expected a finite number, got {token!r}")
        values.append(value)
    return values


def _int(path: PathLike, lineno: int, field: str, token: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", token):
        raise FormatError(path, f"line {lineno} / {field}: expected an integer, got {token!r}")
    return int(token)
