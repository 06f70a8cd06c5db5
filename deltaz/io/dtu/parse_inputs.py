"""The parser's inputs besides cameras: DTU images (which lights, reading, resizing) and initial depths.

DTU names images ``Rectified/scan{N}_train/rect_{vid+1:03d}_{light}_r5000.png`` (``light`` 0..6, the
view number counts from 1). Raw 1600×1200 images are halved and centre-cropped to MVSNet's 640×512
frame first; then every image is area-averaged to the output size (DESIGN.md §1: scaling ``K`` by
``s`` describes it). Depth maps (ground truth and real initial depths) are resized by nearest
neighbour without a half-pixel shift. Used by :mod:`deltaz.io.dtu.parse`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import numpy as np

from deltaz.io.dtu.cameras import MVSNET_CROP, MVSNET_HW, RAW_HW
from deltaz.io.dtu.formats import read_pfm, read_png
from deltaz.core.errors import ConfigError, DataError, FormatError

__all__ = ["DTU_LIGHTS", "parse_lights", "resize_image_area", "resize_depth_nearest", "read_image", "image_path",
           "scan_lights", "read_view_images", "read_initial"]

DTU_LIGHTS = tuple(range(7))  #: DTU's lighting indices


def _first_dir(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.is_dir()), None)


def parse_lights(spec: None | int | str | Iterable[int]) -> list[int] | None:
    """DTU light indices from ``spec``: None or ``"all"`` → None (every light present); an int; a string
    like ``"0-6"``, ``"3"`` or ``"0,3,5"``; or an iterable of ints. Sorted, unique, each in 0..6.

    Raises ConfigError (one line) on anything else.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return None
    items: list[int] = []
    try:
        if isinstance(spec, str):
            for part in (p for p in re.split(r"[,\s]+", spec.strip()) if p):
                low, _, high = part.partition("-")
                items += list(range(int(low), int(high) + 1)) if high else [int(low)]
        else:
            items = [int(spec)] if isinstance(spec, (int, np.integer)) else [int(v) for v in spec]
    except (TypeError, ValueError):
        raise ConfigError(f"lights: expected DTU lighting indices such as 0-6, 3 or 0,3,5, got {spec!r}") from None
    bad = [v for v in items if v not in DTU_LIGHTS]
    if not items or bad:
        raise ConfigError(f"lights: expected DTU lighting indices 0..6 (such as 0-6 or 0,3,5), got {spec!r}")
    return sorted(set(items))


def resize_image_area(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Resize ``(H, W, 3)`` (uint8 or float) to ``(3, h, w)`` float32 in [0, 1] by area averaging."""
    import torch
    import torch.nn.functional as F

    scale = 255.0 if image.dtype == np.uint8 else (65535.0 if image.dtype == np.uint16 else 1.0)
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None] / scale
    if tuple(tensor.shape[-2:]) != tuple(hw):
        tensor = F.interpolate(tensor, size=tuple(hw), mode="area")
    return tensor[0].clamp_(0, 1).numpy()


def _raw_image_to_mvsnet_frame(image: np.ndarray) -> np.ndarray:
    """A raw 1600×1200 image → halved (2×2 mean) and centre-cropped to MVSNet's 640×512 frame."""
    half = image.astype(np.float32).reshape(RAW_HW[0] // 2, 2, RAW_HW[1] // 2, 2, -1).mean(axis=(1, 3))
    ox, oy = MVSNET_CROP
    return half[oy : oy + MVSNET_HW[0], ox : ox + MVSNET_HW[1]] / (255.0 if image.dtype == np.uint8 else 1.0)


def read_image(path: Path, depth_hw: tuple[int, int], out_hw: tuple[int, int]) -> np.ndarray:
    """A DTU image as ``(3, *out_hw)`` float32 in [0, 1]; raw 1600×1200 ones via MVSNet's 640×512 frame.

    Raises FormatError when it does not cover the depth map's view (aspect ratio of ``depth_hw``).
    """
    image = read_png(path)
    if image.shape[:2] == RAW_HW and tuple(depth_hw) != RAW_HW:
        image = _raw_image_to_mvsnet_frame(image)
    h, w = image.shape[:2]
    if abs(w / h - depth_hw[1] / depth_hw[0]) > 0.01 * depth_hw[1] / depth_hw[0]:
        raise FormatError(
            path,
            f"expected an image covering the depth map's view (aspect {depth_hw[1]}:{depth_hw[0]})"
            f", got {h}x{w} (H x W)",
        )
    return resize_image_area(image, out_hw)


def image_path(src: Path, scan: str, view_id: int, light: int) -> tuple[Path | None, Path | None]:
    """(the scan's ``Rectified`` folder, the image of ``view_id`` under ``light``), or (None, None)."""
    folder = _first_dir(src / "Rectified" / f"{scan}_train", src / "Rectified" / scan)
    if folder is None:
        return None, None
    return folder, folder / f"rect_{view_id + 1:03d}_{light}_r5000.png"


def scan_lights(
    src: Path, scan: str, first_view: int, requested: list[int] | None, light: int | None
) -> tuple[int | None, list[int]]:
    """(primary light, kept lights) of a scan; ``(None, [])`` when it has no ``Rectified/`` folder."""
    folder, _ = image_path(src, scan, first_view, 0)
    if folder is None:
        return None, []
    if requested is None:
        kept = [v for v in DTU_LIGHTS if image_path(src, scan, first_view, v)[1].is_file()]
        if light is not None:
            kept = sorted(set(kept) | {light})
        if not kept:
            raise DataError(f"{folder}: no image of view {first_view} (rect_{first_view + 1:03d}_L_r5000.png, L 0..6)")
    else:
        kept = sorted(set(requested) | ({light} if light is not None else set()))
    primary = light if light is not None else (3 if 3 in kept else kept[0])
    return primary, kept


def read_view_images(
    src: Path, scan: str, view_id: int, lights: list[int], depth_hw, out_hw
) -> dict[int, np.ndarray]:
    """``{light: (3, H, W) float32}`` of one view, every kept light required."""
    images = {}
    for light in lights:
        _, path = image_path(src, scan, view_id, light)
        if not path.is_file():
            raise DataError(f"missing image {path} (the scan has images for other views or lights)")
        images[light] = read_image(path, depth_hw, out_hw)
    return images


def _nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Input index for each output pixel: ``round(i · n_in / n_out)`` (no half-pixel shift)."""
    return np.clip(np.floor(np.arange(n_out) * (n_in / n_out) + 0.5).astype(np.int64), 0, n_in - 1)


def resize_depth_nearest(depth: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W)`` depth map to ``hw`` by nearest neighbour, consistent with scaling ``K``.

    Output pixel ``(u, v)`` takes input pixel ``(round(u·W/W'), round(v·H/H'))``; for an integer
    factor ``f`` this is ``depth[::f, ::f]``. Never averages depths (0 = no value stays 0).
    """
    if tuple(depth.shape) == tuple(hw):
        return depth
    rows = _nearest_indices(depth.shape[0], hw[0])
    cols = _nearest_indices(depth.shape[1], hw[1])
    return np.ascontiguousarray(depth[rows[:, None], cols[None, :]])


def _initial_path(initial_root: Path, scan: str, view_id: int) -> Path | None:
    folder = initial_root / scan
    for path in (
        folder / f"{view_id:08d}.pfm",
        folder / f"depth_map_{view_id:04d}.pfm",
        folder / "depth_est" / f"{view_id:08d}.pfm",
    ):
        if path.is_file():
            return path
    return None


def read_initial(initial_root: Path, scan: str, view_id: int, depth_hw, out_hw) -> np.ndarray:
    """A real initial depth of one view, resized like the depth map."""
    initial_path = _initial_path(initial_root, scan, view_id)
    if initial_path is None:
        raise DataError(
            f"{initial_root / scan}: no initial depth for view {view_id}"
            f" ({view_id:08d}.pfm or depth_map_{view_id:04d}.pfm)"
        )
    initial = read_pfm(initial_path)
    if initial.ndim != 2 or (initial < 0).any():
        raise FormatError(initial_path, "expected a one-channel depth map with depths >= 0")
    if abs(initial.shape[1] / initial.shape[0] - depth_hw[1] / depth_hw[0]) > 0.01 * depth_hw[1] / depth_hw[0]:
        raise FormatError(
            initial_path,
            f"expected the depth map's view (aspect {depth_hw[1]}:{depth_hw[0]})"
            f", got {initial.shape[0]}x{initial.shape[1]}",
        )
    return resize_depth_nearest(initial, out_hw)
