"""The training dataset: a reference view and its best source views of DTU-like train-ready scans, as a dict of
``(V, …)`` tensors per sample (the sample layout and the initial-depth rules: :mod:`deltaz.data`)."""

from __future__ import annotations

import hashlib
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from deltaz.core.errors import ConfigError, DataError
from deltaz.data.augment import check_strength, photometric_augment
from deltaz.io.dtu import layout
from deltaz.ops.align import estimate_initial_depth, load_estimator, sparse_points_from_depth
from deltaz.ops.corrupt import parse_initial_mix, sample_seed, simulate_initial_depth
from deltaz.ops.mvs import load_stereo, load_sweep, stereo_scan, sweep_scan

__all__ = ["DepthRefinementDataset", "INITIAL_SOURCES"]

#: Where a view's initial depth comes from (see :mod:`deltaz.data`): ``initial/`` when present else simulated,
#: always simulated, or an external estimator.
INITIAL_SOURCES = ("auto", "simulate", "estimator")

_REQUIRED_DIRS = ("depths", "intrinsics", "extrinsics")



class DepthRefinementDataset(Dataset):
    """Reference view + best source views of DTU-like train-ready scans (layout of docs/DESIGN.md §3).

    Args:
        data_root: folder holding ``scan*/`` train-ready scans.
        scans: the scan names to use (a split); all of them must exist under ``data_root``.
        num_views: views per sample, ``V`` (1 = the reference alone).
        preset: the initial-depth model when a view has no ``initial/`` depth: a :mod:`deltaz.ops.corrupt`
            preset, ``"planesweep"`` / ``"planesweep_raw"`` (:mod:`deltaz.ops.mvs` on the scan's images after /
            before its geometric filter, computed once and cached in ``<scan>/planesweep/``), or a weighted mix ``"planesweep:0.6,mvs:0.4"``
            (:func:`deltaz.ops.corrupt.parse_initial_mix`) drawn per (view, epoch) in training and fixed per view
            otherwise.
        train: random corruption per epoch (True) or the fixed per-view corruption (False).
        seed: base seed of the training corruption.
        use_images: also return ``image``; every scan must then have its ``images/``.
        initial_source: ``"auto"``, ``"simulate"`` or ``"estimator"`` (see the module docstring).
        estimator: with ``"estimator"``: a callable ``image (3, H, W) -> (h, w)`` prediction, an
            :class:`deltaz.ops.align.ExternalEstimator`, or its ``"package.module:name"``
            (:func:`deltaz.ops.align.load_estimator`); needs the scans' ``images/``. With ``num_workers > 0`` it
            must be picklable.
        align_fraction: share of the ground-truth pixels used as sparse metric points for the alignment.
        crop_hw: ``(h, w)``: training samples are random windows of that size (every view the same window,
            intrinsics shifted), so a step costs less and a time budget buys more steps; None = whole views.
        image_augment: strength in [0, 1] of the photometric augmentation of training images
            (:func:`deltaz.data.augment.photometric_augment`, drawn per (seed, epoch, index)); 0 = off.

    Raises :class:`DataError` naming the scan/file for a missing scan, missing files, too few views or
    source views, and :class:`ConfigError` for impossible arguments.
    """

    def __init__(
        self,
        data_root: str | Path,
        scans: Sequence[str],
        num_views: int = 2,
        preset: str = "mvs",
        train: bool = True,
        seed: int = 0,
        use_images: bool = False,
        initial_source: str = "auto",
        estimator: Any = None,
        align_fraction: float = 0.01,
        crop_hw: Sequence[int] | None = None,
        image_augment: float = 0.0,
    ):
        if not isinstance(num_views, int) or num_views < 1:
            raise ConfigError(f"num_views={num_views!r}: must be an integer >= 1")
        if initial_source not in INITIAL_SOURCES:
            raise ConfigError(f"initial_source={initial_source!r}: must be one of {INITIAL_SOURCES}")
        if (estimator is not None) != (initial_source == "estimator"):
            raise ConfigError(f"estimator={estimator!r}: give one exactly when initial_source='estimator'")
        if isinstance(estimator, str):
            estimator = load_estimator(estimator)
        self.initial_source = initial_source
        self.estimator = estimator
        self.align_fraction = float(align_fraction)
        self.data_root = Path(data_root)
        self.scans = list(scans)
        self.num_views = num_views
        self.preset = preset
        self.mix = parse_initial_mix(preset)
        self.crop_hw = _crop_size(crop_hw)
        self.image_augment = check_strength(image_augment)
        self.train = bool(train)
        self.seed = int(seed)
        self.use_images = bool(use_images)
        self.epoch = 0
        self.meta: dict[str, dict] = {}
        self.samples: list[tuple[str, tuple[int, ...]]] = []  # (scan, (ref, src1, ...))
        if not self.scans:
            raise DataError(f"{self.data_root}: no scans given to DepthRefinementDataset")
        for scan in self.scans:
            scan_dir = self.data_root / scan
            if not scan_dir.is_dir():
                raise DataError(f"{scan_dir}: scan folder not found under data_root {self.data_root}")
            self.meta[scan] = layout.read_meta(scan_dir)
            views = layout.list_views(scan_dir)
            _check_scan_files(scan_dir, views, self.use_images or self.estimator is not None)
            if len(views) < num_views:
                raise DataError(
                    f"{scan_dir}: has {len(views)} view(s) but num_views={num_views}; "
                    f"lower --num-views to at most {len(views)}"
                )
            pairs = layout.read_scan_pairs(scan_dir) if num_views > 1 else {}
            available = set(views)
            n_before = len(self.samples)
            for ref in views:
                sources: list[int] = []
                if num_views > 1:
                    if ref not in pairs:
                        continue  # no pair.txt row: the view serves only as a source (as `deltaz parse` warns)
                    sources = [int(s) for s, _score in pairs[ref] if int(s) in available and int(s) != ref]
                    sources = sources[: num_views - 1]
                    if len(sources) < num_views - 1:
                        raise DataError(
                            f"{scan_dir / 'pair.txt'}: view {ref} lists only {len(sources)} source view(s) "
                            f"present in the scan, num_views={num_views} needs {num_views - 1}; "
                            f"lower --num-views"
                        )
                self.samples.append((scan, (int(ref), *sources)))
            if len(self.samples) == n_before:
                raise DataError(f"{scan_dir / 'pair.txt'}: no row for any of the scan's views {views[:5]}...; "
                                "re-run `deltaz parse` for this scan")
        if initial_source in ("auto", "simulate"):
            self._prepare_stereo()
        # LRU of loaded views and simulated initial depths (a view recurs as a source of its neighbours)
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_size = 256

    # ----------------------------------------------------------------- sizes
    def __len__(self) -> int:
        return len(self.samples)

    def scene_of(self, index: int) -> str:
        """The scan of sample ``index`` (what :class:`SameSceneBatchSampler` groups by)."""
        return self.samples[index][0]

    @property
    def scenes(self) -> list[str]:
        """The scan of every sample, in index order."""
        return [scan for scan, _ in self.samples]

    def set_epoch(self, epoch: int) -> None:
        """Select the training corruption of ``epoch`` (call before iterating; workers are re-created
        every epoch because loaders here are not ``persistent_workers``)."""
        self.epoch = int(epoch)

    # --------------------------------------------------------------- loading
    def _load_view(self, scan: str, view_id: int) -> dict:
        """One view's arrays (cached: a view recurs as a source of its neighbours).

        Its image is one of the scan's lights (``layout.meta_lights``): in training one drawn per
        (seed, epoch, scan, view) by a hash, like the corruption seed, so a view shows one light in
        every sample of an epoch; in validation/test always light 3 (or the primary light).
        """
        with_image = self.use_images or self.estimator is not None
        light = None
        lights = layout.meta_lights(self.meta[scan]) if with_image else []
        if self.train and len(lights) > 1:
            digest = hashlib.blake2b(f"light/{self.seed}/{self.epoch}/{scan}/{view_id}".encode(), digest_size=8)
            light = lights[int.from_bytes(digest.digest(), "little") % len(lights)]
        elif 3 in lights:
            light = 3
        if light == self.meta[scan].get("light"):
            light = None  # the primary light lives in images/
        key = (scan, view_id, light)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        scan_dir = self.data_root / scan
        try:
            view = layout.load_view(scan_dir, view_id, with_image=with_image, with_initial=True, light=light)
        except FileNotFoundError as exc:
            raise DataError(f"{scan_dir}: view {view_id}: missing file {exc.filename}") from exc
        self._remember(key, view)
        return view

    def _corruption_seed(self, scan: str, view_id: int) -> int:
        if not self.train:
            return sample_seed(scan, view_id)
        # A different stream per (seed, epoch); base 0 is left to validation.
        base = 1 + zlib.crc32(f"train/{self.seed}/{self.epoch}".encode())
        return sample_seed(scan, view_id, base_seed=base)

    def _initial_depth(self, scan: str, view_id: int, view: dict, depth: torch.Tensor) -> torch.Tensor:
        initial = view.get("initial")
        if initial is not None and self.initial_source == "auto":
            return torch.as_tensor(np.asarray(initial, dtype=np.float32))
        key = ("initial", scan, view_id, self.epoch if self.train else -1)
        if key in self._cache:  # the view was a reference or source earlier in this epoch
            self._cache.move_to_end(key)
            return self._cache[key]
        generator = torch.Generator().manual_seed(self._corruption_seed(scan, view_id))
        if self.estimator is not None:
            image = torch.as_tensor(np.asarray(view["image"], dtype=np.float32))
            sparse = sparse_points_from_depth(depth, self.align_fraction, generator)
            out = estimate_initial_depth(image, self.estimator, sparse)["depth_init"]
        elif (model := self._initial_model(scan, view_id)).startswith("planesweep"):
            out = torch.as_tensor(load_sweep(self.data_root / scan, view_id, filtered=model == "planesweep")[0])
        elif model == "sgbm":
            out = torch.as_tensor(load_stereo(self.data_root / scan, view_id))
        else:
            depth_range = tuple(float(v) for v in self.meta[scan]["depth_range_mm"])
            out = simulate_initial_depth(depth, preset=model, generator=generator, depth_range_mm=depth_range)
        out = out.to(torch.float32)
        self._remember(key, out)
        return out

    def _prepare_stereo(self) -> None:
        """Run (or reuse) the plane sweep / SGBM of every scan when the mix draws from them."""
        runs = {"planesweep": sweep_scan, "sgbm": stereo_scan}
        wanted = {kind for kind in runs if any(name.startswith(kind) for name in self.mix)}
        for scan, kind in ((scan, kind) for scan in self.scans for kind in sorted(wanted)):
            if not (self.data_root / scan / "images").is_dir():
                raise DataError(f"{self.data_root / scan / 'images'}: the {kind} initial depth needs the "
                                "scan's images; parse the dataset with images")
            runs[kind](self.data_root / scan)

    def _initial_model(self, scan: str, view_id: int) -> str:
        """Which entry of the mix gives this view's initial depth (fixed per (scan, view, epoch))."""
        if len(self.mix) == 1:
            return next(iter(self.mix))
        seed = (self._corruption_seed(scan, view_id) * 2654435761 + 97) % 2**63
        weights = torch.tensor(list(self.mix.values()), dtype=torch.float64)
        pick = torch.multinomial(weights, 1, generator=torch.Generator().manual_seed(seed))
        return list(self.mix)[int(pick)]

    def _remember(self, key: tuple, value: Any) -> None:
        self._cache[key] = value
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def __getitem__(self, index: int) -> dict[str, Any]:
        scan, view_ids = self.samples[index]
        depth, depth_init, intr, extr, images = [], [], [], [], []
        shape = None
        for view_id in view_ids:
            view = self._load_view(scan, view_id)
            d = torch.as_tensor(np.asarray(view["depth"], dtype=np.float32))
            if shape is None:
                shape = tuple(d.shape)
            elif tuple(d.shape) != shape:
                raise DataError(
                    f"{self.data_root / scan}: view {view_id} depth is {tuple(d.shape)} but view "
                    f"{view_ids[0]} is {shape}; all views of a scan must share one resolution (re-parse the scan)"
                )
            init = self._initial_depth(scan, view_id, view, d)
            if tuple(init.shape) != shape:
                raise DataError(
                    f"{self.data_root / scan / 'initial'}: view {view_id} initial depth is "
                    f"{tuple(init.shape)}, expected {shape} like depths/"
                )
            depth.append(d)
            depth_init.append(init)
            intr.append(torch.as_tensor(np.asarray(view["intrinsics"], dtype=np.float32)))
            extr.append(torch.as_tensor(np.asarray(view["extrinsics"], dtype=np.float32)))
            if self.use_images:
                img = torch.as_tensor(np.asarray(view["image"], dtype=np.float32))
                if tuple(img.shape) != (3, *shape):
                    raise DataError(
                        f"{self.data_root / scan / 'images'}: view {view_id} image is {tuple(img.shape)}, "
                        f"expected (3, {shape[0]}, {shape[1]}) to match depths/"
                    )
                images.append(img)
        depth_t = torch.stack(depth)
        sample = {
            "depth": depth_t,
            "depth_init": torch.stack(depth_init),
            "mask": depth_t > 0,
            "intrinsics": torch.stack(intr),
            "extrinsics": torch.stack(extr),
            "view_ids": torch.tensor(view_ids, dtype=torch.int64),
            "depth_range": torch.tensor([float(v) for v in self.meta[scan]["depth_range_mm"]], dtype=torch.float32),
            "scene": scan,
        }
        if self.use_images:
            sample["image"] = torch.stack(images)
        return self._for_training(sample, index) if self.train else sample

    def _for_training(self, sample: dict[str, Any], index: int) -> dict[str, Any]:
        """The random crop and the photometric augmentation of a training sample, drawn per (seed, epoch, index)."""
        if self.crop_hw:
            sample = self._crop(sample, index)
        if self.use_images and self.image_augment > 0:
            g = torch.Generator().manual_seed(zlib.crc32(f"augment/{self.seed}/{self.epoch}/{index}".encode()))
            sample["image"] = photometric_augment(sample["image"], g, self.image_augment)
        return sample

    def _crop(self, sample: dict[str, Any], index: int) -> dict[str, Any]:
        """A random ``crop_hw`` window, the same for every view of the sample, drawn per (seed, epoch, index);
        ``cx, cy`` lose the window's offset (docs/DESIGN.md §1), so geometry stays exact."""
        H, W = sample["depth"].shape[-2:]
        h, w = min(self.crop_hw[0], H), min(self.crop_hw[1], W)
        g = torch.Generator().manual_seed(zlib.crc32(f"crop/{self.seed}/{self.epoch}/{index}".encode()))
        y, x = (int(torch.randint(0, n + 1, (1,), generator=g)) for n in (H - h, W - w))
        out = dict(sample)
        for key in ("depth", "depth_init", "mask", "image"):
            if key in sample:
                out[key] = sample[key][..., y:y + h, x:x + w].contiguous()
        K = sample["intrinsics"].clone()
        K[:, 0, 2] -= x
        K[:, 1, 2] -= y
        out["intrinsics"] = K
        return out


def _crop_size(crop_hw: Sequence[int] | None) -> tuple[int, int] | None:
    """``(h, w)`` of the training windows, or None; ConfigError unless both are >= 8 pixels."""
    if crop_hw is not None and (len(crop_hw) != 2 or min(int(v) for v in crop_hw) < 8):
        raise ConfigError(f"crop_hw={crop_hw!r}: expected (h, w) with both >= 8 pixels, or None")
    return None if crop_hw is None else (int(crop_hw[0]), int(crop_hw[1]))


def _check_scan_files(scan_dir: Path, views: Sequence[int], use_images: bool) -> None:
    """Every view has its depth, intrinsics and extrinsics (and image when used), before training
    starts rather than in the middle of an epoch."""
    if not views:
        raise DataError(f"{scan_dir}: no views found in {scan_dir / 'depths'}; is this a train-ready scan?")
    folders = _REQUIRED_DIRS + (("images",) if use_images else ())
    for folder in folders:
        sub = scan_dir / folder
        if not sub.is_dir():
            hint = ("parse the dataset with images, or train without --images" if folder == "images"
                    else "re-run `deltaz parse` for this scan")
            raise DataError(f"{sub}: folder missing; {hint}")
        present = {p.stem for p in sub.iterdir()}
        missing = [v for v in views if f"{v:03d}" not in present]
        if missing:
            ext = "png" if folder == "images" else "npy"
            raise DataError(
                f"{sub}: missing {', '.join(f'{v:03d}.{ext}' for v in missing[:5])}"
                f"{' ...' if len(missing) > 5 else ''} (views present in depths/ must have every file)"
            )


