"""The parser's cameras: which cam file (or raw projection) a view uses, and the scan's depth range.

A cam file in ``Cameras/scan{N}_train`` (or ``Cameras/scan{N}``) wins over one in ``Cameras/train``; a
raw ``Calibration/cal18/pos_{vid+1:03d}.txt`` is used when there is none (DTU's 425 / 2.5 mm depth
line then). Used by :mod:`deltaz.io.dtu.parse`; lengths in mm, extrinsics world-to-camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deltaz.core.errors import DataError
from deltaz.io.dtu.cameras import MVSNET_HW, raw_to_camera
from deltaz.io.dtu.formats import CamFile, read_cam_file, read_projection

__all__ = ["DTU_DEPTH_MIN_MM", "DTU_DEPTH_INTERVAL_MM", "MVSNET_PLANES", "MVSNET_INTERVAL_SCALE", "RANGE_TOLERANCE",
           "Camera", "RangeStats", "load_camera", "camera_source"]

DTU_DEPTH_MIN_MM = 425.0  #: DTU's depth_min (cam files), used with raw calibration
DTU_DEPTH_INTERVAL_MM = 2.5  #: DTU's depth_interval (cam files), used with raw calibration
MVSNET_PLANES = 192  #: depth planes MVSNet-PyTorch samples when a cam file gives no count
MVSNET_INTERVAL_SCALE = 1.06  #: MVSNet-PyTorch's interval_scale for DTU training
RANGE_TOLERANCE = 0.05  #: fraction of the depth range a valid depth may lie outside it without a warning


@dataclass
class Camera:
    """One view's camera as the parser uses it."""

    K: np.ndarray  # (3, 3) for the depth maps' stored size
    E: np.ndarray  # (4, 4) world-to-camera
    depth_range_mm: tuple[float, float]
    depth_interval_mm: float


def cam_range(cam: CamFile) -> tuple[float, float]:
    """``(low, high)`` mm: ``depth_max`` if given, else ``depth_num`` planes, else MVSNet-PyTorch's 192
    planes at ``1.06·depth_interval``."""
    if cam.depth_max is not None:
        return cam.depth_min, cam.depth_max
    if cam.depth_num is not None:
        return cam.depth_min, cam.depth_min + cam.depth_interval * (cam.depth_num - 1)
    return cam.depth_min, cam.depth_min + cam.depth_interval * MVSNET_INTERVAL_SCALE * (MVSNET_PLANES - 1)


def load_camera(src: Path, view_id: int, depth_hw: tuple[int, int], scan: str | None = None) -> Camera:
    """The camera of ``view_id`` for depth maps of size ``depth_hw`` (see the module docstring).

    Raises DataError when the view has neither a cam file nor a raw projection."""
    cam_path = src / "Cameras" / "train" / f"{view_id:08d}_cam.txt"
    for folder in ([f"{scan}_train", scan] if scan else []):
        if (src / "Cameras" / folder / cam_path.name).is_file():
            cam_path = src / "Cameras" / folder / cam_path.name
            break
    if cam_path.is_file():
        cam = read_cam_file(cam_path)
        return Camera(cam.intrinsics, cam.extrinsics, cam_range(cam), cam.depth_interval)
    raw_path = src / "Calibration" / "cal18" / f"pos_{view_id + 1:03d}.txt"
    if raw_path.is_file():
        if depth_hw[1] * MVSNET_HW[0] != depth_hw[0] * MVSNET_HW[1]:
            raise DataError(
                f"{raw_path}: raw calibration needs depth maps in MVSNet's 640x512 frame (aspect 5:4), "
                f"got {depth_hw[0]}x{depth_hw[1]}"
            )
        K, E = raw_to_camera(read_projection(raw_path), depth_hw)
        depth_max = DTU_DEPTH_MIN_MM + DTU_DEPTH_INTERVAL_MM * MVSNET_INTERVAL_SCALE * (MVSNET_PLANES - 1)
        return Camera(K, E, (DTU_DEPTH_MIN_MM, depth_max), DTU_DEPTH_INTERVAL_MM)
    raise DataError(f"view {view_id}: no camera, expected {cam_path} or {raw_path}")


def camera_source(src: Path, scan: str) -> str:
    """Which camera folder a scan's cameras came from (for ``meta.json``)."""
    for folder in (f"{scan}_train", scan, "train"):
        if (src / "Cameras" / folder).is_dir():
            return f"Cameras/{folder}"
    return "Calibration/cal18"


@dataclass
class RangeStats:
    """The depth range of a scan's cameras (mm) and how many valid depths lie well outside it."""

    low: float = np.inf
    high: float = -np.inf
    interval: float | None = None
    out_of_range: int = 0

    def add(self, camera: Camera, depth: np.ndarray) -> None:
        low, high = camera.depth_range_mm
        tolerance = RANGE_TOLERANCE * (high - low)
        valid = depth[depth > 0]
        self.out_of_range += int(((valid < low - tolerance) | (valid > high + tolerance)).sum())
        self.low, self.high = min(self.low, low), max(self.high, high)
        self.interval = camera.depth_interval_mm if self.interval is None else self.interval
