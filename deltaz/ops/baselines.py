"""Classical depth-refinement baselines that DeltaZ is compared against.

Every baseline has the same signature (the :data:`BASELINES` registry)::

    fn(depth_init (B, H, W) mm, image (B, 3, H, W) in [0, 1] or None, params: dict, multiview: MultiView | None)
        -> depth_refined (B, H, W) mm, 0 = hole

Holes (``0``) in ``depth_init`` never produce NaN. Metrics count a remaining hole as an error of
``gt`` (``deltaz.ops.metrics``), so the filters fill what they can:

* ``identity`` — returns a copy; holes kept.
* ``median`` — median of the *valid* pixels of each ``k×k`` window (holes are left out of the window;
  on hole-free input it equals ``kornia.filters.median_blur``); a hole with a valid pixel in its window
  is filled, one without stays 0.
* ``bilateral`` — bilateral filter on depth (``kornia.filters.joint_bilateral_blur``) as a normalised
  convolution: holes carry no weight; range weights compare depths (``sigma_color_mm``), with holes
  given the mean of their valid neighbours for that comparison. Holes with a valid pixel in the
  window are filled, others stay 0.
* ``joint_bilateral`` — the same normalised convolution with range weights from the RGB ``image``
  (``sigma_color`` in image units); needs ``image``.
* ``guided`` — ``kornia.filters.guided_blur`` with the RGB image as guide. The guided filter's weights
  can be negative, so holes are first filled — by the image-guided normalised convolution above
  (``sigma_color`` = :data:`PREFILL_SIGMA_COLOR`), then by repeated normalised box averaging for holes
  out of its reach — and then filtered; pixels with no valid pixel in their ``k×k`` window are set
  back to 0.
* ``geometric_averaging`` — MVSNet's fusion step as a refiner (:class:`GeometricAveraging`): a pixel
  consistent with at least ``min_views`` source views (``deltaz.ops.metrics.multiview_consistency``)
  becomes the mean of its depth and the consistent reprojected source depths. Inconsistent pixels
  *keep the initial value* by default (``inconsistent="keep"``); ``"drop"`` sets them to 0 (MVSNet's
  fusion filter). Because a hole counts as an error of ``gt`` (hundreds of mm) whereas a kept pixel's
  error is its initial error, ``keep`` is the stronger baseline on MAE, and tuning confirms it
  (tests/test_baselines.py). Reference holes stay holes. Needs ``multiview``.

``multiview`` (a :class:`deltaz.core.batch.MultiView`, or its dict form) holds the reference and source
cameras and the sources' *initial* depths: ``K_ref (B, 3, 3)``, ``E_ref (B, 3|4, 4)``, ``depth_src (B, S, H, W)``,
``K_src (B, S, 3, 3)``, ``E_src (B, S, 3|4, 4)``, optionally ``confidence_ref (B, H, W)`` and
``confidence_src (B, S, H, W)``;
:func:`baseline_inputs_from_batch` builds it from a dataset batch. The trained "MVSNet-style
refinement network" baseline is a model, evaluated by ``deltaz.engine.evaluate``, not here.

:func:`tune_baseline` picks parameters from :data:`PARAM_GRIDS` by MAE on **validation data only**;
never pass test data to it (the caller guarantees this).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import kornia.filters as KF
import torch
import torch.nn.functional as F

from deltaz.core.batch import MultiView, MultiViewBatch
from deltaz.core.errors import ConfigError, DataError
from deltaz.ops.fill import box_sum, fill_holes
from deltaz.ops.metrics import MetricAccumulator, multiview_consistency

__all__ = [
    "Baseline",
    "BASELINES",
    "PARAM_GRIDS",
    "param_grid",
    "identity",
    "median",
    "bilateral",
    "joint_bilateral",
    "guided",
    "NEEDS_IMAGE",
    "NEEDS_MULTIVIEW",
    "GeometricAveraging",
    "geometric_averaging",
    "masked_median",
    "fill_holes",
    "baseline_inputs_from_batch",
    "tune_baseline",
]

#: Image range sigma (L1 over RGB in [0, 1]) of the guided filter's image-aware hole pre-fill.
PREFILL_SIGMA_COLOR = 0.1

Baseline = Callable[[torch.Tensor, "torch.Tensor | None", dict, "dict | None"], torch.Tensor]


# --------------------------------------------------------------------------- helpers


def _check_depth(depth_init: torch.Tensor) -> torch.Tensor:
    if not isinstance(depth_init, torch.Tensor) or depth_init.dim() != 3:
        shape = tuple(depth_init.shape) if isinstance(depth_init, torch.Tensor) else type(depth_init).__name__
        raise DataError(f"depth_init must be a (B, H, W) tensor in mm, got {shape}")
    return depth_init if depth_init.is_floating_point() else depth_init.float()


def _check_image(name: str, image: torch.Tensor | None, depth: torch.Tensor) -> torch.Tensor:
    if image is None:
        raise ConfigError(f"baseline {name!r} needs an RGB image (B, 3, H, W); got image=None")
    B, H, W = depth.shape
    if image.dim() != 4 or image.shape[0] != B or tuple(image.shape[-2:]) != (H, W):
        raise DataError(f"image must be (B={B}, C, H={H}, W={W}) for baseline {name!r}, got {tuple(image.shape)}")
    if not image.is_floating_point():
        image = image.float() / 255.0
    return image.to(depth.dtype)


def _params(name: str, params: Mapping | None, defaults: dict) -> dict:
    params = dict(params or {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ConfigError(f"baseline {name!r}: unknown parameter(s) {unknown}; expected some of {sorted(defaults)}")
    return {**defaults, **params}


def _odd_kernel(name: str, k) -> int:
    if int(k) != k or k < 1 or k % 2 == 0:
        raise ConfigError(f"baseline {name!r}: kernel_size must be a positive odd integer, got {k!r}")
    return int(k)


def _pad_mode(H: int, W: int, r: int) -> str:
    return "reflect" if r < H and r < W else "replicate"


def _has_valid_neighbour(depth: torch.Tensor, kernel_size: int) -> torch.Tensor:
    return box_sum((depth > 0).to(depth.dtype).unsqueeze(1), kernel_size).squeeze(1) > 0.5


def masked_median(depth: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Median of the valid (``> 0``) pixels in each ``k×k`` window of ``depth (B, H, W)``; 0 if none.

    Reflect padding like ``kornia.filters.median_blur``, which it equals on hole-free input; with an
    even number of valid values the lower median is taken.
    """
    r = kernel_size // 2
    B, H, W = depth.shape
    x = torch.where(depth > 0, depth, torch.full_like(depth, float("nan"))).unsqueeze(1)
    x = F.pad(x, (r, r, r, r), mode=_pad_mode(H, W, r))
    patches = F.unfold(x, kernel_size)  # (B, k*k, H*W)
    med = torch.nanmedian(patches, dim=1).values.reshape(B, H, W)
    return torch.nan_to_num(med, nan=0.0)


def _normalised_joint_bilateral(
    depth: torch.Tensor, guidance: torch.Tensor, kernel_size: int, sigma_color: float, sigma_space: float
) -> torch.Tensor:
    """``Σ w·d·valid / Σ w·valid`` with kornia's joint-bilateral weights ``w`` from ``guidance``."""
    valid = (depth > 0).to(depth.dtype)
    stacked = torch.stack([depth * valid, valid], dim=1)  # (B, 2, H, W): kornia normalises both alike
    r = kernel_size // 2
    out = KF.joint_bilateral_blur(
        stacked, guidance, kernel_size, sigma_color, (sigma_space, sigma_space),
        border_type=_pad_mode(*depth.shape[-2:], r),
    )
    weight = out[:, 1]
    # weight = share of the window's total weight on valid pixels; ~0 means no trustworthy support
    filled = out[:, 0] / weight.clamp_min(1e-12)
    return torch.where(weight > 1e-6, filled, torch.zeros_like(filled))


# --------------------------------------------------------------------------- the baselines


@torch.no_grad()
def identity(depth_init: torch.Tensor, image=None, params: Mapping | None = None, multiview=None) -> torch.Tensor:
    """The initial depth, unchanged (a copy); holes kept. Takes no parameters."""
    _params("identity", params, {})
    return _check_depth(depth_init).clone()


@torch.no_grad()
def median(depth_init: torch.Tensor, image=None, params: Mapping | None = None, multiview=None) -> torch.Tensor:
    """Masked median filter (:func:`masked_median`); params ``kernel_size`` (odd, default 5)."""
    p = _params("median", params, {"kernel_size": 5})
    depth = _check_depth(depth_init)
    return masked_median(depth, _odd_kernel("median", p["kernel_size"]))


@torch.no_grad()
def bilateral(depth_init: torch.Tensor, image=None, params: Mapping | None = None, multiview=None) -> torch.Tensor:
    """Bilateral filter on depth, holes as zero weight.

    Params: ``kernel_size`` (odd, default 5), ``sigma_color_mm`` (depth range sigma, default 5 mm),
    ``sigma_space`` (pixels, default 1.5).
    """
    p = _params("bilateral", params, {"kernel_size": 5, "sigma_color_mm": 5.0, "sigma_space": 1.5})
    depth = _check_depth(depth_init)
    k = _odd_kernel("bilateral", p["kernel_size"])
    guide = fill_holes(depth, k).unsqueeze(1)  # holes compared by their neighbours' mean depth
    return _normalised_joint_bilateral(depth, guide, k, float(p["sigma_color_mm"]), float(p["sigma_space"]))


@torch.no_grad()
def joint_bilateral(
    depth_init: torch.Tensor, image=None, params: Mapping | None = None, multiview=None
) -> torch.Tensor:
    """Image-guided joint bilateral filter, holes as zero weight; needs ``image`` in [0, 1].

    Params: ``kernel_size`` (odd, default 5), ``sigma_color`` (image units, L1 over RGB, default 0.1),
    ``sigma_space`` (pixels, default 1.5).
    """
    p = _params("joint_bilateral", params, {"kernel_size": 5, "sigma_color": 0.1, "sigma_space": 1.5})
    depth = _check_depth(depth_init)
    guide = _check_image("joint_bilateral", image, depth)
    k = _odd_kernel("joint_bilateral", p["kernel_size"])
    return _normalised_joint_bilateral(depth, guide, k, float(p["sigma_color"]), float(p["sigma_space"]))


@torch.no_grad()
def guided(depth_init: torch.Tensor, image=None, params: Mapping | None = None, multiview=None) -> torch.Tensor:
    """He et al.'s guided filter of depth with the RGB ``image`` (in [0, 1]) as guide.

    Params: ``kernel_size`` (odd window, default 5), ``eps`` (regulariser in squared image units,
    default 1e-3). Holes are filled before filtering (see the module docstring).
    """
    p = _params("guided", params, {"kernel_size": 5, "eps": 1e-3})
    depth = _check_depth(depth_init)
    guide = _check_image("guided", image, depth)
    k = _odd_kernel("guided", p["kernel_size"])
    H, W = depth.shape[-2:]
    # Image-aware pre-fill (normalised joint bilateral, so a hole takes the depth of the pixels that
    # look like it), then plain normalised box filling for whatever is left.
    prefill = _normalised_joint_bilateral(depth, guide, k, PREFILL_SIGMA_COLOR, max(k / 2.0, 1.0))
    filled = fill_holes(torch.where(depth > 0, depth, prefill), 3, max_iters=max(H, W))
    if not bool((filled > 0).any()):
        return torch.zeros_like(depth)
    out = KF.guided_blur(guide, filled.unsqueeze(1), k, float(p["eps"]), border_type=_pad_mode(H, W, k // 2))[:, 0]
    keep = _has_valid_neighbour(depth, k) & (filled > 0)
    return torch.where(keep, out.clamp_min(0.0), torch.zeros_like(out))


@dataclass
class GeometricAveraging:
    """MVSNet's geometric-consistency averaging as a refiner, with an optional confidence filter.

    Args:
        min_views: a pixel is consistent when it passes :func:`deltaz.ops.metrics.geometric_check`
            against at least this many source views.
        pix_thresh: round-trip reprojection threshold, pixels (MVSNet: 1).
        rel_depth_thresh: relative depth threshold (MVSNet: 0.01).
        inconsistent: ``"keep"`` (the initial depth, default — the stronger baseline when holes count
            as errors) or ``"drop"`` (0, MVSNet's fusion filter).
        conf_thresh: when set, pixels whose confidence is below it are treated as holes in the check
            (source pixels contribute nothing; a low-confidence reference pixel is inconsistent and
            handled by ``inconsistent``). Needs ``confidence_ref`` and ``confidence_src``.
    """

    min_views: int = 1
    pix_thresh: float = 1.0
    rel_depth_thresh: float = 0.01
    inconsistent: str = "keep"
    conf_thresh: float | None = None

    def __post_init__(self) -> None:
        if self.inconsistent not in ("keep", "drop"):
            raise ConfigError(f"GeometricAveraging: inconsistent must be 'keep' or 'drop', got {self.inconsistent!r}")
        if self.min_views < 1:
            raise ConfigError(f"GeometricAveraging: min_views must be >= 1, got {self.min_views}")

    @torch.no_grad()
    def refine(self, depth_ref: torch.Tensor, multiview: MultiView) -> torch.Tensor:
        """Refined ``(B, H, W)`` depth (mm) of ``depth_ref`` given its :class:`deltaz.core.batch.MultiView` (or
        its dict form): ``S`` source views as in :func:`deltaz.ops.metrics.multiview_consistency`, and
        (for ``conf_thresh``) ``confidence_ref (B, H, W)``, ``confidence_src (B, S, H, W)``."""
        depth_ref = _check_depth(depth_ref)
        mv = MultiView.coerce(multiview)
        checked = depth_ref
        valid_src = None
        if self.conf_thresh is not None:
            if mv.confidence_ref is None or mv.confidence_src is None:
                raise ConfigError(
                    "GeometricAveraging: conf_thresh is set but confidence_ref/confidence_src are missing"
                )
            checked = torch.where(mv.confidence_ref >= self.conf_thresh, depth_ref, torch.zeros_like(depth_ref))
            valid_src = mv.confidence_src >= self.conf_thresh
        result = multiview_consistency(
            checked, mv, pix_thresh=self.pix_thresh, rel_depth_thresh=self.rel_depth_thresh, valid_src=valid_src,
        )
        good = (result.n_consistent >= self.min_views) & (checked > 0)
        fallback = depth_ref if self.inconsistent == "keep" else torch.zeros_like(depth_ref)
        return torch.where(good, result.depth_averaged.to(depth_ref.dtype), fallback)


@torch.no_grad()
def geometric_averaging(
    depth_init: torch.Tensor, image=None, params: Mapping | None = None, multiview=None
) -> torch.Tensor:
    """Registry wrapper of :class:`GeometricAveraging`: ``params`` are its fields, ``multiview`` its
    :class:`deltaz.core.batch.MultiView` (or the dict ``{"K_ref", "E_ref", "depth_src", "K_src", "E_src"}``)."""
    defaults = {f: getattr(GeometricAveraging, f) for f in GeometricAveraging.__dataclass_fields__}
    p = _params("geometric_averaging", params, defaults)
    if multiview is None:
        raise ConfigError("baseline 'geometric_averaging' needs multiview (source depths and cameras); got None")
    return GeometricAveraging(**p).refine(depth_init, MultiView.coerce(multiview))


BASELINES: dict[str, Baseline] = {
    "identity": identity,
    "median": median,
    "bilateral": bilateral,
    "joint_bilateral": joint_bilateral,
    "guided": guided,
    "geometric_averaging": geometric_averaging,
}

#: Which baselines need the RGB image / the source views.
NEEDS_IMAGE = frozenset({"joint_bilateral", "guided"})
NEEDS_MULTIVIEW = frozenset({"geometric_averaging"})


def param_grid(**axes: Iterable) -> list[dict]:
    """Cartesian product of parameter values: ``param_grid(a=[1, 2], b=[3])`` → ``[{a: 1, b: 3}, {a: 2, b: 3}]``."""
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*(list(axes[k]) for k in keys))]


#: Parameter grids searched by :func:`tune_baseline` (kept small: every entry is run on every validation sample).
PARAM_GRIDS: dict[str, list[dict]] = {
    "identity": [{}],
    "median": param_grid(kernel_size=[3, 5, 7]),
    "bilateral": param_grid(kernel_size=[5, 7], sigma_color_mm=[2.0, 5.0, 10.0, 20.0], sigma_space=[1.0, 2.0]),
    "joint_bilateral": param_grid(kernel_size=[5, 7], sigma_color=[0.05, 0.1, 0.2], sigma_space=[1.0, 2.0]),
    "guided": param_grid(kernel_size=[3, 5, 9], eps=[1e-4, 1e-3, 1e-2]),
    "geometric_averaging": param_grid(
        min_views=[1, 2], rel_depth_thresh=[0.005, 0.01, 0.02], inconsistent=["keep", "drop"]
    ),
}


def baseline_inputs_from_batch(batch: MultiViewBatch | Mapping, key: str = "depth_init") -> dict:
    """One baseline sample from a dataset batch (a :class:`deltaz.core.batch.MultiViewBatch` or its dict form;
    view 0 = reference, views 1… = sources).

    Returns ``depth_init (B, H, W)`` mm, ``depth`` (ground truth, mm), ``mask`` (or None), ``image
    (B, 3, H, W)`` (or None) and ``multiview`` (a :class:`deltaz.core.batch.MultiView`, None when the batch has a
    single view), the reference's input and the sources' depths taken from ``batch[key]``.
    """
    for name in (key, "depth", "intrinsics", "extrinsics"):
        if name not in batch:
            raise DataError(f"batch has no {name!r}; expected depth, {key}, intrinsics, extrinsics (B, V, …)")
    depth_init = batch[key]
    if depth_init.dim() != 4:
        raise DataError(f"batch[{key!r}] must be (B, V, H, W), got {tuple(depth_init.shape)}")
    batch = MultiViewBatch.from_mapping(batch)
    ref = batch.ref
    return {
        "depth_init": depth_init[:, 0],
        "depth": ref.depth,
        "mask": ref.mask,
        "image": ref.image,
        "multiview": batch.multiview(depth_init[:, 1:]),
    }


def _tuning_mask(sample: Mapping, covered: bool) -> torch.Tensor | None:
    """The pixels :func:`tune_baseline` scores: the sample's ``mask`` (None = all), with ``covered`` only those with
    an input depth."""
    mask = sample.get("mask")
    if not covered:
        return mask
    has_input = sample["depth_init"] > 0
    return has_input if mask is None else mask.bool() & has_input


@torch.no_grad()
def tune_baseline(name: str, samples_iter: Iterable[Mapping], grid: list[dict] | None = None,
                  covered: bool = False) -> tuple[dict, float]:
    """Choose a baseline's parameters by MAE (mm, holes as errors) on VALIDATION samples.

    ``samples_iter`` is read once; each sample is a mapping with ``depth_init`` and ``depth`` (ground
    truth) ``(B, H, W)``, and optionally ``mask``, ``image``, ``multiview`` (see
    :func:`baseline_inputs_from_batch`). Every grid entry is run on every sample and scored with a
    pixel-weighted :class:`deltaz.ops.metrics.MetricAccumulator`. The caller guarantees these are
    validation samples: passing test data here would leak the test set into the baseline. ``covered``: score only
    the pixels the input covers (``depth_init > 0``: a table's covered MAE, ``mae_valid_mm``) instead of every
    ground-truth pixel. The two can choose differently: a larger window fills more holes and blurs more edges.

    Returns:
        ``(best_params, best_mae_mm)``; ties go to the earlier grid entry.
    """
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; expected one of {sorted(BASELINES)}")
    fn = BASELINES[name]
    grid = PARAM_GRIDS[name] if grid is None else list(grid)
    if not grid:
        raise ConfigError(f"tune_baseline({name!r}): the parameter grid is empty")
    accumulators = [MetricAccumulator() for _ in grid]
    for sample in samples_iter:
        for acc, params in zip(accumulators, grid):
            pred = fn(sample["depth_init"], sample.get("image"), params, sample.get("multiview"))
            acc.update(pred, sample["depth"], _tuning_mask(sample, covered))
    scores = [acc.result()["mae_mm"] for acc in accumulators]
    if all(math.isnan(s) for s in scores):
        raise DataError(f"tune_baseline({name!r}): no validation pixel with ground truth was seen")
    best = min(range(len(grid)), key=lambda i: (math.isnan(scores[i]), scores[i]))
    return dict(grid[best]), float(scores[best])
