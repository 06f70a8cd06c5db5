"""The camera rig of the synthetic scenes: DTU's lens, cameras on a sphere cap looking at the table.

DTU's robot arm puts 49 cameras on a sphere cap of radius ≈ 608 mm around the point they all look at
(the camera centres of the raw calibration lie 608–609 mm from that point, at 30°–83° elevation, in
rows). :func:`make_rig` builds the same kind of rig in the *scene frame* of :mod:`deltaz.io.synthetic.scene`
(table top at ``z = 0``, ``+z`` up, mm); :func:`rig_from_calibration` reads the real DTU cameras and
returns the transform that puts a synthetic scene where those cameras converge.

Conventions (DESIGN.md §1): extrinsics are world-to-camera ``(3, 4)`` ``[R | t]``, intrinsics belong to
the 160×128 depth grid unless scaled, camera ``y`` points down in the image.
Explained in notebooks/01_dtu_on_disk.ipynb.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from deltaz.io.dtu.cameras import raw_to_training_camera, scale_intrinsics
from deltaz.io.dtu.formats import read_projection
from deltaz.core.errors import ConfigError, DataError

__all__ = [
    "DEPTH_WIDTH",
    "DEPTH_HEIGHT",
    "DEPTH_MIN_MM",
    "DEPTH_INTERVAL_MM",
    "DEPTH_NUM",
    "DEPTH_MAX_MM",
    "RIG_RADIUS_MM",
    "TARGET_HEIGHT_MM",
    "dtu_intrinsics",
    "look_at",
    "make_rig",
    "find_calibration_files",
    "rig_from_calibration",
]

#: Size of MVSNet's training depth maps (and of the cameras in ``Cameras/train``).
DEPTH_WIDTH, DEPTH_HEIGHT = 160, 128
#: DTU's depth hypotheses as written in its cam files: from 425 mm, 2.5 mm apart; MVSNet samples 192
#: planes with the spacing stretched by 1.06 to 2.65 mm, so the last plane is 425 + 191·2.65 = 931.15 mm.
DEPTH_MIN_MM, DEPTH_INTERVAL_MM, DEPTH_NUM = 425.0, 2.5, 192
DEPTH_MAX_MM = round(DEPTH_MIN_MM + (DEPTH_NUM - 1) * DEPTH_INTERVAL_MM * 1.06, 2)
#: Distance of DTU's cameras from the point they look at (measured on the raw calibration).
RIG_RADIUS_MM = 608.0
#: Height of that point above the table top in the synthetic scene frame.
TARGET_HEIGHT_MM = 50.0

# DTU view 1's training camera (DESIGN.md §1): raw calibration halved, cropped, quartered.
_FX, _FY, _CX, _CY = 361.54, 360.40, 82.90, 66.38


def dtu_intrinsics(width: int = DEPTH_WIDTH, height: int = DEPTH_HEIGHT) -> np.ndarray:
    """DTU's training intrinsics ``(3, 3)`` float64 for a ``width×height`` array.

    160×128 gives ``fx 361.54, fy 360.40, cx 82.90, cy 66.38``; other sizes scale ``fx, cx`` by
    ``width/160`` and ``fy, cy`` by ``height/128`` (DTU/MVSNet convention, no half-pixel shift), so
    640×512 is the 160×128 camera times 4.
    """
    K = np.array([[_FX, 0.0, _CX], [0.0, _FY, _CY], [0.0, 0.0, 1.0]])
    return scale_intrinsics(K, width / DEPTH_WIDTH, height / DEPTH_HEIGHT)


def look_at(center: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)) -> np.ndarray:
    """World-to-camera ``(3, 4)`` for a camera at ``center`` looking at ``target``.

    The optical axis (camera ``z``) points at the target, camera ``x`` is horizontal (perpendicular to
    ``up``) and camera ``y`` points down in the image, i.e. away from ``up``.
    """
    center = np.asarray(center, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - center
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-9:  # looking straight along `up`: any horizontal x will do
        x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    return np.concatenate([R, (-R @ center)[:, None]], axis=1)


def _row_counts(n_views: int, elevations_deg: np.ndarray) -> list[int]:
    """Split ``n_views`` over rows in proportion to each row's arc length (``cos`` of its elevation)."""
    weights = np.cos(np.radians(elevations_deg))
    raw = n_views * weights / weights.sum()
    counts = np.maximum(np.floor(raw).astype(int), 1)
    while counts.sum() > n_views:
        counts[np.argmax(counts)] -= 1
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")
    i = 0
    while counts.sum() < n_views:
        counts[order[i % len(order)]] += 1
        i += 1
    return counts.tolist()


def make_rig(
    n_views: int = 49,
    radius_mm: float = RIG_RADIUS_MM,
    elevation_range_deg: tuple[float, float] = (35.0, 78.0),
    azimuth_span_deg: float = 150.0,
) -> np.ndarray:
    """DTU-like rig in the scene frame: ``n_views`` world-to-camera extrinsics ``(n_views, 3, 4)``.

    Cameras sit on a sphere cap of radius ``radius_mm`` around the target ``(0, 0, TARGET_HEIGHT_MM)``,
    in rows of constant elevation (top row first), each row an arc of ``azimuth_span_deg`` centred on
    the ``-y`` side, with as many cameras per row as its arc length allows. Rows alternate direction
    (serpentine, like DTU's robot path), so consecutive view ids are neighbours. Every scene point
    within ``radius_mm - DEPTH_MIN_MM`` of the target has a z-depth inside DTU's range in every view.
    """
    if n_views < 1:
        raise ConfigError(f"n_views: expected at least 1 view, got {n_views}")
    n_rows = max(1, min(n_views, round(math.sqrt(n_views / 2))))
    lo, hi = elevation_range_deg
    elevations = np.array([(lo + hi) / 2]) if n_rows == 1 else np.linspace(hi, lo, n_rows)
    target = np.array([0.0, 0.0, TARGET_HEIGHT_MM])
    extrinsics = []
    for row, (elevation, count) in enumerate(zip(elevations, _row_counts(n_views, elevations))):
        half = azimuth_span_deg / 2 * (1 - 1 / (count + 1)) if count > 1 else 0.0
        azimuths = np.linspace(-half, half, count) if count > 1 else np.zeros(1)
        if row % 2 == 1:
            azimuths = azimuths[::-1]
        for azimuth in azimuths:
            el, az = math.radians(elevation), math.radians(azimuth - 90.0)
            direction = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
            extrinsics.append(look_at(target + radius_mm * direction, target))
    return np.stack(extrinsics)


_CALIBRATION_PATTERNS = (
    re.compile(r"^pos_(\d{3})\.txt$"),
    re.compile(r"^rect_(\d{3})_3_r5000\.png\.P$"),
    re.compile(r"^rect_(\d{3})_\d_r\d+\.png\.P$"),
)


def find_calibration_files(folder: str | Path) -> dict[int, Path]:
    """Raw DTU projection files in ``folder`` as ``{view_id (0-based): path}``.

    Accepts DTU's ``pos_NNN.txt`` or gipuma's ``rect_NNN_*_r*.png.P`` (``NNN`` is 1-based); when a
    view has several gipuma variants the ``_3_r5000`` one is taken (they hold the same numbers).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--calibration {folder}: expected a folder of pos_NNN.txt or rect_NNN_3_r5000.png.P files")
    found: dict[int, Path] = {}
    for pattern in _CALIBRATION_PATTERNS:
        for path in sorted(folder.iterdir()):
            match = pattern.match(path.name)
            if match and int(match.group(1)) - 1 not in found:
                found[int(match.group(1)) - 1] = path
        if found:
            break
    if not found:
        raise DataError(f"--calibration {folder}: expected pos_NNN.txt or rect_NNN_3_r5000.png.P files, found none")
    return dict(sorted(found.items()))


def rig_from_calibration(folder: str | Path, n_views: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real DTU cameras and where to put a synthetic scene in their world.

    Args:
        folder: raw DTU calibration (see :func:`find_calibration_files`); views ``0..n_views-1`` must exist.
    Returns:
        ``K (n_views, 3, 3)`` for 160×128, ``E (n_views, 3, 4)`` world-to-camera in DTU's world (mm), and
        ``scene_to_world (3, 4)``: the rigid transform from the scene frame (table top ``z = 0``, ``+z``
        up) to DTU's world. Its up axis is the mean direction from the cameras' convergence point (the
        least-squares point nearest to all optical axes) to the camera centres; the convergence point
        sits ``TARGET_HEIGHT_MM`` above the table top, as in :func:`make_rig`.
    """
    files = find_calibration_files(folder)
    missing = [v for v in range(n_views) if v not in files]
    if missing:
        raise DataError(
            f"--calibration {folder}: expected projections for views 0..{n_views - 1}, "
            f"missing {len(missing)} (first: view {missing[0]}, file number {missing[0] + 1:03d})"
        )
    Ks, Es = zip(*(raw_to_training_camera(read_projection(files[v])) for v in range(n_views)))
    K, E = np.stack(Ks), np.stack(Es)[:, :3, :4]
    R, t = E[:, :, :3], E[:, :, 3]
    centers = -np.einsum("nji,nj->ni", R, t)
    axes = R[:, 2, :]
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for c, a in zip(centers, axes):
        M = np.eye(3) - np.outer(a, a)
        A += M
        b += M @ c
    target = np.linalg.lstsq(A, b, rcond=None)[0]
    up = (centers - target).mean(axis=0)
    if np.linalg.norm(up) < 1e-6:
        up = -axes.mean(axis=0)
    up /= np.linalg.norm(up)
    x = np.cross(R[0, 1, :], up)  # horizontal, roughly view 0's image x
    if np.linalg.norm(x) < 1e-6:
        x = np.cross([1.0, 0.0, 0.0], up)
    x /= np.linalg.norm(x)
    y = np.cross(up, x)
    rotation = np.stack([x, y, up], axis=1)  # columns: scene axes in world coordinates
    origin = target - TARGET_HEIGHT_MM * up
    return K, E, np.concatenate([rotation, origin[:, None]], axis=1)
