"""Write one train-ready scan (DESIGN.md §3) so that a crash never fakes a complete scan.

:class:`ScanWriter` builds ``<root>/scan{N}`` inside ``<root>/.tmp-scan{N}-<pid>``, writes
``meta.json`` last and only then renames the folder into place; :func:`write_scan` writes a whole scan
at once. The layout itself and its readers are in :mod:`deltaz.io.dtu.layout`.

``meta.json`` ``version`` (:data:`LAYOUT_VERSION`): 1, the first layout; 2, ``deltaz parse`` records
``source: "synthetic"`` for folders made by ``deltaz synth`` (version 1 wrote ``"dtu"`` for them too).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np

from deltaz.core.errors import DataError
from deltaz.core.atomic import atomic_write_text
from deltaz.io.dtu.formats import Pairs, write_pair_file

__all__ = ["LAYOUT_VERSION", "LIGHT_DIR", "ScanWriter", "write_scan", "remove_stale_temp", "view_name"]

#: Version of the train-ready layout written into ``meta.json`` (see the module docstring).
LAYOUT_VERSION = 2

#: Folder of the non-primary lights' images: ``images_light/{light}/{vid:03d}.png``.
LIGHT_DIR = "images_light"


def view_name(view_id: int, suffix: str) -> str:
    """File name of a view: ``{vid:03d}{suffix}``."""
    return f"{int(view_id):03d}{suffix}"


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
        name = view_name(view_id, ".npy")
        if image is not None:
            (self.tmp_dir / "images").mkdir(exist_ok=True)
            iio.imwrite(
                self.tmp_dir / "images" / view_name(view_id, ".png"),
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
            iio.imwrite(folder / view_name(view_id, ".png"),
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
