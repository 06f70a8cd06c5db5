"""PLY point clouds, read and written with :mod:`plyfile`.

Points are ``(N, 3)`` world millimetres, colours ``(N, 3)`` uint8 ``red green blue``. Files are
written as float32 ``x y z`` (+ uchar colours), binary little-endian by default or ASCII, atomically
(a temporary file in the same folder, then a rename). Reading accepts any PLY whose ``vertex`` element
has scalar ``x y z`` properties (ASCII or binary, either byte order); every problem is one
:class:`~deltaz.core.errors.FormatError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plyfile

from deltaz.core.atomic import atomic_path
from deltaz.core.errors import DataError, FormatError

__all__ = ["colors_uint8", "write_ply", "read_ply"]


def colors_uint8(colors: np.ndarray) -> np.ndarray:
    """uint8 colours: uint8 as is, floats in [0, 1] scaled by 255, other integers clipped to 0..255."""
    if colors.dtype == np.uint8:
        return colors
    if np.issubdtype(colors.dtype, np.floating):
        return np.clip(np.round(colors * 255.0), 0, 255).astype(np.uint8)
    return np.clip(colors, 0, 255).astype(np.uint8)


def _numpy(name: str, array) -> np.ndarray:
    """A NumPy ``(N, 3)`` array from an array-like or a torch tensor (duck-typed: no torch import)."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[1] != 3:
        raise DataError(f"{name} must be an (N, 3) array, got shape {array.shape}")
    return array


def write_ply(path, points, colors=None, binary: bool = True) -> Path:
    """Write ``points (N, 3)`` (mm) and optional ``colors (N, 3)`` (uint8, or float in [0, 1]) as PLY.

    Binary little-endian by default (``binary=False``: ASCII); vertices are float32 ``x y z`` and
    uchar ``red green blue``. Written to a temporary file in the same folder, then renamed. Returns
    ``path``. Raises DataError for misshapen or non-finite points, or colours unlike the points.
    """
    path = Path(path)
    points = _numpy("points", points)
    if not np.isfinite(points).all():
        raise DataError("points holds NaN or inf coordinates")
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if colors is not None:
        colors = _numpy("colors", colors)
        if colors.shape != points.shape:
            raise DataError(f"colors must be (N={len(points)}, 3) like points, got {colors.shape}")
        colors = colors_uint8(colors)
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertices = np.empty(len(points), dtype=fields)
    for i, axis in enumerate("xyz"):
        vertices[axis] = points[:, i]
    for i, channel in enumerate(("red", "green", "blue") if colors is not None else ()):
        vertices[channel] = colors[:, i]
    data = plyfile.PlyData([plyfile.PlyElement.describe(vertices, "vertex")], text=not binary, byte_order="<")
    with atomic_path(path) as tmp:
        data.write(str(tmp))
    return path


def read_ply(path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read the vertices of a PLY file: ``points (N, 3)`` float64 and ``colors (N, 3)`` uint8 or None.

    Raises :class:`~deltaz.core.errors.FormatError` for a file that is not PLY, is cut short, or has
    no ``vertex`` element with ``x y z``.
    """
    path = Path(path)
    with open(path, "rb") as f:
        if f.readline().strip() != b"ply":
            raise FormatError(path, "not a PLY file (first line is not 'ply')")
    try:
        data = plyfile.PlyData.read(str(path))
    except plyfile.PlyParseError as error:
        if "end-of-file" in str(error):
            raise FormatError(path, f"file ends before its vertices are complete ({error})") from None
        raise FormatError(path, f"unreadable PLY: {error}") from None
    names = [element.name for element in data.elements]
    if "vertex" not in names:
        raise FormatError(path, "no vertex element with x, y, z properties")
    table = data["vertex"].data
    fields = set(table.dtype.names or ())
    if not {"x", "y", "z"} <= fields:
        raise FormatError(path, "no vertex element with x, y, z properties")
    points = np.stack([np.asarray(table[a], dtype=np.float64) for a in "xyz"], axis=1)
    colors = None
    if {"red", "green", "blue"} <= fields:
        colors = np.stack([np.asarray(table[c]) for c in ("red", "green", "blue")], axis=1).astype(np.uint8)
    return points, colors
