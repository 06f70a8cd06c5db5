"""Same-scene training data: samples of a reference view and its best source views, batched per scan.

A sample (DESIGN.md §4) is the reference view (view 0) plus its best ``num_views - 1`` source views
from the scan's ``pair.txt``, as a dict of tensors without batch dimension::

    depth, depth_init, mask   (V, H, W)    float32 mm / float32 mm / bool (mask = depth > 0)
    intrinsics                (V, 3, 3)    for the (H, W) arrays
    extrinsics                (V, 3, 4)    world-to-camera
    image                     (V, 3, H, W) in [0, 1], only when ``use_images=True``
    view_ids                  (V,)         int64
    depth_range               (2,)         [min, max] mm of the scan (meta.json)
    scene                     str          the scan name

The default collate turns a batch into ``(B, V, ...)`` tensors and ``scene`` into a list; because
:class:`SameSceneBatchSampler` draws every batch from one scan, :func:`collate_same_scene` keeps
``scene`` as that one string.

Initial depth: a view's ``initial/{vid}.npy`` when the scan has one (a real MVS output), otherwise
:func:`deltaz.ops.corrupt.simulate_initial_depth` on the ground truth, for every view of the sample
(``initial_source="auto"``); ``"simulate"`` ignores ``initial/``; ``"estimator"`` runs an external
estimator (e.g. a monocular network) on each view's image and, unless it is metric, aligns its scale and
shift to the ground truth at a random ``align_fraction`` of the pixels
(:func:`deltaz.ops.align.estimate_initial_depth`; the sparse points are drawn with the corruption generator,
so they follow the same seeding rules).
Training corruption changes every epoch but is reproducible: its generator is seeded from
``(seed, epoch, scan, view_id)``, so it does not depend on the worker count or the batch order, and a
view has the same corruption in every sample of an epoch. Validation/test corruption is fixed:
``sample_seed(scan, view_id)`` whatever the run's seed, so numbers compare between runs.

Device placement: :func:`create_dataloaders` returns plain ``DataLoader`` s (CPU tensors) unless
``device`` is given, in which case it returns :class:`DeviceLoader` wrappers whose batches are already
on that device. :func:`to_device` does the same for one batch.

Explained in notebooks/01_dtu_on_disk.ipynb and notebooks/04_training.ipynb.
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from deltaz.ops.corrupt import parse_initial_mix
from deltaz.core.errors import ConfigError, DataError
from deltaz.data.splits import split_scans  # noqa: F401 (deltaz.data.split_scans)

__all__ = [
    "DepthRefinementDataset",
    "SameSceneBatchSampler",
    "DeviceLoader",
    "collate_same_scene",
    "create_dataloaders",
    "split_scans",
    "to_device",
    "set_epoch",
]

_REQUIRED_DIRS = ("depths", "intrinsics", "extrinsics")


# =========================================================================== dataset
class DepthRefinementDataset(Dataset):
    """Reference view + best source views of DTU-like train-ready scans (layout of DESIGN.md §3).

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
    ):
        from deltaz.io.dtu import layout

        if not isinstance(num_views, int) or num_views < 1:
            raise ConfigError(f"num_views={num_views!r}: must be an integer >= 1")
        if initial_source not in ("auto", "simulate", "estimator"):
            raise ConfigError(f"initial_source={initial_source!r}: must be 'auto', 'simulate' or 'estimator'")
        if (estimator is not None) != (initial_source == "estimator"):
            raise ConfigError(f"estimator={estimator!r}: give one exactly when initial_source='estimator'")
        if isinstance(estimator, str):
            from deltaz.ops.align import load_estimator

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
        if any(name.startswith("planesweep") for name in self.mix) and initial_source in ("auto", "simulate"):
            self._prepare_sweeps()
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
        import hashlib

        from deltaz.io.dtu import layout

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
        from deltaz.ops.corrupt import sample_seed

        if not self.train:
            return sample_seed(scan, view_id)
        # A different stream per (seed, epoch); base 0 is left to validation.
        base = 1 + zlib.crc32(f"train/{self.seed}/{self.epoch}".encode())
        return sample_seed(scan, view_id, base_seed=base)

    def _initial_depth(self, scan: str, view_id: int, view: dict, depth: torch.Tensor) -> torch.Tensor:
        initial = view.get("initial")
        if initial is not None and self.initial_source == "auto":
            return torch.as_tensor(np.asarray(initial, dtype=np.float32))
        from deltaz.ops.corrupt import simulate_initial_depth

        key = ("initial", scan, view_id, self.epoch if self.train else -1)
        if key in self._cache:  # the view was a reference or source earlier in this epoch
            self._cache.move_to_end(key)
            return self._cache[key]
        generator = torch.Generator().manual_seed(self._corruption_seed(scan, view_id))
        if self.estimator is not None:
            from deltaz.ops.align import estimate_initial_depth, sparse_points_from_depth

            image = torch.as_tensor(np.asarray(view["image"], dtype=np.float32))
            sparse = sparse_points_from_depth(depth, self.align_fraction, generator)
            out = estimate_initial_depth(image, self.estimator, sparse)["depth_init"]
        elif (model := self._initial_model(scan, view_id)).startswith("planesweep"):
            from deltaz.ops.mvs import load_sweep

            out = torch.as_tensor(load_sweep(self.data_root / scan, view_id, filtered=model == "planesweep")[0])
        else:
            depth_range = tuple(float(v) for v in self.meta[scan]["depth_range_mm"])
            out = simulate_initial_depth(depth, preset=model, generator=generator, depth_range_mm=depth_range)
        out = out.to(torch.float32)
        self._remember(key, out)
        return out

    def _prepare_sweeps(self) -> None:
        """Run (or reuse) the plane sweep of every scan: its depths are an initial-depth model."""
        from deltaz.ops.mvs import sweep_scan

        for scan in self.scans:
            if not (self.data_root / scan / "images").is_dir():
                raise DataError(f"{self.data_root / scan / 'images'}: the planesweep initial depth needs the "
                                "scan's images; parse the dataset with images")
            sweep_scan(self.data_root / scan)

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
        return self._crop(sample, index) if self.train and self.crop_hw else sample

    def _crop(self, sample: dict[str, Any], index: int) -> dict[str, Any]:
        """A random ``crop_hw`` window, the same for every view of the sample, drawn per (seed, epoch, index);
        ``cx, cy`` lose the window's offset (DESIGN.md §1), so geometry stays exact."""
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


# =========================================================================== batching
class SameSceneBatchSampler(Sampler[list[int]]):
    """Batches of sample indices that all come from one scene (scan).

    Per epoch: the indices of each scene are shuffled and cut into batches of ``batch_size``; the
    last, incomplete batch of a scene is kept (``drop_last=False``, default) or dropped; then the
    batches of all scenes are shuffled together. Shuffling uses a generator seeded with
    ``seed + epoch``, so call :meth:`set_epoch` every epoch; ``shuffle=False`` keeps index order.

    Sharding for DDP: with ``world_size > 1`` rank ``r`` takes batches ``r, r + world_size, ...`` of
    that list after truncating it to a multiple of ``world_size``, so every rank runs the same number
    of steps and no batch is seen by two ranks (up to ``world_size - 1`` batches per epoch are left
    out, different ones each epoch).

    Args:
        scenes: the scene of every sample index (e.g. ``dataset.scenes``).
    """

    def __init__(
        self,
        scenes: Sequence[str],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r}: must be an integer >= 1")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"rank={rank}, world_size={world_size}: need 0 <= rank < world_size")
        self.by_scene: dict[str, list[int]] = {}
        for index, scene in enumerate(scenes):
            self.by_scene.setdefault(scene, []).append(index)
        if not self.by_scene:
            raise DataError("SameSceneBatchSampler: no samples")
        largest = max(len(v) for v in self.by_scene.values())
        if batch_size > largest:
            raise ConfigError(
                f"batch_size={batch_size}: larger than any scene can fill (the largest scene has "
                f"{largest} samples); use --batch-size {largest} or less"
            )
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self._skip = 0
        if len(self) == 0:
            raise ConfigError(
                f"batch_size={batch_size}, drop_last={drop_last}, world_size={world_size}: "
                "no complete batch to give every rank; lower the batch size"
            )

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Use the order of ``epoch``; the next iteration starts after ``skip_batches`` of this rank's
        batches (used to resume a run stopped in the middle of an epoch)."""
        self.epoch = int(epoch)
        self._skip = int(skip_batches)

    def all_batches(self) -> list[list[int]]:
        """Every batch of the epoch before sharding, in order."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        batches: list[list[int]] = []
        for scene in sorted(self.by_scene):
            indices = self.by_scene[scene]
            if self.shuffle:
                indices = [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]
            for start in range(0, len(indices), self.batch_size):
                batch = indices[start : start + self.batch_size]
                if len(batch) < self.batch_size and self.drop_last:
                    continue
                batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        return batches

    def _my_batches(self) -> list[list[int]]:
        batches = self.all_batches()
        usable = len(batches) - len(batches) % self.world_size
        return batches[:usable][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._my_batches()[self._skip :]
        self._skip = 0
        return iter(batches)

    def __len__(self) -> int:
        total = 0
        for indices in self.by_scene.values():
            total += len(indices) // self.batch_size if self.drop_last else math.ceil(len(indices) / self.batch_size)
        return total // self.world_size


def collate_same_scene(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples into ``(B, V, ...)`` tensors; ``scene`` stays one string (all samples share it).

    Raises :class:`DataError` when the samples come from different scenes (use
    :class:`SameSceneBatchSampler`)."""
    scenes = {s["scene"] for s in samples}
    if len(scenes) != 1:
        raise DataError(f"a batch mixes scenes {sorted(scenes)}; batch with SameSceneBatchSampler")
    batch: dict[str, Any] = {"scene": samples[0]["scene"]}
    for key in samples[0]:
        if key != "scene":
            batch[key] = torch.stack([s[key] for s in samples])
    return batch


def to_device(batch: dict[str, Any], device: str | torch.device | None, non_blocking: bool = True) -> dict[str, Any]:
    """The batch with every tensor on ``device`` (other values unchanged); ``None`` returns it as is."""
    if device is None:
        return batch
    device = torch.device(device)
    return {k: v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v for k, v in batch.items()}


class DeviceLoader:
    """A ``DataLoader`` whose batches arrive on ``device`` (``.loader``, ``.dataset``,
    ``.batch_sampler`` and ``len()`` pass through)."""

    def __init__(self, loader: DataLoader, device: str | torch.device):
        self.loader = loader
        self.device = torch.device(device)

    @property
    def dataset(self):
        return self.loader.dataset

    @property
    def batch_sampler(self):
        return self.loader.batch_sampler

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.loader:
            yield to_device(batch, self.device)


def set_epoch(loader: DataLoader | DeviceLoader | None, epoch: int, skip_batches: int = 0) -> None:
    """Tell a loader's sampler and dataset which epoch comes next (order and training corruption)."""
    if loader is None:
        return
    sampler = loader.batch_sampler
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch, skip_batches)
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)


# =========================================================================== loaders
def create_dataloaders(
    data_root: str | Path,
    batch_size: int = 4,
    num_views: int = 2,
    val_split: float = 0.1,
    device: str | torch.device | None = None,
    *,
    seed: int = 0,
    preset: str = "mvs",
    use_images: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    split: str = "auto",
    distributed: bool | tuple[int, int] | None = None,
    drop_last: bool = False,
    initial_source: str = "auto",
    estimator: Any = None,
    align_fraction: float = 0.01,
    crop_hw: Sequence[int] | None = None,
) -> tuple[DataLoader | DeviceLoader, DataLoader | DeviceLoader | None]:
    """Train and validation loaders of same-scene batches from the train-ready scans in ``data_root``.

    Batches are dicts of ``(B, V, ...)`` tensors (see the module docstring). The training loader
    shuffles (seeded by ``seed`` and the epoch: call :func:`set_epoch` each epoch) and uses random
    corruption; the validation loader keeps a fixed order and the fixed per-view corruption. The
    validation loader is ``None`` when ``val_split == 0``.

    Args:
        device: when given, loaders are :class:`DeviceLoader` s yielding batches on that device.
        distributed: ``None`` = shard the training batches when ``torch.distributed`` is initialised;
            ``True``/``False`` force it; a ``(rank, world_size)`` tuple sets it explicitly. Validation is
            never sharded (rank 0 evaluates).
        drop_last: drop each scene's incomplete last training batch (validation keeps it).
        initial_source, estimator, align_fraction, crop_hw: see :class:`DepthRefinementDataset` (a
            ``"module:name"`` estimator is imported once here; validation sees whole views).

    Raises :class:`DataError` for an empty/missing root or broken scans, :class:`ConfigError` for
    impossible arguments (naming them).
    """
    from deltaz.io.dtu import layout

    root = Path(data_root)
    if not str(data_root) or not root.is_dir():
        raise DataError(f"data_root={str(data_root)!r}: folder not found; pass --data-root <folder of scan*/>")
    scans = layout.list_scans(root)
    if not scans:
        raise DataError(
            f"data_root={str(root)!r}: no train-ready scans inside (expected scan*/ folders with depths/, "
            "intrinsics/, extrinsics/, pair.txt, meta.json); create some with `deltaz synth` + `deltaz parse`"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r}: must be an integer >= 1")
    if num_workers < 0:
        raise ConfigError(f"num_workers={num_workers!r}: must be >= 0")
    sources = [str(layout.read_meta(root / s).get("source", "")) for s in scans]
    train_scans, val_scans = split_scans(scans, val_split, seed=seed, split=split, sources=sources)

    rank, world_size = _resolve_distributed(distributed)
    if isinstance(estimator, str):
        from deltaz.ops.align import load_estimator

        estimator = load_estimator(estimator)
    common = dict(num_views=num_views, preset=preset, seed=seed, use_images=use_images,
                  initial_source=initial_source, estimator=estimator, align_fraction=align_fraction)
    train_set = DepthRefinementDataset(root, train_scans, train=True, crop_hw=crop_hw, **common)
    train_sampler = SameSceneBatchSampler(
        train_set.scenes, batch_size, shuffle=True, seed=seed, drop_last=drop_last, rank=rank, world_size=world_size
    )
    loader_kw = dict(num_workers=num_workers, pin_memory=pin_memory, collate_fn=collate_same_scene)
    train_loader: DataLoader | DeviceLoader = DataLoader(train_set, batch_sampler=train_sampler, **loader_kw)
    val_loader: DataLoader | DeviceLoader | None = None
    if val_scans:
        val_set = DepthRefinementDataset(root, val_scans, train=False, **common)
        largest = max(len(v) for v in SameSceneBatchSampler(val_set.scenes, 1, shuffle=False).by_scene.values())
        val_sampler = SameSceneBatchSampler(val_set.scenes, min(batch_size, largest), shuffle=False)
        val_loader = DataLoader(val_set, batch_sampler=val_sampler, **loader_kw)
    if device is not None:
        train_loader = DeviceLoader(train_loader, device)
        val_loader = DeviceLoader(val_loader, device) if val_loader is not None else None
    return train_loader, val_loader


def _resolve_distributed(distributed: bool | tuple[int, int] | None) -> tuple[int, int]:
    import torch.distributed as dist

    if isinstance(distributed, tuple):
        rank, world_size = distributed
        return int(rank), int(world_size)
    active = dist.is_available() and dist.is_initialized()
    if distributed is None:
        distributed = active
    if not distributed:
        return 0, 1
    if not active:
        raise ConfigError("distributed=True but torch.distributed is not initialised; launch with torchrun")
    return dist.get_rank(), dist.get_world_size()
