"""Write a synthetic dataset in MVSNet's ``dtu_training`` layout (what ``deltaz synth`` does).

::

    <out>/Cameras/train/{vid:08d}_cam.txt                       160×128 cameras, one set for all scans
    <out>/Cameras/scan{N}_train/{vid:08d}_cam.txt               style "real" only: the same cameras with
                                                                the scan's own depth range
    <out>/Cameras/pair.txt                                      10 best sources per view, with scores
    <out>/Depths/scan{N}_train/depth_map_{vid:04d}.pfm          160×128 float32 z-depth mm, 0 = nothing
    <out>/Rectified/scan{N}_train/rect_{vid+1:03d}_{light}_r5000.png   width×height RGB (note the +1)
    <out>/synth.json                                            the settings the folder was made with;
                                                                its "generator" marks the scans as
                                                                synthetic for ``deltaz parse``

**Styles.** ``style="real"`` (the default) renders :mod:`deltaz.io.synthetic.scene_real` scenes (walls,
corners, thin structures, CC0 photos, varying scale and distance) with
:func:`deltaz.io.synthetic.lighting.render_images` (cast shadows, speculars, ``supersample``×
``supersample`` anti-aliasing, per-view exposure/white balance and sensor noise); ``style="classic"``
renders the original table-top scenes with Lambertian shading, byte for byte as before. The depth
maps are exact z-depth in both styles (never supersampled).

**Depth ranges.** Classic scenes stay inside DTU's 425–931.15 mm, so every cam file carries DTU's
``425 2.5 192 931.15``. A realistic scan's depth range is measured on its 49 ground-truth depth maps
(widened by 2 %, 192 planes at ``1.06 × interval`` as MVSNet samples them) and written into its own
``Cameras/scan{N}_train/`` cam files, which the parser prefers; ``Cameras/train/`` then carries the
union of the ranges of the scans of the run.

Scans are numbered ``1..N`` (scan ``k`` is the same scene whatever ``N`` is: its generator is seeded
by ``(seed, k)``). Under MVSNet's split, scans 2, 6, 7, 8 are training scans, 3 and 5 validation
scans and 1 and 4 test scans, so ``N = 8`` covers all three.

Every file is written atomically (temporary file, then rename), so a killed run leaves only whole
files. Running again with the same settings over the same folder renders only the views whose files
are missing (a complete folder is left as it is, except ``pair.txt`` and the cam files, which are
rewritten with identical bytes); more or fewer scans with otherwise equal settings add scans (or use
the first ones; ``pair.txt`` is averaged over the scans asked for); other different settings over an
existing folder raise :class:`~deltaz.core.errors.ConfigError` unless ``overwrite=True``, which re-renders
everything. The
output is byte-identical for the same settings on the same software stack.
Explained in notebooks/01_dtu_on_disk.ipynb.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from deltaz.io.dtu.cameras import scale_intrinsics
from deltaz.io.dtu.formats import (
    SYNTH_GENERATOR,
    SYNTH_MANIFEST,
    atomic_write_bytes,
    atomic_write_text,
    read_pfm,
    write_cam_file,
    write_pair_file,
    write_pfm,
)
from deltaz.core.errors import ConfigError, DataError
from deltaz.io.synthetic.pairs import select_pairs, view_scores
from deltaz.io.synthetic.lighting import RenderOptions, render_images
from deltaz.io.synthetic.render import render_depth, render_view, shade_lights
from deltaz.io.synthetic.rig import (
    DEPTH_HEIGHT,
    DEPTH_INTERVAL_MM,
    DEPTH_MAX_MM,
    DEPTH_MIN_MM,
    DEPTH_NUM,
    DEPTH_WIDTH,
    dtu_intrinsics,
    make_rig,
    rig_from_calibration,
)
from deltaz.io.synthetic.scene import Scene, random_scene, scene_rng
from deltaz.io.synthetic.scene_real import random_real_scene

__all__ = [
    "FORMAT_VERSION",
    "encode_png",
    "generate_dataset",
    "dataset_cameras",
    "make_scan_scene",
    "cam_path",
    "depth_path",
    "image_path",
    "scan_cam_path",
    "STYLES",
    "depth_range_of",
]

FORMAT_VERSION = 1
N_SOURCES = 10
#: Scene and rendering styles of :func:`generate_dataset`.
STYLES = ("real", "classic")
#: Realistic views must keep every depth at least this far from the camera (mm).
_NEAREST_MM = 150.0


def cam_path(out_dir: Path, view_id: int) -> Path:
    return Path(out_dir) / "Cameras" / "train" / f"{view_id:08d}_cam.txt"


def scan_cam_path(out_dir: Path, scan: int, view_id: int) -> Path:
    return Path(out_dir) / "Cameras" / f"scan{scan}_train" / f"{view_id:08d}_cam.txt"


def depth_path(out_dir: Path, scan: int, view_id: int) -> Path:
    return Path(out_dir) / "Depths" / f"scan{scan}_train" / f"depth_map_{view_id:04d}.pfm"


def image_path(out_dir: Path, scan: int, view_id: int, light: int) -> Path:
    return Path(out_dir) / "Rectified" / f"scan{scan}_train" / f"rect_{view_id + 1:03d}_{light}_r5000.png"


def dataset_cameras(n_views: int, calibration: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """160×128 ``K (V, 3, 3)``, world-to-camera ``E (V, 3, 4)`` and ``scene_to_world (3, 4)``.

    Without ``calibration``: :func:`~deltaz.io.synthetic.rig.make_rig` in the scene frame (identity
    placement). With it: the real DTU cameras, and the scene placed where they converge.
    """
    if calibration is None:
        E = make_rig(n_views)
        K = np.repeat(dtu_intrinsics()[None], n_views, axis=0)
        return K, E, np.eye(3, 4)
    return rig_from_calibration(calibration, n_views)


def make_scan_scene(
    seed: int,
    scan: int,
    scene_to_world: np.ndarray | None = None,
    style: str = "classic",
    camera_azimuth: float = -np.pi / 2,
) -> Scene:
    """The scene of scan ``scan`` (1-based) of a dataset generated with ``seed`` and ``style``.

    ``style`` defaults to ``"classic"`` (the table-top scenes existing callers rely on);
    :func:`generate_dataset` passes its own. ``camera_azimuth`` (radians, scene frame): the side the
    cameras are on, where realistic scenes put no wall (:func:`camera_azimuth_of`).
    """
    if style not in STYLES:
        raise ConfigError(f"style: expected one of {STYLES}, got {style!r}")
    rng = scene_rng(seed, scan)
    scene = random_real_scene(rng, camera_azimuth) if style == "real" else random_scene(rng)
    return scene if scene_to_world is None else scene.placed(scene_to_world)


def camera_azimuth_of(E: np.ndarray, scene_to_world: np.ndarray) -> float:
    """Azimuth (radians, scene frame) of the mean camera centre of world-to-camera ``E (V, 3, 4)``."""
    R, t = E[:, :, :3], E[:, :, 3]
    centers = -np.einsum("nji,nj->ni", R, t)
    F = np.asarray(scene_to_world, dtype=np.float64)[:3, :4]
    mean = F[:, :3].T @ (centers.mean(axis=0) - F[:, 3])
    return float(np.arctan2(mean[1], mean[0]))


def depth_range_of(depths: np.ndarray, margin: float = 0.02) -> tuple[float, float, int, float]:
    """Cam-file depth line ``(depth_min, depth_interval, depth_num, depth_max)`` (mm) covering ``depths``.

    The valid depths' range widened by ``margin`` of itself on both sides (at least 1 mm), sampled by
    192 planes spaced ``1.06 × depth_interval`` (MVSNet-PyTorch's DTU convention), so
    ``depth_max = depth_min + 191 × 1.06 × depth_interval``; rounded outwards to 0.01 mm.
    """
    valid = np.asarray(depths)[np.asarray(depths) > 0]
    if valid.size == 0:
        return DEPTH_MIN_MM, DEPTH_INTERVAL_MM, DEPTH_NUM, DEPTH_MAX_MM
    low, high = float(valid.min()), float(valid.max())
    pad = max(margin * (high - low), 1.0)
    depth_min = np.floor((low - pad) * 100) / 100
    interval = np.ceil((high + pad - depth_min) / ((DEPTH_NUM - 1) * 1.06) * 1e4) / 1e4
    depth_max = np.ceil((depth_min + (DEPTH_NUM - 1) * 1.06 * interval) * 100) / 100
    return float(depth_min), float(interval), DEPTH_NUM, float(depth_max)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray, level: int = 1) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` uint8 RGB image: 8-bit truecolour, every row with the "up" filter,
    zlib level ``level``. Any PNG reader decodes it. Kept instead of imageio/Pillow because it is 2-3x
    faster at the same size (a 640x512 render: 13 ms against 28 ms for Pillow at compress_level=1 and
    145 ms at its default; PNG is ~7 % of a realistic view in ``benchmarks/bench_synth.py``), and
    ``zlib`` releases the GIL, so the render threads overlap.
    """
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"encode_png: expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    rows = image.reshape(height, width * 3)
    raw = np.empty((height, width * 3 + 1), dtype=np.uint8)
    raw[:, 0] = 2  # filter type "up": byte minus the byte above (mod 256)
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])  # uint8 arithmetic wraps mod 256, as PNG wants
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), level))
        + _png_chunk(b"IEND", b"")
    )


def _check_settings(out_dir: Path, settings: dict, overwrite: bool) -> None:
    manifest = out_dir / SYNTH_MANIFEST
    if not manifest.exists() or overwrite:
        return
    try:
        previous = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"--out {out_dir}: cannot read {manifest.name} ({exc}); pass --overwrite to regenerate"
        ) from None
    # n_scans may grow or shrink: scan k is the same scene whatever the number of scans.
    changed = sorted(k for k in set(previous) | set(settings) if k != "n_scans" and previous.get(k) != settings.get(k))
    if changed:
        details = ", ".join(f"{k}: {previous.get(k)!r} -> {settings.get(k)!r}" for k in changed)
        raise ConfigError(
            f"--out {out_dir}: already holds a synthetic dataset made with other settings ({details}); "
            "choose another folder or pass --overwrite"
        )


@contextlib.contextmanager
def _torch_threads(n: int):
    """Run with ``n`` torch threads (the render threads would otherwise oversubscribe the cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _render_one(out_dir, scene, scan, view_id, K_depth, K_image, E, width, height, n_lights, redo,
                options: RenderOptions | None = None, seed: int = 0) -> np.ndarray:
    """Render and write one view of one scan (unless its files exist); return its 160×128 depth.

    ``options`` None: classic Lambertian shading; else :func:`render_images` with these options.
    """
    d_path = depth_path(out_dir, scan, view_id)
    i_paths = [image_path(out_dir, scan, view_id, light) for light in range(n_lights)]
    if not redo and d_path.exists() and all(p.exists() for p in i_paths):
        return read_pfm(d_path)
    depth = render_depth(scene, K_depth, E, DEPTH_HEIGHT, DEPTH_WIDTH)
    valid = depth[depth > 0]
    low, high = (DEPTH_MIN_MM, DEPTH_MAX_MM) if options is None else (_NEAREST_MM, np.inf)
    if valid.size and (valid.min() < low or valid.max() > high):
        raise DataError(
            f"scan{scan} view {view_id}: depths {valid.min():.1f}..{valid.max():.1f} mm leave the range "
            f"{low}..{high} mm; the scene or the cameras are misplaced"
        )
    if options is None:
        images = shade_lights(render_view(scene, K_image, E, height, width), range(n_lights))
    else:
        images = render_images(scene, K_image, E, height, width, range(n_lights), (seed, scan, view_id), options)
    for path, image in zip(i_paths, images):
        atomic_write_bytes(path, encode_png(image))
    write_pfm(d_path, depth)  # last: a view counts as done once its depth exists with its images
    return depth


def generate_dataset(
    out_dir: str | Path,
    n_scans: int,
    seed: int = 0,
    n_views: int = 49,
    n_lights: int = 7,
    width: int = 640,
    height: int = 512,
    calibration: str | Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    workers: int = 2,
    style: str = "real",
    supersample: int = 2,
    shadows: bool = True,
) -> Path:
    """Render ``n_scans`` random DTU-like scans into ``out_dir`` (MVSNet's ``dtu_training`` layout).

    Args:
        out_dir: output folder (created).
        n_scans: scans ``scan1 .. scan{n_scans}``.
        seed: base seed; scan ``k``'s scene depends only on ``(seed, k)``.
        n_views: cameras (DTU: 49); ``n_lights``: lighting conditions per view (DTU: 7).
        width, height: image size; the image camera is the 160×128 camera scaled by
            ``(width/160, height/128)`` (640×512 = ×4, DTU/MVSNet convention).
        calibration: a folder of raw DTU projections (``pos_NNN.txt`` or ``rect_NNN_3_r5000.png.P``)
            to render from the real cameras instead of the synthetic rig.
        progress: show a tqdm bar.
        overwrite: re-render everything even if the folder holds files from earlier runs.
        workers: views rendered at once (threads; torch runs single-threaded meanwhile).
        style: ``"real"`` (default) or ``"classic"`` (see the module docstring).
        supersample: ``"real"`` only: samples per pixel along each axis (1 = no anti-aliasing).
        shadows: ``"real"`` only: cast shadows (the most expensive part after tracing).
    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.
    """
    for name, value, low in (("n_scans", n_scans, 1), ("n_views", n_views, 2), ("n_lights", n_lights, 1),
                             ("width", width, 8), ("height", height, 8), ("workers", workers, 1)):
        if int(value) != value or value < low:
            raise ConfigError(f"{name}: expected an integer >= {low}, got {value!r}")
    if style not in STYLES:
        raise ConfigError(f"style: expected one of {STYLES}, got {style!r}")
    options = RenderOptions(supersample=supersample, shadows=bool(shadows)) if style == "real" else None
    out_dir = Path(out_dir)
    settings = {
        "format_version": FORMAT_VERSION,
        "generator": SYNTH_GENERATOR,  # the parser records source "synthetic" for this folder's scans
        "seed": int(seed),
        "n_scans": int(n_scans),
        "n_views": int(n_views),
        "n_lights": int(n_lights),
        "width": int(width),
        "height": int(height),
        "calibration": None if calibration is None else os.path.abspath(calibration),
        "style": style,
        **({} if options is None else {"supersample": int(supersample), "shadows": bool(shadows)}),
        "scans": "scan1..scanN, scene of scan k seeded by (seed, k)",
        "depth": "160x128 float32 z-depth in mm, 0 = nothing hit",
    }
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: expected a folder, got a file")
    _check_settings(out_dir, settings, overwrite)
    K, E, scene_to_world = dataset_cameras(n_views, calibration)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / SYNTH_MANIFEST, json.dumps(settings, indent=2) + "\n")
    _write_cams(out_dir, K, E, (DEPTH_MIN_MM, DEPTH_INTERVAL_MM, DEPTH_NUM, DEPTH_MAX_MM))
    bar = tqdm(total=n_scans * n_views, desc="deltaz synth", unit="view", disable=not progress)
    with _torch_threads(1 if workers > 1 else torch.get_num_threads()), ThreadPoolExecutor(workers) as pool:
        scores = _render_scans(out_dir, pool, bar, K, E, scene_to_world, settings, options, overwrite)
    bar.close()
    write_pair_file(out_dir / "Cameras" / "pair.txt", select_pairs(scores / n_scans, N_SOURCES))
    return out_dir


def _render_scans(out_dir, pool, bar, K, E, scene_to_world, settings: dict, options, overwrite: bool) -> np.ndarray:
    """Render every scan of ``settings`` view-parallel on ``pool``; write the realistic scans' cam files.

    Returns the summed pair scores ``(V, V)`` over the scans.
    """
    n_views, width, height, seed = settings["n_views"], settings["width"], settings["height"], settings["seed"]
    K_image = scale_intrinsics(K, width / DEPTH_WIDTH, height / DEPTH_HEIGHT)
    azimuth = camera_azimuth_of(E, scene_to_world)
    scores = np.zeros((n_views, n_views))
    extremes = []
    for scan in range(1, settings["n_scans"] + 1):
        scene = make_scan_scene(seed, scan, scene_to_world, settings["style"], azimuth)
        render_depth(scene, K[0], E[0], 2, 2)  # warm the scene's caches before the threads share it
        jobs = [
            pool.submit(
                _render_one, out_dir, scene, scan, v, K[v], K_image[v], E[v], width, height, settings["n_lights"],
                overwrite, options, seed,
            )
            for v in range(n_views)
        ]
        depths = []
        for job in jobs:
            depths.append(job.result())
            bar.update(1)
        depths = np.stack(depths)
        scores += view_scores(depths, K, E)
        if options is not None:
            _write_cams(out_dir, K, E, depth_range_of(depths), scan)
            extremes += [depths[depths > 0].min(initial=np.inf), depths[depths > 0].max(initial=0.0)]
    if extremes:  # the shared cameras: the union of the scans' ranges
        _write_cams(out_dir, K, E, depth_range_of(np.array([e for e in extremes if np.isfinite(e) and e > 0])))
    return scores


def _write_cams(out_dir: Path, K: np.ndarray, E: np.ndarray, depth_line: tuple, scan: int | None = None) -> None:
    """Cam files of every view with ``depth_line`` (:func:`depth_range_of`): ``Cameras/train`` or the scan's own."""
    for view_id in range(len(K)):
        path = cam_path(out_dir, view_id) if scan is None else scan_cam_path(out_dir, scan, view_id)
        write_cam_file(path, K[view_id], E[view_id], *depth_line)
