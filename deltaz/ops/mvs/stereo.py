"""Two-view stereo on a calibrated pair that is not rectified: OpenCV's SGBM as an initial-depth source.

:func:`stereo_depth` rectifies a reference view and one source view (``cv2.stereoRectify``), runs
StereoSGBM with the settings of the Middlebury benchmark's input (:data:`deltaz.io.middlebury.SGBM_PARAMS`:
block 5, P1 200, P2 800, uniqueness 10, speckle window 100 and range 2; only the disparity search range
follows the pair's depth range), and maps the disparity back to a z-depth of the reference view.

Why it exists: the errors of a semi-global matcher — foreground fattening at occlusion edges, streaks,
holes where the match is not unique — are what real depth maps carry, and a refiner learns to fix the
errors it is shown (``--preset sgbm``). A pair whose baseline is vertical in the rectified frame is
transposed, and one whose source lies left of the reference is mirrored, so the reference is always SGBM's
left image.

Conventions: pixel centres at integer coordinates (DESIGN.md), intrinsics ``K`` at the image's size,
extrinsics world-to-camera ``[R | t]`` in mm. The images are upsampled ``upsample``× (bicubic) before
matching and the disparity sampled back at the reference's pixels (nearest), as a matcher at a camera's full
resolution feeds a network at a quarter of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deltaz.core.errors import ConfigError, DataError
from deltaz.io.middlebury import SGBM_PARAMS, grey_u8

__all__ = ["STEREO_DEFAULTS", "stereo_depth"]

#: Options of :func:`stereo_depth` that change its result.
STEREO_DEFAULTS: dict[str, Any] = {"upsample": 2}
#: Share of the rectified width that must stay matchable (right of ``minDisparity + numDisparities``).
MATCHED_SHARE = 0.5


def _cv2() -> Any:
    try:
        import cv2  # lazy: OpenCV only when stereo is run
    except ImportError:
        raise ConfigError("the sgbm initial depth needs OpenCV: pip install opencv-contrib-python-headless") from None
    return cv2


def _grey_u8(image: np.ndarray, upsample: int, cv2: Any) -> np.ndarray:
    """``(3, H, W)`` RGB in [0, 1] → ``(H·u, W·u)`` uint8 luminance (:func:`deltaz.io.middlebury.grey_u8`),
    bicubic upsampled."""
    grey = grey_u8(np.moveaxis(np.asarray(image, dtype=np.float64), 0, -1) * 255.0)
    h, w = grey.shape
    return cv2.resize(grey, (w * upsample, h * upsample), interpolation=cv2.INTER_CUBIC) if upsample > 1 else grey


def _scaled(K: np.ndarray, upsample: int) -> np.ndarray:
    """Intrinsics at ``upsample``× the size; integer pixel centres (centre 0 ↦ (u − 1)/2)."""
    K = np.asarray(K, dtype=np.float64).copy()
    K[:2] *= upsample
    K[:2, 2] += (upsample - 1) / 2
    return K


def _rectify(K1, E1, K2, E2, size, cv2):
    """``(R1, P1, R2, P2)`` of ``cv2.stereoRectify`` for camera 1 → camera 2 (zero disparity at infinity)."""
    R_a, t_a = np.asarray(E1, np.float64)[:, :3], np.asarray(E1, np.float64)[:, 3]
    R_b, t_b = np.asarray(E2, np.float64)[:, :3], np.asarray(E2, np.float64)[:, 3]
    R = R_b @ R_a.T
    T = (t_b - R @ t_a).reshape(3, 1)
    if float(np.linalg.norm(T)) < 1e-9:
        raise DataError("stereo_depth: the two views share a camera centre (baseline 0 mm); expected a stereo pair")
    R1, R2, P1, P2 = cv2.stereoRectify(K1, None, K2, None, size, R, T, flags=cv2.CALIB_ZERO_DISPARITY, alpha=-1)[:4]
    return R1, P1, R2, P2


def _match(left: np.ndarray, right: np.ndarray, low_px: float, high_px: float, cv2: Any,
           clip_range: bool) -> np.ndarray | None:
    """SGBM disparity (px, NaN = none) of ``left`` searched over ``[low_px, high_px]``.

    SGBM leaves the first ``minDisparity + numDisparities`` columns unmatched, so the search must end by half
    the width (:data:`MATCHED_SHARE`) for at least half of the image to get a depth. When the range does not
    fit: None, or with ``clip_range`` the range cut at its large-disparity (near) end."""
    first = int(np.floor(low_px))
    count = int(np.ceil((high_px - first) / 16.0)) * 16
    room = (int(left.shape[1] * (1 - MATCHED_SHARE)) - first) // 16 * 16
    if count > room and not clip_range or room < 16:
        return None
    count = min(count, room)
    params = {**SGBM_PARAMS, "minDisparity": first, "numDisparities": count}
    disparity = cv2.StereoSGBM_create(**params).compute(left, right).astype(np.float32) / 16.0
    disparity[disparity < first] = np.nan
    return disparity


def _oriented(r1: np.ndarray, r2: np.ndarray, P2: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, bool]:
    """The rectified pair turned so that the reference is SGBM's left image: ``(left, right, transposed, mirrored)``."""
    transposed = abs(P2[1, 3]) > abs(P2[0, 3])
    shift = P2[1, 3] if transposed else P2[0, 3]
    if transposed:
        r1, r2 = r1.T, r2.T
    mirrored = shift > 0  # the source lies left of (above) the reference
    if mirrored:
        r1, r2 = r1[:, ::-1], r2[:, ::-1]
    return np.ascontiguousarray(r1), np.ascontiguousarray(r2), transposed, mirrored


def stereo_depth(image_ref, K_ref, E_ref, image_src, K_src, E_src, low_mm: float, high_mm: float,
                 upsample: int = STEREO_DEFAULTS["upsample"], clip_range: bool = False) -> np.ndarray | None:
    """SGBM depth of the reference view from one source view.

    Args:
        image_ref, image_src: ``(3, H, W)`` RGB in [0, 1] (numpy or torch).
        K_ref, K_src: ``(3, 3)`` intrinsics at ``(H, W)``; E_ref, E_src: ``(3, 4)`` world-to-camera, mm.
        low_mm, high_mm: the depth range searched (its disparities, rounded out to OpenCV's multiples of 16).
        upsample: the images are matched at ``upsample``× their size (1–4).
        clip_range: when the pair's disparities do not fit in the rectified image (a near scene, a wide
            baseline), search the part that fits — the far depths — instead of returning None.
    Returns:
        ``(H, W)`` float32 z-depth in mm of the reference, 0 = hole; None when the pair's disparity range
        does not fit in the rectified image and ``clip_range`` is off (try another source).
    """
    if upsample not in (1, 2, 3, 4):
        raise ConfigError(f"upsample: expected 1, 2, 3 or 4, got {upsample!r}")
    if not 0 < low_mm < high_mm:
        raise ConfigError(f"depth range: expected 0 < low < high mm, got [{low_mm}, {high_mm}]")
    cv2 = _cv2()
    image_ref, image_src = np.asarray(image_ref), np.asarray(image_src)
    H, W = image_ref.shape[-2:]
    K1, K2 = _scaled(K_ref, upsample), _scaled(K_src, upsample)
    size = (W * upsample, H * upsample)
    R1, P1, R2, P2 = _rectify(K1, E_ref, K2, E_src, size, cv2)
    rect = [cv2.remap(_grey_u8(img, upsample, cv2), *cv2.initUndistortRectifyMap(K, None, R, P, size, cv2.CV_32FC1),
                      cv2.INTER_LINEAR) for img, K, R, P in ((image_ref, K1, R1, P1), (image_src, K2, R2, P2))]
    left, right, transposed, mirrored = _oriented(*rect, P2)
    focal_baseline = abs(P2[1, 3] if transposed else P2[0, 3])  # f'·B, px·mm
    disparity = _match(left, right, focal_baseline / high_mm, focal_baseline / low_mm, cv2, clip_range)
    if disparity is None:
        return None
    if mirrored:
        disparity = disparity[:, ::-1]
    if transposed:
        disparity = disparity.T
    return _back_to_reference(disparity, K1, R1, P1, focal_baseline, (H, W), upsample)


def _back_to_reference(disparity, K1, R1, P1, focal_baseline, hw, upsample) -> np.ndarray:
    """Sample the rectified disparity at each reference pixel (nearest) and turn it into the reference's z."""
    H, W = hw
    offset = (upsample - 1) / 2
    u, v = np.meshgrid(np.arange(W) * upsample + offset, np.arange(H) * upsample + offset)
    rays = np.linalg.inv(K1) @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])  # z = 1 in the reference
    rotated = R1 @ rays
    pixels = P1[:, :3] @ rotated
    x = np.round(pixels[0] / pixels[2]).astype(np.int64)
    y = np.round(pixels[1] / pixels[2]).astype(np.int64)
    inside = (x >= 0) & (x < disparity.shape[1]) & (y >= 0) & (y < disparity.shape[0]) & (pixels[2] > 0)
    d = np.full(x.shape, np.nan)
    d[inside] = disparity[y[inside], x[inside]]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = focal_baseline / d / rotated[2]  # rectified z along the ray, back to the reference's z
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0)
    return depth.reshape(H, W).astype(np.float32)
