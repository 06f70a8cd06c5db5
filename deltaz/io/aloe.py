"""A second real rectified pair with ground truth: Middlebury 2006 *Aloe*, as OpenCV ships it in its samples.

OpenCV's ``samples/data`` holds ``aloeL.jpg``/``aloeR.jpg`` (1282×1110, views 1 and 5 of the Middlebury 2006 set)
and ``aloeGT.png`` (8-bit, the left view's ground-truth disparity in full-size pixels, 0 = unknown). Debian and
Ubuntu package them in ``opencv-doc`` (``/usr/share/doc/opencv-doc/examples/data/``); ``make aloe-data`` copies
the three files to ``data/aloe/`` (``DELTAZ_ALOE`` names another folder).

:func:`load_aloe` turns them into the scene :func:`deltaz.io.middlebury.load_motorcycle` returns (same keys, same
conventions: mm, z-depth, 0 = hole, ``E = [R | t]``), at half size first: the images averaged over 2×2 blocks
(641×555, about Motorcycle's 741×500), the ground truth halved where its 2×2 block agrees within 1 px and unknown
where it does not (a block across a depth edge has no one truth); disparities 21.5–105.5 px there, so SGBM searches
``numDisparities`` :data:`ALOE_SGBM` instead of Motorcycle's 64.

Calibration (:data:`ALOE_CALIBRATION`): the pair ships without one. Middlebury's 2006 sets were taken with
``f = 3740`` px and ``B = 160`` mm at full size; the principal point is taken at the image centre, and the disparity
offset ``doffs`` (the 2006 sets' ``dmin``, which the copy lacks) is *assumed* to be 270 px. The scene is scaled
to a median depth anyway (only its shape counts), and any ``doffs`` keeps a plane a plane (``d + doffs`` is linear
in the pixel exactly where ``1 / Z`` is), so the choice sets how deep the scene is relative to its median — the
numbers on Aloe are those of that rig.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np

from deltaz.core.errors import DataError
from deltaz.core.paths import data_dir
from deltaz.io.middlebury import check_options, pair_scene

__all__ = ["ALOE_CALIBRATION", "ALOE_FILES", "ALOE_SGBM", "aloe_dir", "load_aloe", "half_size_pair"]

#: The three files of OpenCV's sample: left image, right image, left ground-truth disparity.
ALOE_FILES = ("aloeL.jpg", "aloeR.jpg", "aloeGT.png")
#: Full size of the sample's arrays ``(H, W)``.
ALOE_FULL = (1110, 1282)
#: Half-size calibration (pixels, mm): ``f = 3740 / 2``, the centre of the 641×555 image, ``doffs = 270 / 2`` (assumed:
#: module docstring), ``B = 160``.
ALOE_CALIBRATION = {
    "f_px": 1870.0,
    "cx_px": 320.0,
    "cy_px": 277.0,
    "doffs_px": 135.0,
    "baseline_mm": 160.0,
}
#: SGBM settings that differ from :data:`deltaz.io.middlebury.SGBM_PARAMS` on the half-size pair (disparities up
#: to 105.5 px).
ALOE_SGBM = {"numDisparities": 112}
#: A 2×2 block's full-size ground-truth values must agree within this many px to give the half-size pixel a truth.
BLOCK_AGREE_PX = 1.0


def aloe_dir() -> Path:
    """The folder with :data:`ALOE_FILES`: ``DELTAZ_ALOE``, else ``<data>/aloe`` (``make aloe-data`` fills it)."""
    value = os.environ.get("DELTAZ_ALOE")
    return Path(value) if value else data_dir() / "aloe"


def _read(folder: Path, name: str, shape: tuple[int, ...]) -> np.ndarray:
    path = folder / name
    if not path.is_file():
        raise DataError(f"{path}: missing; the Aloe pair needs {', '.join(ALOE_FILES)} there (make aloe-data)")
    try:
        array = np.asarray(iio.imread(path))
    except Exception as error:  # any decoder's complaint about a truncated or foreign file
        raise DataError(f"{path}: not a readable image ({type(error).__name__}: {error})") from None
    if array.shape != shape or array.dtype != np.uint8:
        raise DataError(f"{path}: expected a {'x'.join(map(str, shape))} uint8 image (OpenCV's sample), "
                        f"got {'x'.join(map(str, array.shape))} {array.dtype}")
    return array


def half_size_pair(left: np.ndarray, right: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-size ``(2h, 2w, 3)`` uint8 images and ``(2h, 2w)`` uint8 disparity (0 = unknown) → half size.

    Images: the mean of each 2×2 block, rounded. Disparity: float32 px, half the block's mean where all four values
    are known and agree within :data:`BLOCK_AGREE_PX`, NaN elsewhere.
    """
    h, w = gt.shape[0] // 2, gt.shape[1] // 2

    def blocks(a: np.ndarray) -> np.ndarray:
        a = a[: 2 * h, : 2 * w].astype(np.float32)
        return a.reshape(h, 2, w, 2, *a.shape[2:]).swapaxes(1, 2).reshape(h, w, 4, *a.shape[2:])

    def image(rgb: np.ndarray) -> np.ndarray:
        return np.clip(np.round(blocks(rgb).mean(axis=2)), 0, 255).astype(np.uint8)

    d = blocks(gt)
    ok = (d.min(axis=2) > 0) & (d.max(axis=2) - d.min(axis=2) <= BLOCK_AGREE_PX)
    disparity = np.where(ok, d.mean(axis=2) / 2.0, np.nan).astype(np.float32)
    return image(left), image(right), disparity


def load_aloe(folder: str | Path | None = None, size: tuple[int, int] = (139, 160), median_depth_mm: float = 680.0,
              scale: float | None = None, crop: tuple[int, int, int, int] = (0, 0, 0, 0)) -> dict[str, Any]:
    """Middlebury 2006 *Aloe* (OpenCV's sample) as a two-view DeltaZ scene; see the module docstring.

    Args:
        folder: the folder with :data:`ALOE_FILES` (default :func:`aloe_dir`).
        size: output ``(H, W)`` of the images and ground truth (default 139×160, a quarter of the half-size pair,
            as Motorcycle's 125×185 is of its 500×741).
        median_depth_mm: the median ground-truth depth (mm) the scene is scaled to.
        scale: the miniature's factor ``s`` itself, instead of the one that gives ``median_depth_mm``.
        crop: ``(top, left, bottom, right)`` half-size pixels cropped off first (0…15 each), as
            :func:`deltaz.io.middlebury.load_motorcycle`'s ``crop``: another phase of the nearest resize.
    Returns:
        :func:`deltaz.io.middlebury.load_motorcycle`'s dict, the full-size arrays being the half-size pair's
        (555×641 less the crop), with ``data["sgbm"]`` = :data:`ALOE_SGBM`.
    """
    folder = Path(folder) if folder is not None else aloe_dir()
    crop, size, scale = check_options(size, median_depth_mm, scale, crop, (ALOE_FULL[0] // 2, ALOE_FULL[1] // 2))
    left = _read(folder, ALOE_FILES[0], (*ALOE_FULL, 3))
    right = _read(folder, ALOE_FILES[1], (*ALOE_FULL, 3))
    gt = _read(folder, ALOE_FILES[2], ALOE_FULL)
    return pair_scene(*half_size_pair(left, right, gt), ALOE_CALIBRATION, size, median_depth_mm, scale,
                      f"{folder / ALOE_FILES[2]}", sgbm=ALOE_SGBM, crop=crop)
