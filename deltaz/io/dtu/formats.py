"""DTU / MVSNet file formats: PFM depth maps, cam files, ``pair.txt`` and raw projection matrices.

The one place DeltaZ reads and writes these formats (DESIGN.md §2). Every reader either returns a
well-formed array or raises :class:`deltaz.core.errors.FormatError` naming the file, the line or field
and what was expected — never a bare ``IndexError`` and never a silently wrong array. Every writer
writes atomically (a temporary file in the same folder, then ``os.replace``).

Conventions: lengths in millimetres; extrinsics are **world-to-camera** (``X_cam = R·X_world + t``);
intrinsics are ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from deltaz.core.atomic import atomic_write_bytes, atomic_write_text  # noqa: F401  (re-exported)
from deltaz.core.errors import DataError, FormatError
from deltaz.io.dtu.projection import decompose_projection, read_projection  # noqa: F401  (re-exported)
from deltaz.io.dtu.text import PathLike, _floats, _int, _read_lines, read_bytes  # noqa: F401  (read_bytes re-exported)

#: The manifest ``deltaz synth`` writes at the top of a generated ``dtu_training`` folder.
SYNTH_MANIFEST = "synth.json"
#: The ``generator`` that manifest names: it marks the folder's scans as synthetic.
SYNTH_GENERATOR = "deltaz.synthetic"

__all__ = [
    "CamFile",
    "atomic_write_bytes",
    "atomic_write_text",
    "read_bytes",
    "read_pfm",
    "read_png",
    "write_pfm",
    "read_cam_file",
    "write_cam_file",
    "read_pair_file",
    "write_pair_file",
    "read_projection",
    "decompose_projection",
    "dataset_source",
    "SYNTH_MANIFEST",
    "SYNTH_GENERATOR",
]

# --------------------------------------------------------------------------------------------------
# PFM


def _pfm_header_line(data: bytes, pos: int, lineno: int, path: PathLike) -> tuple[str, int]:
    end = data.find(b"\n", pos)
    if end < 0 or end - pos > 64:
        raise FormatError(path, f"line {lineno}: expected a PFM header line ending in a newline, got none")
    try:
        text = data[pos:end].decode("ascii").strip()
    except UnicodeDecodeError:
        raise FormatError(path, f"line {lineno}: expected an ASCII PFM header line, got binary data") from None
    return text, end + 1


def read_pfm(path: PathLike, allow_nonfinite: bool = False) -> np.ndarray:
    """Read a PFM image, the right way up.

    Args:
        path: a ``.pfm`` file. Header ``Pf`` (one channel) or ``PF`` (three), then ``W H``, then a
            scale whose sign gives the byte order (negative = little-endian). Rows are stored bottom
            to top; this function flips them, so row 0 of the result is the **top** of the image.
        allow_nonfinite: DeltaZ data never holds NaN/inf (DESIGN.md §1), so by default they raise.
    Returns:
        ``float32`` array ``(H, W)`` for ``Pf`` or ``(H, W, 3)`` for ``PF``, C-contiguous.
    Raises:
        FormatError: wrong magic, bad size or scale line, truncated or oversized data, NaN/inf.
    """
    data = read_bytes(path)
    magic, pos = _pfm_header_line(data, 0, 1, path)
    if magic not in ("Pf", "PF"):
        raise FormatError(path, f"line 1: expected PFM magic 'Pf' or 'PF', got {magic[:16]!r}")
    channels = 1 if magic == "Pf" else 3
    dims, pos = _pfm_header_line(data, pos, 2, path)
    parts = dims.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise FormatError(path, f"line 2 / size: expected two positive integers 'W H', got {dims!r}")
    width, height = int(parts[0]), int(parts[1])
    if width <= 0 or height <= 0:
        raise FormatError(path, f"line 2 / size: expected positive W and H, got {width} x {height}")
    scale_text, pos = _pfm_header_line(data, pos, 3, path)
    try:
        scale = float(scale_text)
    except ValueError:
        raise FormatError(path, f"line 3 / scale: expected a non-zero number, got {scale_text!r}") from None
    if scale == 0 or not math.isfinite(scale):
        raise FormatError(path, f"line 3 / scale: expected a finite non-zero number, got {scale_text!r}")
    dtype = np.dtype("<f4") if scale < 0 else np.dtype(">f4")
    expected = width * height * channels * 4
    got = len(data) - pos
    if got != expected:
        what = "truncated" if got < expected else "trailing bytes"
        raise FormatError(
            path,
            f"data: expected {expected} bytes for {width}x{height}x{channels} float32, got {got} ({what})",
        )
    array = np.frombuffer(data, dtype=dtype, count=width * height * channels, offset=pos)
    shape = (height, width) if channels == 1 else (height, width, 3)
    array = np.ascontiguousarray(array.reshape(shape)[::-1]).astype(np.float32, copy=False)
    if not allow_nonfinite and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise FormatError(path, f"data: expected finite values, got {bad} NaN/inf values")
    return array


def write_pfm(path: PathLike, array: np.ndarray, little_endian: bool = True) -> None:
    """Write ``array`` ((H, W) or (H, W, 3)) as PFM, rows bottom to top, atomically.

    The scale written is ``-1`` for little-endian data and ``1`` for big-endian data.
    """
    array = np.asarray(array)
    if array.ndim == 2:
        magic = b"Pf"
    elif array.ndim == 3 and array.shape[2] == 3:
        magic = b"PF"
    else:
        raise DataError(f"write_pfm: expected an (H, W) or (H, W, 3) array, got shape {array.shape}")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise DataError(f"write_pfm: expected a non-empty array, got shape {array.shape}")
    dtype = "<f4" if little_endian else ">f4"
    body = np.ascontiguousarray(array[::-1], dtype=dtype).tobytes()
    header = magic + b"\n" + f"{width} {height}\n".encode() + (b"-1.0\n" if little_endian else b"1.0\n")
    atomic_write_bytes(path, header + body)


def _fmt(value: float) -> str:
    """Shortest text that reads back to the same float64 (``0`` for zero)."""
    value = float(value)
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


# --------------------------------------------------------------------------------------------------
# cam files


@dataclass
class CamFile:
    """One MVSNet-style cam file.

    Attributes:
        extrinsics: ``(4, 4)`` float64 world-to-camera ``[[R, t], [0, 0, 0, 1]]``, t in mm.
        intrinsics: ``(3, 3)`` float64 ``K`` for the resolution the file belongs to.
        depth_min: smallest depth hypothesis, mm (DTU: 425).
        depth_interval: spacing of depth hypotheses, mm (DTU: 2.5).
        depth_num: number of hypotheses when the file gives it, else None.
        depth_max: largest depth, mm, when the file gives it, else None.
    """

    extrinsics: np.ndarray
    intrinsics: np.ndarray
    depth_min: float
    depth_interval: float
    depth_num: int | None = None
    depth_max: float | None = None


def read_cam_file(path: PathLike) -> CamFile:
    """Read a DTU/MVSNet cam file (``extrinsic`` 4×4, ``intrinsic`` 3×3, ``DEPTH_MIN DEPTH_INTERVAL
    [DEPTH_NUM [DEPTH_MAX]]``), tolerating CRLF line endings and extra blank lines.

    Checks that the extrinsics end in ``0 0 0 1`` with an orthonormal rotation, that the intrinsics
    end in ``0 0 1`` with positive focal lengths, and that the depth line is finite and positive.
    """
    lines = _read_lines(path)
    expected_rows = 1 + 4 + 1 + 3 + 1
    if len(lines) < expected_rows:
        raise FormatError(
            path,
            f"expected {expected_rows} non-empty lines (extrinsic, 4 rows, intrinsic, 3 rows, depth), got {len(lines)}",
        )
    if len(lines) > expected_rows:
        lineno, line = lines[expected_rows]
        raise FormatError(path, f"line {lineno}: expected end of file after the depth line, got {line[:80]!r}")
    extrinsics = _cam_matrix(path, lines[0:5], "extrinsic", 4)
    intrinsics = _cam_matrix(path, lines[5:9], "intrinsic", 3)
    _check_extrinsics(path, extrinsics, lines[1][0], lines[4][0])
    _check_intrinsics(path, intrinsics, lines[6][0])
    return CamFile(extrinsics, intrinsics, *_cam_depth_line(path, *lines[9]))


def _cam_matrix(path: PathLike, lines: list[tuple[int, str]], name: str, n: int) -> np.ndarray:
    """The ``name`` block of a cam file: its title line, then ``len(lines) - 1`` rows of ``n`` floats."""
    lineno, line = lines[0]
    if line.lower() != name:
        raise FormatError(path, f"line {lineno}: expected {name!r}, got {line[:80]!r}")
    rows = [_floats(path, k, f"{name} row {i + 1}", text, n) for i, (k, text) in enumerate(lines[1:])]
    return np.array(rows, dtype=np.float64)


def _check_extrinsics(path: PathLike, extrinsics: np.ndarray, first_line: int, last_line: int) -> None:
    if not np.allclose(extrinsics[3], [0, 0, 0, 1], atol=1e-6):
        raise FormatError(
            path, f"line {last_line} / extrinsic row 4: expected '0 0 0 1', got {extrinsics[3].tolist()}"
        )
    R = extrinsics[:3, :3]
    ortho = np.abs(R @ R.T - np.eye(3)).max()
    if ortho > 1e-3 or np.linalg.det(R) < 0:
        raise FormatError(
            path,
            f"line {first_line} / extrinsic rotation: expected an orthonormal R with det +1, "
            f"got |R·Rᵀ − I| = {ortho:.2g}, det = {np.linalg.det(R):.4g}",
        )


def _check_intrinsics(path: PathLike, intrinsics: np.ndarray, first_line: int) -> None:
    if not np.allclose(intrinsics[2], [0, 0, 1], atol=1e-6) or abs(intrinsics[1, 0]) > 1e-6:
        raise FormatError(
            path,
            f"line {first_line} / intrinsic: expected '[[fx, s, cx], [0, fy, cy], [0, 0, 1]]'"
            f", got {intrinsics.tolist()}",
        )
    if intrinsics[0, 0] <= 0 or intrinsics[1, 1] <= 0:
        raise FormatError(
            path,
            f"line {first_line} / intrinsic fx, fy: expected positive focal lengths"
            f", got {intrinsics[0, 0]}, {intrinsics[1, 1]}",
        )


def _cam_depth_line(path: PathLike, lineno: int, line: str) -> tuple[float, float, int | None, float | None]:
    """``(depth_min, depth_interval, depth_num, depth_max)`` of a cam file's depth line, checked."""
    depth = _floats(path, lineno, "depth", line, (2, 3, 4))
    depth_min, depth_interval = depth[0], depth[1]
    if depth_min <= 0:
        raise FormatError(path, f"line {lineno} / DEPTH_MIN: expected a positive depth in mm, got {depth_min}")
    if depth_interval <= 0:
        raise FormatError(
            path, f"line {lineno} / DEPTH_INTERVAL: expected a positive interval in mm, got {depth_interval}"
        )
    depth_num = None
    depth_max = None
    if len(depth) >= 3:
        if not float(depth[2]).is_integer() or depth[2] < 1:
            raise FormatError(
                path, f"line {lineno} / DEPTH_NUM: expected a positive integer, got {line.split()[2]!r}"
            )
        depth_num = int(depth[2])
    if len(depth) == 4:
        depth_max = depth[3]
        if depth_max <= depth_min:
            raise FormatError(
                path, f"line {lineno} / DEPTH_MAX: expected a depth above DEPTH_MIN {depth_min}, got {depth_max}"
            )
    return float(depth_min), float(depth_interval), depth_num, depth_max


def write_cam_file(
    path: PathLike,
    intrinsics: np.ndarray,
    extrinsics: np.ndarray,
    depth_min: float,
    depth_interval: float,
    depth_num: int | None = None,
    depth_max: float | None = None,
) -> None:
    """Write a DTU/MVSNet cam file atomically (DESIGN.md §2).

    Args:
        intrinsics: ``(3, 3)`` K.
        extrinsics: world-to-camera, ``(3, 4)`` or ``(4, 4)``; written as 4×4 with ``0 0 0 1``.
        depth_min, depth_interval: mm; ``depth_num`` and ``depth_max`` are written when given
            (``depth_max`` requires ``depth_num``).
    """
    K = np.asarray(intrinsics, dtype=np.float64)
    E = np.asarray(extrinsics, dtype=np.float64)
    if K.shape != (3, 3):
        raise DataError(f"write_cam_file: intrinsics must be (3, 3), got {K.shape}")
    if E.shape not in ((3, 4), (4, 4)):
        raise DataError(f"write_cam_file: extrinsics must be (3, 4) or (4, 4), got {E.shape}")
    if depth_max is not None and depth_num is None:
        raise DataError("write_cam_file: depth_max needs depth_num (the cam file format is positional)")
    E4 = np.eye(4)
    E4[:3, :4] = E[:3, :4]
    if not (np.isfinite(K).all() and np.isfinite(E4).all()):
        raise DataError("write_cam_file: intrinsics and extrinsics must be finite")
    lines = ["extrinsic"]
    lines += [" ".join(_fmt(v) for v in row) for row in E4]
    lines += ["", "intrinsic"]
    lines += [" ".join(_fmt(v) for v in row) for row in K]
    depth = [_fmt(depth_min), _fmt(depth_interval)]
    if depth_num is not None:
        depth.append(str(int(depth_num)))
    if depth_max is not None:
        depth.append(_fmt(depth_max))
    lines += ["", " ".join(depth), ""]
    atomic_write_text(path, "\n".join(lines))


# --------------------------------------------------------------------------------------------------
# pair.txt

Pairs = dict[int, list[tuple[int, float]]]


def read_pair_file(path: PathLike) -> Pairs:
    """Read a ``pair.txt``: the number of views, then per view a line with its id and a line
    ``k src₁ score₁ … src_k score_k``.

    Returns:
        ``{ref view id: [(src view id, score), …]}`` in file order (best source first, as stored).
    Raises:
        FormatError: wrong counts, non-integer ids, a reference listed twice, a source listed twice
        in one row or equal to its reference, non-finite scores, trailing content.
    """
    lines = _read_lines(path)
    if not lines:
        raise FormatError(path, "line 1: expected the number of views, got an empty file")
    lineno, line = lines[0]
    tokens = line.split()
    if len(tokens) != 1:
        raise FormatError(path, f"line {lineno} / view count: expected one integer, got {line[:80]!r}")
    n_views = _int(path, lineno, "view count", tokens[0])
    if n_views < 0:
        raise FormatError(path, f"line {lineno} / view count: expected a non-negative integer, got {n_views}")
    if len(lines) != 1 + 2 * n_views:
        raise FormatError(
            path,
            f"expected {1 + 2 * n_views} non-empty lines for {n_views} views (count + 2 per view), got {len(lines)}",
        )
    pairs: Pairs = {}
    for i in range(n_views):
        ref_lineno, ref_line = lines[1 + 2 * i]
        ref_tokens = ref_line.split()
        if len(ref_tokens) != 1:
            raise FormatError(
                path, f"line {ref_lineno} / reference view id: expected one integer, got {ref_line[:80]!r}"
            )
        ref = _int(path, ref_lineno, "reference view id", ref_tokens[0])
        if ref in pairs:
            raise FormatError(path, f"line {ref_lineno} / reference view id: expected each view once, got {ref} again")
        src_lineno, src_line = lines[2 + 2 * i]
        src_tokens = src_line.split()
        count = _int(path, src_lineno, "source count", src_tokens[0])
        if count < 0 or len(src_tokens) != 1 + 2 * count:
            raise FormatError(
                path,
                f"line {src_lineno} / sources of view {ref}: expected {count} (id, score) pairs "
                f"= {1 + 2 * count} tokens, got {len(src_tokens)}",
            )
        sources: list[tuple[int, float]] = []
        seen: set[int] = set()
        for j in range(count):
            src = _int(path, src_lineno, f"source {j + 1} id", src_tokens[1 + 2 * j])
            if src == ref or src in seen:
                what = "its own reference" if src == ref else "a repeated source"
                raise FormatError(
                    path, f"line {src_lineno} / source {j + 1} id: expected a new view id, got {src} ({what})"
                )
            seen.add(src)
            score = _floats(path, src_lineno, f"source {j + 1} score", src_tokens[2 + 2 * j], 1)[0]
            sources.append((src, score))
        pairs[ref] = sources
    return pairs


def write_pair_file(path: PathLike, pairs: Pairs) -> None:
    """Write ``{ref: [(src, score), …]}`` as a ``pair.txt`` (in dict order), atomically."""
    lines = [str(len(pairs))]
    for ref, sources in pairs.items():
        lines.append(str(int(ref)))
        row = [str(len(sources))]
        for src, score in sources:
            if not math.isfinite(float(score)):
                raise DataError(f"write_pair_file: score of source {src} of view {ref} is not finite: {score}")
            row += [str(int(src)), _fmt(score)]
        lines.append(" ".join(row))
    lines.append("")
    atomic_write_text(path, "\n".join(lines))


# --------------------------------------------------------------------------------------------------
# PNG images


def read_png(path: PathLike) -> np.ndarray:
    """An RGB image ``(H, W, 3)`` as stored (uint8 or uint16): grey is repeated to 3 channels, alpha dropped.

    Raises :class:`FormatError` naming the file when it is unreadable or not an image.
    """
    try:
        image = np.asarray(iio.imread(path, plugin="pillow"))
    except Exception as error:  # imageio raises many types for a bad file
        raise FormatError(path, f"expected a PNG image, got an unreadable file: {error}") from None
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise FormatError(path, f"expected an RGB image, got shape {image.shape}")
    return image[:, :, :3]


# --------------------------------------------------------------------------------------------------
# the synthetic generator's marker


def dataset_source(src: PathLike) -> str:
    """``"synthetic"`` when the ``dtu_training``-like folder ``src`` was made by ``deltaz synth`` (its
    :data:`SYNTH_MANIFEST` names :data:`SYNTH_GENERATOR`), else ``"dtu"`` (real DTU)."""
    try:
        manifest = json.loads((Path(src) / SYNTH_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "dtu"
    return "synthetic" if isinstance(manifest, dict) and manifest.get("generator") == SYNTH_GENERATOR else "dtu"
