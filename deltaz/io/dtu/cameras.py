"""Intrinsics under resizing and cropping, and DTU's raw calibration → MVSNet training cameras.

Conventions (DESIGN.md §1): scaling an image by ``s`` scales ``fx, fy, cx, cy`` (and the skew) by
``s`` — the DTU/MVSNet convention, no half-pixel shift; cropping by ``(ox, oy)`` subtracts them from
``cx, cy``. DTU's training frames come from the raw 1600×1200 rectified images by: halve (800×600)
→ centre-crop ``(80, 44)`` (640×512) → quarter (160×128), so
``fx' = fx/8``, ``cx' = (cx/2 − 80)/4``, ``cy' = (cy/2 − 44)/4``.
"""

from __future__ import annotations

import numpy as np

from deltaz.io.dtu.formats import decompose_projection

__all__ = [
    "RAW_HW",
    "MVSNET_HW",
    "TRAIN_HW",
    "MVSNET_CROP",
    "scale_intrinsics",
    "crop_intrinsics",
    "resize_intrinsics",
    "raw_to_camera",
    "raw_intrinsics_to_frame",
    "raw_to_training_camera",
    "raw_to_mvsnet_camera",
    "extrinsics_4x4",
]

RAW_HW = (1200, 1600)  #: raw DTU rectified images (H, W)
MVSNET_HW = (512, 640)  #: MVSNet's ``Rectified`` images: raw halved and centre-cropped
TRAIN_HW = (128, 160)  #: MVSNet's training depth maps and cam files
MVSNET_CROP = (80, 44)  #: (ox, oy) of the centre crop of the halved 800×600 image to 640×512


def scale_intrinsics(K: np.ndarray, scale_x: float, scale_y: float | None = None) -> np.ndarray:
    """``K`` for an image resized by ``scale_x`` (columns) and ``scale_y`` (rows, default ``scale_x``).

    ``K' = diag(sx, sy, 1)·K``: ``fx, s, cx`` scale by ``sx``, ``fy, cy`` by ``sy`` (no half-pixel
    shift). ``K`` is ``(…, 3, 3)``; returns a new float64 array.
    """
    scale_y = scale_x if scale_y is None else scale_y
    K = np.array(K, dtype=np.float64)
    K[..., 0, :] *= scale_x
    K[..., 1, :] *= scale_y
    return K


def crop_intrinsics(K: np.ndarray, ox: float, oy: float) -> np.ndarray:
    """``K`` for the image cropped so that old pixel ``(ox, oy)`` becomes ``(0, 0)``: ``cx − ox, cy − oy``."""
    K = np.array(K, dtype=np.float64)
    K[..., 0, 2] -= ox
    K[..., 1, 2] -= oy
    return K


def resize_intrinsics(K: np.ndarray, from_hw: tuple[int, int], to_hw: tuple[int, int]) -> np.ndarray:
    """``K`` valid for an ``from_hw`` (H, W) image → ``K`` for that image resized to ``to_hw``."""
    return scale_intrinsics(K, to_hw[1] / from_hw[1], to_hw[0] / from_hw[0])


def extrinsics_4x4(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """World-to-camera ``[[R, t], [0, 0, 0, 1]]`` (4, 4) float64."""
    E = np.eye(4)
    E[:3, :3] = R
    E[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return E


def raw_to_camera(P: np.ndarray, hw: tuple[int, int] = TRAIN_HW) -> tuple[np.ndarray, np.ndarray]:
    """Cameras for MVSNet's frame (halved, centre-cropped to 640×512) resized to ``hw`` (H, W).

    Args:
        P: ``(3, 4)`` raw DTU projection (``pos_NNN.txt``) for the 1600×1200 rectified images.
        hw: the target (H, W) of the 640×512 frame after resizing; (128, 160) for training depths.
    Returns:
        ``K (3, 3)`` for ``hw`` and ``E (4, 4)`` world-to-camera (mm), float64.
    """
    K_raw, R, t = decompose_projection(P)
    return raw_intrinsics_to_frame(K_raw, hw), extrinsics_4x4(R, t)


def raw_intrinsics_to_frame(K_raw: np.ndarray, hw: tuple[int, int] = TRAIN_HW) -> np.ndarray:
    """Raw 1600×1200 intrinsics → MVSNet's frame (halve, crop ``(80, 44)`` to 640×512) resized to ``hw``."""
    K = crop_intrinsics(scale_intrinsics(K_raw, 0.5), *MVSNET_CROP)
    return resize_intrinsics(K, MVSNET_HW, hw)


def raw_to_training_camera(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 160×128 training camera of a raw projection: ``fx/8, (cx/2 − 80)/4, fy/8, (cy/2 − 44)/4``."""
    return raw_to_camera(P, TRAIN_HW)


def raw_to_mvsnet_camera(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 640×512 camera (MVSNet's ``Rectified`` images) of a raw projection: ``fx/2, cx/2 − 80, …``."""
    return raw_to_camera(P, MVSNET_HW)
