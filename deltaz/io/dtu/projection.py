"""Raw DTU projection matrices ``P = K[R|t]`` (``pos_NNN.txt``, gipuma ``*.P``): read and decompose.

Conventions as in :mod:`deltaz.io.dtu.formats`: world-to-camera extrinsics, lengths in mm, ``K`` with
a positive diagonal and ``K[2, 2] = 1``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from deltaz.core.errors import DataError, FormatError
from deltaz.io.dtu.text import PathLike, _floats, _read_lines

__all__ = ["read_projection", "decompose_projection"]


def read_projection(path: PathLike) -> np.ndarray:
    """Read a raw 3×4 projection matrix ``P = K[R|t]`` (DTU ``pos_NNN.txt``, gipuma ``*.P``).

    Three lines of four numbers (CRLF tolerated). Returns ``(3, 4)`` float64; world mm → pixels.
    """
    lines = _read_lines(path)
    if len(lines) != 3:
        raise FormatError(path, f"expected 3 non-empty lines of 4 numbers, got {len(lines)} lines")
    P = np.array([_floats(path, n, f"row {i + 1}", text, 4) for i, (n, text) in enumerate(lines)], dtype=np.float64)
    if abs(np.linalg.det(P[:, :3])) < 1e-12 * max(np.abs(P[:, :3]).max(), 1e-300) ** 3:
        raise FormatError(path, "expected a projection matrix with an invertible left 3x3 block, got a singular one")
    return P


def decompose_projection(P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``P = λ·K[R|t]`` by RQ decomposition (:func:`scipy.linalg.rq`).

    Args:
        P: ``(3, 4)`` projection (world → pixels), any non-zero scale and sign.
    Returns:
        ``K (3, 3)`` upper triangular with ``fx, fy > 0`` and ``K[2, 2] = 1``; ``R (3, 3)`` with
        ``det R = +1``; ``t (3,)`` so that ``K[R|t]`` equals ``P`` up to scale (world-to-camera, mm).
    """
    P = np.asarray(P, dtype=np.float64)
    if P.shape != (3, 4):
        raise DataError(f"decompose_projection: expected a (3, 4) matrix, got shape {P.shape}")
    if not np.isfinite(P).all():
        raise DataError("decompose_projection: P has non-finite entries")
    det = np.linalg.det(P[:, :3])
    if det == 0 or not np.isfinite(det):
        raise DataError("decompose_projection: the left 3x3 block of P is singular")
    if det < 0:  # P and -P are the same projection; pick the sign that makes det R = +1
        P = -P
    K, R = scipy.linalg.rq(P[:, :3])  # K upper triangular, R orthogonal
    signs = np.diag(np.sign(np.diag(K)))  # make the diagonal of K positive; signs @ signs = I
    K = K @ signs
    R = signs @ R
    scale = K[2, 2]
    K = K / scale
    t = np.linalg.solve(K, P[:, 3]) / scale
    K[1, 0] = K[2, 0] = K[2, 1] = 0.0
    if np.linalg.det(R) < 0:  # cannot happen with det M > 0 and a positive diagonal; guard anyway
        raise DataError("decompose_projection: could not obtain a proper rotation")
    return K, R, t
