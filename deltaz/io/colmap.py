"""``deltaz import-colmap``: your own capture (a COLMAP text model, images, depth maps) → a train-ready scan.

    deltaz import-colmap --images my/images --model my/sparse/0 --depth my/depths --out data/my_ready

``--model`` holds COLMAP's text model (``cameras.txt``, ``images.txt``; export a binary one with
``colmap model_converter --output_type TXT``). Conventions read (https://colmap.github.io/format.html):

* ``images.txt``: ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` then a line of 2D points (skipped). The
  quaternion (Hamilton, ``qw`` first) and ``t`` are **world-to-camera**: ``X_cam = R·X_world + t``, exactly
  DeltaZ's ``E = [R | t]``; camera axes x right, y down, z forward (DeltaZ's too).
* ``cameras.txt``: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS…`` with ``SIMPLE_PINHOLE f cx cy``, ``PINHOLE fx fy cx cy``,
  ``SIMPLE_RADIAL f cx cy k`` and ``OPENCV fx fy cx cy k1 k2 p1 p2`` (refused unless the distortion is 0 or
  ``--ignore-distortion``, then used as a pinhole with a note; undistort with ``colmap image_undistorter`` first).
  COLMAP puts the centre of the top-left pixel at (0.5, 0.5), DeltaZ at (0, 0): ``cx = cx_colmap − 0.5`` (and ``cy``).
* depth maps: one per image in ``--depth``, named after the image (``<name>.geometric.bin``/``.photometric.bin``
  from COLMAP's dense stereo, or ``<name or stem>.{npy,pfm,png,tif}``), z-depth in the model's units; 0 = hole.
  ``--scale-to-mm S`` multiplies depths and translations (COLMAP's unit is arbitrary; give S when you know it).

Each view's ``K`` is scaled to its depth map's size (DESIGN.md §1: no half-pixel shift) and its image resized
to that size. The depth maps go to ``initial/`` (the input to refine); ``depths/`` holds 0 (no ground truth).
``pair.txt``: for each view the others ranked by triangulation angle at its median-depth point (best near
10°). Written atomically with :func:`deltaz.io.dtu.layout.write_scan`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from deltaz.core.errors import DataError, DeltaZError, FormatError
from deltaz.io.depth_io import depth_stem, read_depth_file
from deltaz.io.dtu.layout import write_scan
from deltaz.io.middlebury import resize_nearest

__all__ = ["CAMERA_MODELS", "qvec_to_rotmat", "read_cameras_txt", "read_images_txt", "colmap_intrinsics",
           "import_colmap", "add_arguments", "run"]

#: Camera models read, with their parameter count.
CAMERA_MODELS = {"SIMPLE_PINHOLE": 3, "PINHOLE": 4, "SIMPLE_RADIAL": 4, "OPENCV": 8}
#: Best triangulation angle (degrees) for a source view, and the width of the preference.
PAIR_ANGLE_DEG, PAIR_SIGMA_DEG = 10.0, 8.0


def qvec_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Hamilton quaternion ``(qw, qx, qy, qz)`` (normalised here) → 3×3 rotation matrix."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def _data_lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise DataError(f"{path}: not found; --model must hold COLMAP's text model (cameras.txt, images.txt)")
    return [(n, line.strip()) for n, line in enumerate(path.read_text().splitlines(), 1)
            if not line.lstrip().startswith("#")]


def read_cameras_txt(path: str | Path) -> dict[int, tuple[str, int, int, list[float]]]:
    """``{camera_id: (model, width, height, params)}`` from ``cameras.txt``; FormatError names the line."""
    path = Path(path)
    cameras = {}
    for n, line in _data_lines(path):
        if not line:
            continue
        parts = line.split()
        try:
            cam_id, model, width, height = int(parts[0]), parts[1], int(parts[2]), int(parts[3])
            params = [float(p) for p in parts[4:]]
        except (ValueError, IndexError):
            raise FormatError(path, f"line {n}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...', got {line!r}") from None
        if model not in CAMERA_MODELS:
            raise FormatError(path, f"line {n}: camera model {model} is not supported (expected one of "
                              f"{', '.join(CAMERA_MODELS)}; undistort with `colmap image_undistorter`)")
        if len(params) != CAMERA_MODELS[model]:
            raise FormatError(path, f"line {n}: {model} takes {CAMERA_MODELS[model]} parameters, got {len(params)}")
        cameras[cam_id] = (model, width, height, params)
    if not cameras:
        raise FormatError(path, "expected at least one camera, got none")
    return cameras


def read_images_txt(path: str | Path) -> list[dict]:
    """Images of ``images.txt`` in file order: ``{"image_id", "R" (3,3), "t" (3,), "camera_id", "name"}``
    (world-to-camera). Every second data line (the 2D points) is skipped."""
    path = Path(path)
    lines = _data_lines(path)
    images = []
    for k in range(0, len(lines), 2):
        n, line = lines[k]
        parts = line.split()
        try:
            q = np.array([float(v) for v in parts[1:5]])
            t = np.array([float(v) for v in parts[5:8]])
            image = {"image_id": int(parts[0]), "R": qvec_to_rotmat(q), "t": t, "camera_id": int(parts[8]),
                     "name": " ".join(parts[9:])}
        except (ValueError, IndexError, ZeroDivisionError):
            raise FormatError(path, f"line {n}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME', got {line!r}") from None
        if not image["name"]:
            raise FormatError(path, f"line {n}: the image has no NAME")
        images.append(image)
    if not images:
        raise FormatError(path, "expected at least one image, got none")
    return images


def colmap_intrinsics(model: str, params: list[float], ignore_distortion: bool = False) -> tuple[np.ndarray, str | None]:
    """DeltaZ ``K`` (3×3, pixel centre (0, 0)) of a COLMAP camera at its own size, and a note (or None)."""
    if model == "SIMPLE_PINHOLE" or model == "SIMPLE_RADIAL":
        fx = fy = params[0]
        cx, cy = params[1], params[2]
    else:
        fx, fy, cx, cy = params[:4]
    note = None
    distortion = params[3:] if model == "SIMPLE_RADIAL" else params[4:] if model == "OPENCV" else []
    if any(abs(d) > 0 for d in distortion):
        if not ignore_distortion:
            raise DataError(f"{model} camera with distortion {distortion}: undistort the images and depths first "
                            "(`colmap image_undistorter`), or pass --ignore-distortion to use it as a pinhole")
        note = f"{model} distortion {distortion} ignored (treated as a pinhole camera)"
    K = np.array([[fx, 0.0, cx - 0.5], [0.0, fy, cy - 0.5], [0.0, 0.0, 1.0]])
    return K, note


def _find_depth(depth_dir: Path, name: str) -> Path:
    wanted = {name, Path(name).name, Path(name).stem, Path(Path(name).name).stem}
    for path in sorted(depth_dir.iterdir()):
        if path.is_file() and depth_stem(path) in wanted:
            return path
    raise DataError(f"{depth_dir}: no depth map for image {name!r} (expected e.g. {Path(name).name}.geometric.bin "
                    f"or {Path(name).stem}.npy)")


def _read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """RGB ``(H, W, 3)`` uint8 at ``size = (H, W)`` (area-free nearest resize matching the K scaling)."""
    if not path.is_file():
        raise DataError(f"{path}: image not found (--images must hold the files named in images.txt)")
    try:
        image = np.asarray(iio.imread(path))
    except Exception as error:  # many decoder errors
        raise FormatError(path, f"cannot read the image: {error}") from None
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    if image.dtype != np.uint8:
        image = np.clip(image.astype(np.float64) / np.iinfo(image.dtype).max * 255, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(resize_nearest(image, size))


def _pairs(Es: list[np.ndarray], depths: list[np.ndarray], keep: int = 10) -> dict[int, list[tuple[int, float]]]:
    """pair.txt rows: sources ranked by ``exp(−(θ − 10°)²/(2·8²))``, θ = triangulation angle at the reference's
    median-depth point on its optical axis."""
    centres = [-E[:, :3].T @ E[:, 3] for E in Es]
    pairs = {}
    for i, E in enumerate(Es):
        valid = depths[i][depths[i] > 0]
        z = float(np.median(valid)) if valid.size else 1.0
        point = centres[i] + E[2, :3] * z  # the optical axis is R's third row in world coordinates
        scores = []
        for j in range(len(Es)):
            if j == i:
                continue
            a, b = centres[i] - point, centres[j] - point
            cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
            theta = np.degrees(np.arccos(np.clip(cos, -1, 1)))
            scores.append((j, float(np.exp(-((theta - PAIR_ANGLE_DEG) ** 2) / (2 * PAIR_SIGMA_DEG**2)))))
        pairs[i] = sorted(scores, key=lambda s: -s[1])[:keep]
    return pairs


def _view(image: dict, cameras: dict, images_dir: Path, depth_dir: Path, scale_to_mm: float, depth_scale: float,
          ignore_distortion: bool, notes: list[str]) -> dict:
    """One view of the scan: initial depth (mm), K at the depth's size, E (mm), RGB at the depth's size."""
    if image["camera_id"] not in cameras:
        raise DataError(f"images.txt: image {image['name']!r} uses camera {image['camera_id']}, not in cameras.txt")
    model, width, height, params = cameras[image["camera_id"]]
    K, note = colmap_intrinsics(model, params, ignore_distortion)
    if note and note not in notes:
        notes.append(note)
    path = _find_depth(depth_dir, image["name"])
    values = read_depth_file(path).values.astype(np.float64) * depth_scale * scale_to_mm
    depth = np.where(np.isfinite(values) & (values > 0), values, 0.0).astype(np.float32)
    h, w = depth.shape
    K[0] *= w / width
    K[1] *= h / height
    E = np.concatenate([image["R"], (image["t"] * scale_to_mm)[:, None]], axis=1)
    return {"depth": np.zeros_like(depth), "initial": depth, "intrinsics": K.astype(np.float32),
            "extrinsics": E.astype(np.float32), "image": _read_image(images_dir / image["name"], (h, w))}


def import_colmap(images_dir: str | Path, model_dir: str | Path, depth_dir: str | Path, out_root: str | Path,
                  scan_name: str = "scan1", scale_to_mm: float = 1.0, depth_scale: float = 1.0,
                  ignore_distortion: bool = False) -> tuple[Path, list[str]]:
    """Write ``<out_root>/<scan_name>`` from a COLMAP text model (see the module docstring).

    View ids follow ``images.txt``'s order (0, 1, …). Returns the scan folder and notes (e.g. ignored
    distortion). Raises :class:`DataError` / :class:`FormatError` naming the file or argument.
    """
    if not (scale_to_mm > 0 and depth_scale > 0):
        raise DataError(f"--scale-to-mm {scale_to_mm} and --depth-scale {depth_scale}: expected positive numbers")
    images_dir, model_dir, depth_dir = Path(images_dir), Path(model_dir), Path(depth_dir)
    for flag, folder in (("--images", images_dir), ("--model", model_dir), ("--depth", depth_dir)):
        if not folder.is_dir():
            raise DataError(f"{flag} {folder}: folder not found")
    cameras = read_cameras_txt(model_dir / "cameras.txt")
    images = read_images_txt(model_dir / "images.txt")
    if len(images) < 2:
        raise DataError(f"{model_dir / 'images.txt'}: adaptation compares views; expected at least 2 images, got 1")
    notes: list[str] = []
    views = {i: _view(img, cameras, images_dir, depth_dir, scale_to_mm, depth_scale, ignore_distortion, notes)
             for i, img in enumerate(images)}
    shapes = {v["initial"].shape for v in views.values()}
    if len(shapes) > 1:
        raise DataError(f"{depth_dir}: depth maps of different sizes {sorted(shapes)}; a scan needs one size")
    valid = np.concatenate([v["initial"][v["initial"] > 0] for v in views.values()])
    if valid.size == 0:
        raise DataError(f"{depth_dir}: no depth map holds a valid (> 0) value")
    low, high = np.percentile(valid, [0.5, 99.5])
    pairs = _pairs([v["extrinsics"].astype(np.float64) for v in views.values()], [v["initial"] for v in views.values()])
    meta = {"source": "colmap", "depth_range_mm": [float(low) * 0.9, float(high) * 1.1],
            "names": [img["name"] for img in images], "scale_to_mm": scale_to_mm}
    return write_scan(out_root, scan_name, views, pairs, meta), notes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``deltaz import-colmap``."""
    parser.add_argument("--images", required=True, help="folder of the images named in images.txt")
    parser.add_argument("--model", required=True, help="COLMAP text model folder (cameras.txt, images.txt)")
    parser.add_argument("--depth", required=True, help="folder of one depth map per image (.geometric.bin, .npy, ...)")
    parser.add_argument("--out", required=True, help="train-ready root to write the scan into")
    parser.add_argument("--scan", default="scan1", help="scan folder name (default scan1)")
    parser.add_argument("--scale-to-mm", type=float, default=1.0,
                        help="millimetres per model unit: multiplies depths and camera translations (default 1)")
    parser.add_argument("--depth-scale", type=float, default=1.0,
                        help="model units per stored depth value, e.g. 0.001 for PNG depths in 1/1000 units")
    parser.add_argument("--ignore-distortion", action="store_true",
                        help="use an OPENCV camera with distortion as a pinhole (default: refuse)")


def run(args: argparse.Namespace) -> int:
    """``deltaz import-colmap``: write the scan, print where; errors in one line."""
    try:
        path, notes = import_colmap(args.images, args.model, args.depth, args.out, args.scan, args.scale_to_mm,
                                    args.depth_scale, args.ignore_distortion)
    except DeltaZError as error:
        print(f"deltaz import-colmap: error: {error}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {path} (adapt to it: deltaz adapt --checkpoint CK --data-root {args.out} --scans {args.scan} ...)")
    return 0
