"""Depth-map files of other tools, read and written as stored: PFM, ``.npy``, 8/16-bit PNG, float TIFF, COLMAP.

The one place ``deltaz refine`` reads and writes a user's depth maps. PFM goes through
:mod:`deltaz.io.dtu.formats` (the project's only PFM reader/writer); the other formats are here. Every reader
returns the **stored values** ``(H, W)`` as float32, holes as they came (``0`` or NaN/inf), or raises
:class:`~deltaz.core.errors.FormatError` naming the file and what was expected; units are the caller's business
(:func:`deltaz.apps.refine_file.to_mm`). Every writer is atomic (a temporary file in the same folder, then a rename).

COLMAP's dense maps (``<image>.geometric.bin`` / ``<image>.photometric.bin``): an ASCII header
``"width&height&channels&"`` followed by little-endian float32 values in column-major order of a
``(width, height, channels)`` array, i.e. channel by channel, each channel row by row; 0 = no depth.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from deltaz.core.atomic import atomic_path, atomic_write_bytes
from deltaz.core.errors import ConfigError, DataError, FormatError
from deltaz.io.dtu.formats import read_bytes, read_pfm, write_pfm

__all__ = ["FORMATS", "DEPTH_SUFFIXES", "DepthFile", "format_of", "depth_stem", "read_depth_file", "write_depth_file"]

#: File formats: name → what it is.
FORMATS = {
    "pfm": "PFM float32 (Pf)",
    "npy": "NumPy .npy (H, W) array",
    "png": "8/16-bit grey PNG (integers; 0 = hole)",
    "tiff": "32-bit float TIFF",
    "colmap": "COLMAP dense map (.geometric.bin / .photometric.bin)",
}
#: Name endings of depth files, longest first (a COLMAP map is ``<image name>.geometric.bin``).
DEPTH_SUFFIXES = {
    ".geometric.bin": "colmap", ".photometric.bin": "colmap", ".bin": "colmap", ".pfm": "pfm", ".npy": "npy",
    ".png": "png", ".tiff": "tiff", ".tif": "tiff",
}
_COLMAP_HEADER_MAX = 64  # bytes in which the three '&' must appear


@dataclass
class DepthFile:
    """A depth map as stored: ``values (H, W)`` float32 (holes as they came), its ``format`` and, for PNG, ``bits``."""

    values: np.ndarray
    format: str
    bits: int | None = None


def format_of(path: str | os.PathLike) -> str:
    """The format named by ``path``'s ending (see :data:`DEPTH_SUFFIXES`); :class:`FormatError` otherwise."""
    name = Path(path).name.lower()
    for suffix, fmt in DEPTH_SUFFIXES.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return fmt
    raise FormatError(path, f"unknown depth format: expected a name ending in {', '.join(DEPTH_SUFFIXES)}")


def depth_stem(path: str | os.PathLike) -> str | None:
    """The name without its depth ending (``a.png`` → ``a``, ``a.jpg.geometric.bin`` → ``a.jpg``); None if none."""
    name = Path(path).name
    for suffix in DEPTH_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def _as_2d(path, array: np.ndarray, what: str) -> np.ndarray:
    """``(H, W)``, ``(H, W, 1)`` or ``(1, H, W)`` → ``(H, W)`` float32; anything else refused."""
    if array.ndim == 3 and 1 in (array.shape[0], array.shape[2]):
        array = array.reshape(array.shape[1:] if array.shape[0] == 1 else array.shape[:2])
    if array.ndim != 2 or min(array.shape) < 1:
        raise FormatError(path, f"expected a one-channel (H, W) {what} depth map, got shape {array.shape}")
    if array.dtype.kind not in "fiub":
        raise FormatError(path, f"expected a numeric {what} depth map, got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _read_npy(path) -> DepthFile:
    try:
        array = np.load(io.BytesIO(read_bytes(path)), allow_pickle=False)
    except FormatError:
        raise
    except Exception as error:  # ValueError (pickled object arrays, bad header), EOFError (truncated)
        detail = f"{type(error).__name__}: {error}"
        raise FormatError(path, f"expected a .npy array, got an unreadable file ({detail})") from None
    if not isinstance(array, np.ndarray):
        raise FormatError(path, "expected a .npy array, got an .npz archive")
    return DepthFile(_as_2d(path, array, ".npy"), "npy")


def _read_png(path) -> DepthFile:
    data = read_bytes(path)
    try:
        array = np.asarray(iio.imread(data, extension=".png", plugin="pillow"))
    except Exception as error:  # Pillow raises many types for a bad or truncated file
        raise FormatError(path, f"expected a PNG image, got an unreadable or truncated file ({error})") from None
    if array.ndim == 3:
        raise FormatError(path, f"expected a one-channel (grey) PNG depth map, got {array.shape[2]} channels")
    if array.dtype not in (np.uint8, np.uint16, np.int32):
        raise FormatError(path, f"expected an 8- or 16-bit grey PNG depth map, got dtype {array.dtype}")
    bits = 8 if array.dtype == np.uint8 else 16
    return DepthFile(_as_2d(path, array, "PNG"), "png", bits)


def _read_tiff(path) -> DepthFile:
    import tifffile  # only TIFF depth maps need it (it comes with scikit-image)

    data = read_bytes(path)
    try:
        array = tifffile.imread(io.BytesIO(data))
    except Exception as error:  # tifffile raises many types for a bad or truncated file
        raise FormatError(path, f"expected a TIFF image, got an unreadable or truncated file ({error})") from None
    return DepthFile(_as_2d(path, np.asarray(array), "TIFF"), "tiff")


def _read_colmap(path) -> DepthFile:
    data = read_bytes(path)
    head = data[:_COLMAP_HEADER_MAX]
    fields = head.split(b"&")
    if len(fields) < 4:
        raise FormatError(path, "expected a COLMAP header 'width&height&channels&', got none")
    try:
        width, height, channels = (int(f.decode("ascii")) for f in fields[:3])
    except (UnicodeDecodeError, ValueError):
        raise FormatError(path, f"expected a COLMAP header 'width&height&channels&', got {head[:32]!r}") from None
    if width < 1 or height < 1 or channels < 1:
        raise FormatError(path, f"header: expected positive width, height, channels, got {width}&{height}&{channels}")
    if channels != 1:
        raise FormatError(path, f"expected a one-channel COLMAP depth map, got {channels} channels (a normal map?)")
    start = sum(len(f) + 1 for f in fields[:3])
    expected, got = width * height * channels * 4, len(data) - start
    if got != expected:
        what = "truncated" if got < expected else "trailing bytes"
        raise FormatError(path, f"data: expected {expected} bytes for {width}x{height}x{channels} float32, "
                                f"got {got} ({what})")
    values = np.frombuffer(data, dtype="<f4", offset=start).reshape(channels, height, width)[0]
    return DepthFile(values.astype(np.float32), "colmap")


def _read_pfm(path) -> DepthFile:
    array = read_pfm(path, allow_nonfinite=True)  # a user's file may mark holes with inf/NaN
    if array.ndim != 2:
        raise FormatError(path, "expected a one-channel (Pf) PFM depth map, got a three-channel (PF) one")
    return DepthFile(array, "pfm")


_READERS = {"pfm": _read_pfm, "npy": _read_npy, "png": _read_png, "tiff": _read_tiff, "colmap": _read_colmap}


def read_depth_file(path: str | os.PathLike) -> DepthFile:
    """Read a depth map in the format its name gives (:func:`format_of`); values as stored, float32 ``(H, W)``."""
    return _READERS[format_of(path)](path)


def _encode_png(values: np.ndarray, bits: int) -> bytes:
    dtype = np.uint16 if bits == 16 else np.uint8
    return iio.imwrite("<bytes>", values.astype(dtype), extension=".png", plugin="pillow")


def _encode_tiff(values: np.ndarray) -> bytes:
    import tifffile  # only TIFF depth maps need it (it comes with scikit-image)

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, values.astype(np.float32))
    return buffer.getvalue()


def write_depth_file(path: str | os.PathLike, values: np.ndarray, fmt: str, bits: int = 16) -> None:
    """Write stored values ``(H, W)`` atomically as ``fmt``. PNG values must already be integers in range."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise DataError(f"write_depth_file: expected an (H, W) array, got shape {values.shape}")
    if fmt == "pfm":
        write_pfm(path, values.astype(np.float32))
    elif fmt == "npy":
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, values.astype(np.float32), allow_pickle=False)
    elif fmt == "png":
        atomic_write_bytes(path, _encode_png(values, bits))
    elif fmt == "tiff":
        atomic_write_bytes(path, _encode_tiff(values))
    elif fmt == "colmap":
        height, width = values.shape
        header = f"{width}&{height}&1&".encode("ascii")
        atomic_write_bytes(path, header + np.ascontiguousarray(values, dtype="<f4").tobytes())
    else:
        raise ConfigError(f"write_depth_file: format must be one of {sorted(FORMATS)}, got {fmt!r}")
