"""One depth file through ``deltaz refine``: read it in its format, convert to mm, refine, write it back.

Shared by the single-file and the folder mode (:mod:`deltaz.apps.refine_cli`, :mod:`deltaz.apps.refine_folder`).
Units: ``depth_mm = stored value × --depth-scale``; ``--disparity`` input is converted to z-depth ``f·B / (d + doffs)``
mm, after the classical two-view steps (:func:`deltaz.ops.mvs.search.search_disparity`: edge side choice,
candidate search, segment planes, sub-pixel refinement) when ``--right-image`` is given. The output goes to a
temporary name, then is renamed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from deltaz.apps.refine_preview import write_preview
from deltaz.core.errors import ConfigError, FormatError
from deltaz.engine.refine import refine_depth
from deltaz.io.depth_io import DepthFile, format_of, read_depth_file, write_depth_file
from deltaz.io.dtu.formats import read_png
from deltaz.io.middlebury import disparity_to_depth
from deltaz.ops.mvs.search import search_disparity

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
OUT_SUFFIX = {"pfm": ".pfm", "npy": ".npy", "png": ".png", "tiff": ".tif", "colmap": ".geometric.bin"}



def to_mm(stored: DepthFile, args: argparse.Namespace, path: Path, stereo: tuple | None = None) -> np.ndarray:
    """Stored values → depth in mm (holes keep their marker); disparity → z-depth (holes 0), searched first
    against the right image when ``stereo = (left, right)`` images are given."""
    if stored.format == "png" and stored.bits == 8 and args.depth_scale is None:
        raise FormatError(path, "8-bit PNG depth map: its units are ambiguous; "
                                "pass --depth-scale S (depth_mm = stored x S)")
    scale = 1.0 if args.depth_scale is None else float(args.depth_scale)
    values = stored.values * np.float32(scale) if scale != 1.0 else stored.values
    if not args.disparity:
        return values
    disparity = np.where(values == 0, np.float32(np.nan), values)  # 0 = unknown disparity (KITTI-style)
    if stereo is not None:
        disparity = search_disparity(disparity, *stereo)
    return disparity_to_depth(disparity, args.focal, args.baseline, args.doffs)


def from_mm(depth_mm: np.ndarray, fmt: str, bits: int, scale: float) -> tuple[np.ndarray, str | None]:
    """Depth in mm → the values to store (÷ scale; PNG: rounded, holes 0, a valid pixel at least 1) and a note."""
    stored = depth_mm / np.float32(scale) if scale != 1.0 else depth_mm
    if fmt != "png":
        return stored.astype(np.float32), None
    valid = np.isfinite(stored) & (stored > 0)
    top = 2**bits - 1
    over = int((valid & (stored > top + 0.5)).sum())
    rounded = np.where(valid, np.clip(np.rint(np.where(valid, stored, 0)), 1, top), 0)
    note = f"{over} values above the {bits}-bit PNG maximum {top} were clipped" if over else None
    return rounded.astype(np.float32), note


def _out_format(out: Path, stored: DepthFile, out_format: str | None) -> tuple[str, int]:
    fmt = out_format or format_of(out)
    bits = stored.bits if fmt == "png" and stored.format == "png" and stored.bits else 16
    return fmt, bits


# ----------------------------------------------------------------------------------------- one map
def _read_image(path: Path | None):
    if path is None:
        return None
    return read_png(path)


def _stereo_pair(args: argparse.Namespace, image, depth_shape: tuple[int, ...]) -> tuple | None:
    """``(left, right)`` RGB images for ``--right-image``'s search, or None; both must be the disparity map's size."""
    if getattr(args, "right_image", None) is None:
        return None
    right = read_png(Path(args.right_image))
    for name, array in (("--image", image), ("--right-image", right)):
        if array.shape[:2] != tuple(depth_shape):
            raise FormatError(Path(args.right_image if name == "--right-image" else args.image),
                              f"{name}: the stereo search needs the disparity map's size {tuple(depth_shape)}, "
                              f"got {array.shape[:2]}")
    return image, right


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def refine_file(args: argparse.Namespace, depth_path: Path, image_path: Path | None, out_path: Path,
                preview_path: Path | None, note) -> Path:
    """Read, refine (:func:`deltaz.engine.refine.refine_depth`), write one map (and its preview). Returns ``out_path``."""
    if _same_file(depth_path, out_path) and not args.overwrite:
        raise ConfigError(f"--out: {out_path} is the input depth map; choose another path or pass --overwrite")
    stored = read_depth_file(depth_path)
    fmt, bits = _out_format(out_path, stored, args.out_format)
    image = _read_image(image_path)
    depth_mm = to_mm(stored, args, depth_path, _stereo_pair(args, image, stored.values.shape))
    refined = refine_depth(depth_mm, image, args.checkpoint, device=args.device, fill_holes=args.fill_holes,
                           resize_image=args.resize_image, depth_range_mm=args.depth_range, max_pixels=args.max_pixels,
                           bf16=args.bf16, colour_scale=args.colour_scale, dead_zone=args.dead_zone,
                           mirror_agreement=args.mirror_agreement, weighted_median=args.weighted_median,
                           smooth=args.smooth, on_note=note,
                           depth_name=str(depth_path), image_name=str(image_path))
    out_scale = 1.0 if args.disparity or args.depth_scale is None else float(args.depth_scale)
    values, clip_note = from_mm(refined, fmt, bits, out_scale)
    if clip_note:
        note(f"{out_path}: {clip_note}")
    write_depth_file(out_path, values, fmt, bits)
    if preview_path is not None:
        write_preview(preview_path, depth_mm, refined, image, title=depth_path.name)
    return out_path
