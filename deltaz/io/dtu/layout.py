"""The train-ready layout (DESIGN.md §3): read it, and write it so that a crash never fakes a scan.

::

    <root>/scan{N}/
      depths/{vid:03d}.npy        (H, W) float32, mm, 0 = no value
      intrinsics/{vid:03d}.npy    (3, 3) float32, K for the depth's resolution
      extrinsics/{vid:03d}.npy    (3, 4) float32, world-to-camera [R | t], mm
      images/{vid:03d}.png        optional, RGB uint8 at the depth's resolution (one K serves both),
                                  under the scan's primary light (meta "light", DTU default 3)
      images_light/{L}/{vid:03d}.png   optional, the same view under each other kept light L (0..6)
      initial/{vid:03d}.npy       optional, (H, W) float32 real initial depth (e.g. MVS output), mm
      pair.txt                    view selection (see deltaz.io.dtu.formats.read_pair_file)
      meta.json                   source, resolution [H, W], depth_range_mm, units, version,
                                  light (primary), lights (every light kept, when several), …

Lights: readers that know nothing about lights keep reading ``images/`` (the primary light).
:func:`list_lights` says which lights a scan holds and ``load_view(..., light=L)`` reads one of them.

A scan is **complete** when its ``meta.json`` exists. :class:`ScanWriter` builds a scan inside
``<root>/.tmp-scan{N}-<pid>``, writes ``meta.json`` last and only then renames the folder to
``scan{N}``; so ``kill -9`` at any moment leaves either the old state or a hidden temporary folder,
never a folder that looks complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from deltaz.io.dtu.formats import Pairs, atomic_write_text, read_pair_file, read_png, write_pair_file
from deltaz.core.errors import DataError, FormatError

__all__ = [
    "LAYOUT_VERSION",
    "META_KEYS",
    "ScanWriter",
    "write_scan",
    "list_scans",
    "is_complete_scan",
    "read_meta",
    "list_views",
    "list_lights",
    "meta_lights",
    "LIGHT_DIR",
    "load_view",
    "read_scan_pairs",
    "remove_stale_temp",
]

#: Version of the train-ready layout written into ``meta.json``.
LAYOUT_VERSION = 1

#: Keys every ``meta.json`` holds.
META_KEYS = (
    "source",
    "resolution",
    "depth_range_mm",
    "units",
    "version",
    "n_views",
    "light",
    "has_images",
    "has_initial",
)

#: Folder of the non-primary lights' images: ``images_light/{light}/{vid:03d}.png``.
LIGHT_DIR = "images_light"

_VIEW_FILE = re.compile(r"(\d{3,})\.npy")
_SCAN_NUMBER = re.compile(r"scan(\d+)")


def _view_name(view_id: int, suffix: str) -> str:
    return f"{int(view_id):03d}{suffix}"


def _scan_sort_key(name: str) -> tuple[int, int, str]:
    match = _SCAN_NUMBER.fullmatch(name)
    return (0, int(match.group(1)), name) if match else (1, 0, name)


# -------------------------------------------------------------------------------------------- reading


def is_complete_scan(scan_dir: str | os.PathLike) -> bool:
    """True when ``scan_dir`` is a folder holding ``meta.json`` (written last by :class:`ScanWriter`)."""
    scan_dir = Path(scan_dir)
    return scan_dir.is_dir() and (scan_dir / "meta.json").is_file()


def list_scans(root: str | os.PathLike) -> list[str]:
    """Names of the complete scans under ``root`` (folders with ``meta.json``), in scan-number order.

    ``scan2`` sorts before ``scan10``; names that are not ``scan{N}`` follow, alphabetically. Hidden
    folders (such as the temporary ``.tmp-scan{N}-<pid>``) are never listed.
    Raises DataError when ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder of train-ready scans, got no such folder")
    names = [p.name for p in root.iterdir() if not p.name.startswith(".") and is_complete_scan(p)]
    return sorted(names, key=_scan_sort_key)


def read_meta(scan_dir: str | os.PathLike) -> dict[str, Any]:
    """The scan's ``meta.json`` as a dict (holds at least :data:`META_KEYS`)."""
    path = Path(scan_dir) / "meta.json"
    if not path.is_file():
        raise DataError(f"{scan_dir}: not a complete scan (no meta.json); re-run `deltaz parse` to redo it")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FormatError(path, f"expected JSON, got a parse error: {error}") from None
    if not isinstance(meta, dict):
        raise FormatError(path, f"expected a JSON object, got {type(meta).__name__}")
    missing = [key for key in META_KEYS if key not in meta]
    if missing:
        raise FormatError(path, f"expected keys {list(META_KEYS)}, missing {missing}")
    return meta


def list_views(scan_dir: str | os.PathLike) -> list[int]:
    """Sorted view ids of a scan, from the files in ``depths/``."""
    depths = Path(scan_dir) / "depths"
    if not depths.is_dir():
        raise DataError(f"{scan_dir}: expected a depths/ folder, got none")
    ids = []
    for path in depths.iterdir():
        match = _VIEW_FILE.fullmatch(path.name)
        if match:
            ids.append(int(match.group(1)))
    if not ids:
        raise DataError(f"{depths}: expected depth files named NNN.npy, got none")
    return sorted(ids)


def meta_lights(meta: dict[str, Any]) -> list[int]:
    """The lights a scan's images exist for, from its ``meta.json`` dict (sorted).

    ``meta["lights"]`` when present; else ``[meta["light"]]`` for a scan with images and a known light;
    else ``[]`` (no images, or one ``images/`` of unknown light).
    """
    if meta.get("lights"):
        return sorted(int(v) for v in meta["lights"])
    if meta.get("has_images") and meta.get("light") is not None:
        return [int(meta["light"])]
    return []


def list_lights(scan_dir: str | os.PathLike) -> list[int]:
    """The lights a train-ready scan holds images for (see :func:`meta_lights`)."""
    return meta_lights(read_meta(scan_dir))


def _load_npy(path: Path, shape: tuple[int | None, ...], what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: missing {what}")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise FormatError(path, f"expected a .npy array ({what}), got an unreadable file: {error}") from None
    if (
        not isinstance(array, np.ndarray)
        or array.ndim != len(shape)
        or any(want is not None and got != want for got, want in zip(array.shape, shape))
    ):
        want_text = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise FormatError(path, f"expected {what} of shape {want_text}, got {getattr(array, 'shape', None)}")
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise FormatError(path, f"expected a numeric {what}, got dtype {array.dtype}")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise FormatError(path, f"expected finite values in {what}, got {int((~np.isfinite(array)).sum())} NaN/inf")
    return array


def _load_png(path: Path, shape: tuple[int, int]) -> np.ndarray:
    image = read_png(path)
    if image.shape[:2] != tuple(shape):
        raise FormatError(
            path,
            f"expected an image of {shape[0]}x{shape[1]} (H x W, the depth's size)"
            f", got {image.shape[0]}x{image.shape[1]}",
        )
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / np.float32(scale)


def load_view(
    scan_dir: str | os.PathLike,
    view_id: int,
    with_image: bool = True,
    with_initial: bool = True,
    light: int | None = None,
) -> dict[str, np.ndarray]:
    """Load one view of a train-ready scan.

    ``light``: None reads ``images/`` (the primary light); an index reads
    ``images_light/{light}/{vid:03d}.png``, or ``images/`` when ``light`` is the primary one. A light
    the scan does not hold raises DataError naming the lights it has.

    Returns a dict of float32 numpy arrays:
        ``depth (H, W)`` mm, 0 = no value; ``intrinsics (3, 3)``; ``extrinsics (3, 4)``
        world-to-camera; ``image (3, H, W)`` in [0, 1] when ``images/`` has it and ``with_image``;
        ``initial (H, W)`` mm when ``initial/`` has it and ``with_initial``.
    Raises:
        DataError when a required file is missing; FormatError (naming the file) when one is
        misshapen, non-finite or has negative depths.
    """
    scan_dir = Path(scan_dir)
    name = _view_name(view_id, ".npy")
    depth = _load_npy(scan_dir / "depths" / name, (None, None), "depth map (H, W)")
    if (depth < 0).any():
        raise FormatError(scan_dir / "depths" / name, "expected depths >= 0 (0 = no value), got negative values")
    view = {
        "depth": depth,
        "intrinsics": _load_npy(scan_dir / "intrinsics" / name, (3, 3), "intrinsics"),
        "extrinsics": _load_npy(scan_dir / "extrinsics" / name, (3, 4), "world-to-camera extrinsics"),
    }
    if with_image:
        png = scan_dir / "images" / _view_name(view_id, ".png")
        if light is not None:
            other = scan_dir / LIGHT_DIR / str(int(light)) / png.name
            if other.is_file():
                png = other
            elif read_meta(scan_dir).get("light") != int(light):
                raise DataError(f"{scan_dir}: no image of view {view_id} under light {light}; "
                                f"the scan holds lights {list_lights(scan_dir)}")
        if png.is_file():
            view["image"] = _load_png(png, depth.shape)
    if with_initial:
        path = scan_dir / "initial" / name
        if path.is_file():
            initial = _load_npy(path, depth.shape, "initial depth")
            if (initial < 0).any():
                raise FormatError(path, "expected initial depths >= 0 (0 = no value), got negative values")
            view["initial"] = initial
    return view


def read_scan_pairs(scan_dir: str | os.PathLike) -> Pairs:
    """The scan's ``pair.txt`` as ``{ref view id: [(src view id, score), …]}``, best first."""
    path = Path(scan_dir) / "pair.txt"
    if not path.is_file():
        raise DataError(f"{scan_dir}: expected a pair.txt, got none")
    return read_pair_file(path)


# -------------------------------------------------------------------------------------------- writing


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp(root: str | os.PathLike, scan_name: str) -> list[Path]:
    """Delete ``<root>/.tmp-{scan_name}-<pid>`` (and ``.old-…``) folders left by runs no longer alive."""
    root = Path(root)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for path in [*root.glob(f".tmp-{scan_name}-*"), *root.glob(f".old-{scan_name}-*")]:
        pid_text = path.name.rsplit("-", 1)[-1]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and _pid_alive(int(pid_text)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _image_to_uint8(image: np.ndarray, shape: tuple[int, int], where: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[1:] == shape:
        image = image.transpose(1, 2, 0)
    if image.shape != (*shape, 3):
        raise DataError(f"{where}: expected an image (3, H, W) or (H, W, 3) with H, W = {shape}, got {image.shape}")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    image = image.astype(np.float64)
    if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        raise DataError(
            f"{where}: expected a float image with values in [0, 1] (or uint8), got range "
            f"[{np.nanmin(image):.3g}, {np.nanmax(image):.3g}]"
        )
    return np.ascontiguousarray(np.round(image * 255).astype(np.uint8))


class ScanWriter:
    """Write one train-ready scan view by view, then publish it atomically.

    Usage::

        with ScanWriter(root, "scan1") as writer:
            for view_id, view in views.items():
                writer.add_view(view_id, depth=..., intrinsics=..., extrinsics=..., image=..., initial=...)
            path = writer.finish(pairs, meta)

    Views go into ``<root>/.tmp-scan1-<pid>``; :meth:`finish` writes ``pair.txt`` and ``meta.json``
    (last) and renames the folder to ``<root>/scan1``, replacing an older one. Leaving the ``with``
    block without :meth:`finish` (an exception) deletes the temporary folder.
    """

    def __init__(self, root: str | os.PathLike, scan_name: str):
        if not scan_name or scan_name.startswith(".") or "/" in scan_name or os.sep in scan_name:
            raise DataError(f"scan name must be a plain folder name like 'scan1', got {scan_name!r}")
        self.root = Path(root)
        self.scan_name = scan_name
        self.final_dir = self.root / scan_name
        self.tmp_dir = self.root / f".tmp-{scan_name}-{os.getpid()}"
        self.root.mkdir(parents=True, exist_ok=True)
        remove_stale_temp(self.root, scan_name)
        if self.tmp_dir.exists():
            shutil.rmtree(self.tmp_dir)
        for sub in ("depths", "intrinsics", "extrinsics"):
            (self.tmp_dir / sub).mkdir(parents=True)
        self.shape: tuple[int, int] | None = None
        self.view_ids: list[int] = []
        self.has_images: bool | None = None
        self.has_initial: bool | None = None
        self.lights: list[int] = []
        self.valid_min = np.inf
        self.valid_max = -np.inf
        self.finished = False

    def __enter__(self) -> ScanWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.finished:
            self.abort()

    def abort(self) -> None:
        """Delete the temporary folder; the published scan (if any) is untouched."""
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def add_view(
        self,
        view_id: int,
        depth: np.ndarray,
        intrinsics: np.ndarray,
        extrinsics: np.ndarray,
        image: np.ndarray | None = None,
        initial: np.ndarray | None = None,
        light_images: dict[int, np.ndarray] | None = None,
    ) -> None:
        """Add one view. ``depth``/``initial`` (H, W) mm ≥ 0, finite; ``intrinsics`` (3, 3);
        ``extrinsics`` (3, 4) or (4, 4) world-to-camera; ``image`` (3, H, W) float in [0, 1] or
        (H, W, 3) uint8, the primary light; ``light_images`` ``{light: image}`` the other lights, written
        to ``images_light/{light}/``. Every view of a scan must have the same H, W, and either all or
        none of the views carry an image (and likewise an initial depth and each other light)."""
        where = f"{self.scan_name} view {view_id}"
        view_id = int(view_id)
        if view_id < 0 or view_id in self.view_ids:
            raise DataError(f"{where}: expected a new non-negative view id, got {view_id}")
        depth = np.asarray(depth, dtype=np.float32)
        if depth.ndim != 2 or depth.size == 0:
            raise DataError(f"{where}: expected depth (H, W), got shape {depth.shape}")
        if self.shape is None:
            self.shape = depth.shape
        elif depth.shape != self.shape:
            raise DataError(f"{where}: expected depth of shape {self.shape} like the other views, got {depth.shape}")
        if not np.isfinite(depth).all() or (depth < 0).any():
            raise DataError(f"{where}: expected finite depths >= 0 (0 = no value), got NaN/inf or negative values")
        K = np.asarray(intrinsics, dtype=np.float32)
        E = np.asarray(extrinsics, dtype=np.float32)
        if K.shape != (3, 3) or not np.isfinite(K).all():
            raise DataError(f"{where}: expected finite intrinsics (3, 3), got shape {K.shape}")
        if E.shape not in ((3, 4), (4, 4)) or not np.isfinite(E).all():
            raise DataError(f"{where}: expected finite extrinsics (3, 4) or (4, 4), got shape {E.shape}")
        for kind, value in (("image", image), ("initial", initial)):
            flag = getattr(self, f"has_{'images' if kind == 'image' else 'initial'}")
            if flag is not None and flag != (value is not None):
                raise DataError(f"{where}: expected every view {'with' if flag else 'without'} {kind}, got a mix")
        name = _view_name(view_id, ".npy")
        import imageio.v3 as iio

        if image is not None:
            (self.tmp_dir / "images").mkdir(exist_ok=True)
            iio.imwrite(
                self.tmp_dir / "images" / _view_name(view_id, ".png"),
                _image_to_uint8(image, depth.shape, where),
                plugin="pillow",
            )
        lights = sorted(int(k) for k in (light_images or {}))
        if lights and image is None:
            raise DataError(f"{where}: images of other lights {lights} need the primary image too")
        if self.view_ids and lights != self.lights:
            raise DataError(f"{where}: expected images of the lights {self.lights} like the other views, got {lights}")
        for light in lights:
            folder = self.tmp_dir / LIGHT_DIR / str(light)
            folder.mkdir(parents=True, exist_ok=True)
            iio.imwrite(folder / _view_name(view_id, ".png"),
                        _image_to_uint8(light_images[light], depth.shape, where), plugin="pillow")
        self.lights = lights
        if initial is not None:
            initial = np.asarray(initial, dtype=np.float32)
            if initial.shape != depth.shape or not np.isfinite(initial).all() or (initial < 0).any():
                raise DataError(
                    f"{where}: expected a finite initial depth >= 0 of shape {depth.shape}, got shape {initial.shape}"
                )
            (self.tmp_dir / "initial").mkdir(exist_ok=True)
            np.save(self.tmp_dir / "initial" / name, initial)
        np.save(self.tmp_dir / "depths" / name, depth)
        np.save(self.tmp_dir / "intrinsics" / name, K)
        np.save(self.tmp_dir / "extrinsics" / name, E[:3, :4].copy())
        self.has_images = image is not None
        self.has_initial = initial is not None
        valid = depth[depth > 0]
        if valid.size:
            self.valid_min = min(self.valid_min, float(valid.min()))
            self.valid_max = max(self.valid_max, float(valid.max()))
        self.view_ids.append(view_id)

    def finish(self, pairs: Pairs, meta: dict[str, Any]) -> Path:
        """Write ``pair.txt`` and ``meta.json`` (last), then publish the scan; returns its path.

        ``meta`` gives at least ``source``; ``light`` defaults to None and ``depth_range_mm`` to the
        range of the valid depths. ``resolution``, ``n_views``, ``has_images``, ``has_initial``,
        ``units`` and ``version`` are filled in here. ``pairs`` may name only added views.
        """
        if not self.view_ids:
            raise DataError(f"{self.scan_name}: expected at least one view, got none")
        known = set(self.view_ids)
        for ref, sources in pairs.items():
            unknown = sorted({int(ref), *(int(src) for src, _ in sources)} - known)
            if unknown:
                raise DataError(f"{self.scan_name}: pairs name view ids {unknown} that the scan does not have")
        if "source" not in meta:
            raise DataError(f"{self.scan_name}: meta must say where the scan came from ('source')")
        full = dict(meta)
        full.setdefault("light", None)
        if "depth_range_mm" not in full:
            if not np.isfinite(self.valid_min):
                raise DataError(f"{self.scan_name}: no valid depth in any view and no depth_range_mm given")
            full["depth_range_mm"] = [self.valid_min, self.valid_max]
        low, high = (float(v) for v in full["depth_range_mm"])
        if not (np.isfinite(low) and np.isfinite(high) and 0 <= low < high):
            raise DataError(
                f"{self.scan_name}: expected depth_range_mm [min, max] with 0 <= min < max"
                f", got {full['depth_range_mm']}"
            )
        full.update(
            resolution=[int(self.shape[0]), int(self.shape[1])],
            depth_range_mm=[low, high],
            units="mm",
            version=LAYOUT_VERSION,
            n_views=len(self.view_ids),
            has_images=bool(self.has_images),
            has_initial=bool(self.has_initial),
        )
        write_pair_file(
            self.tmp_dir / "pair.txt", {int(r): [(int(s), float(w)) for s, w in src] for r, src in pairs.items()}
        )
        atomic_write_text(self.tmp_dir / "meta.json", json.dumps(full, indent=2, sort_keys=True) + "\n")
        old = None
        if self.final_dir.exists():
            old = self.root / f".old-{self.scan_name}-{os.getpid()}"
            if old.exists():
                shutil.rmtree(old)
            os.replace(self.final_dir, old)
        os.replace(self.tmp_dir, self.final_dir)
        self.finished = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.final_dir


def write_scan(
    dst_root: str | os.PathLike,
    scan_name: str,
    views: dict[int, dict[str, np.ndarray]],
    pairs: Pairs,
    meta: dict[str, Any],
) -> Path:
    """Write a whole scan at once: ``views = {view_id: {"depth", "intrinsics", "extrinsics",
    optional "image", "initial", "light_images"}}`` (see :meth:`ScanWriter.add_view`). Returns ``<dst_root>/<scan_name>``."""
    with ScanWriter(dst_root, scan_name) as writer:
        for view_id in sorted(views):
            view = views[view_id]
            missing = [k for k in ("depth", "intrinsics", "extrinsics") if k not in view]
            if missing:
                raise DataError(f"{scan_name} view {view_id}: missing {missing}")
            writer.add_view(
                view_id,
                depth=view["depth"],
                intrinsics=view["intrinsics"],
                extrinsics=view["extrinsics"],
                image=view.get("image"),
                initial=view.get("initial"),
                light_images=view.get("light_images"),
            )
        return writer.finish(pairs, meta)
