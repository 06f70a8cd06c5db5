"""Same-scene training data: samples of a reference view and its best source views, batched per scan.

A sample (docs/DESIGN.md §4) is the reference view (view 0) plus its best ``num_views - 1`` source views
from the scan's ``pair.txt``, as a dict of tensors without batch dimension::

    depth, depth_init, mask   (V, H, W)    float32 mm / float32 mm / bool (mask = depth > 0)
    intrinsics                (V, 3, 3)    for the (H, W) arrays
    extrinsics                (V, 3, 4)    world-to-camera
    image                     (V, 3, H, W) in [0, 1], only when ``use_images=True``
    view_ids                  (V,)         int64
    depth_range               (2,)         [min, max] mm of the scan (meta.json)
    scene                     str          the scan name

:func:`collate_same_scene` stacks the samples of a batch into a :class:`deltaz.core.batch.MultiViewBatch`
(``(B, V, ...)`` tensors, view 0 the reference; ``view_ids`` and ``depth_range`` in its ``extra``; it also reads
like the dict ``batch["depth"]``); because :class:`SameSceneBatchSampler` draws every batch from one scan,
``scene`` is that one string.

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

Explained in notebooks/01_dtu_on_disk.ipynb and notebooks/06_training.ipynb.


Modules: :mod:`deltaz.data.dataset` (the dataset), :mod:`deltaz.data.batching` (sampler, collate, device),
:mod:`deltaz.data.loaders` (:func:`create_dataloaders`), :mod:`deltaz.data.splits` (:func:`split_scans`).
"""

from __future__ import annotations

from deltaz.data.batching import DeviceLoader, SameSceneBatchSampler, collate_same_scene, set_epoch, to_device
from deltaz.data.dataset import INITIAL_SOURCES, DepthRefinementDataset
from deltaz.data.loaders import create_dataloaders
from deltaz.data.splits import split_scans

__all__ = [
    "DepthRefinementDataset",
    "INITIAL_SOURCES",
    "SameSceneBatchSampler",
    "DeviceLoader",
    "collate_same_scene",
    "create_dataloaders",
    "split_scans",
    "to_device",
    "set_epoch",
]
