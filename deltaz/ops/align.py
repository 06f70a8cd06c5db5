"""Initial depth from another estimator: metric alignment of scale/shift-ambiguous predictions.

A refiner needs a *metric* initial depth (mm). Two kinds of estimator can provide one:

* a multi-view stereo network (MVSNet family) — already metric; its PFM outputs are imported by
  ``deltaz parse --initial DIR`` into each scan's ``initial/`` folder (:mod:`deltaz.io.dtu.parse`);
* a monocular depth estimator (MDE) — its output is only defined **up to an unknown scale and shift**,
  either of depth (``depth ≈ s·pred + t``) or, for MiDaS-style "affine-invariant inverse depth", of
  inverse depth (``1/depth ≈ s·pred + t``). It becomes metric by fitting ``s, t`` to a few metric
  points: SfM points, or — the stand-in used here — ground truth at a sparse random subset of pixels
  (:func:`sparse_points_from_depth`).

The fit (:func:`align_scale_shift`) is least squares on the pixels where both the prediction and a
sparse target exist. With ``robust=True`` it is made insensitive to outliers by iteratively reweighted
least squares (IRLS): first least absolute deviations (L1, weights ``1/|r|``), which a minority of gross
outliers cannot move far, then Tukey's biweight ``w = (1 − (r/cσ)²)²`` for ``|r| < cσ`` (else 0), with
``c = 4.685`` and the robust residual scale ``σ = 1.4826·median|r|`` re-estimated every iteration. Points
more than ``cσ`` from the fit get weight 0, so with clean inliers the known scale and shift are recovered
exactly even when a fifth of the points are wrong. (Huber/Tukey IRLS: Holland & Welsch 1977; the
biweight constant gives 95 % efficiency on Gaussian noise.) In inverse mode the residuals are in
inverse depth (1/mm), the space in which the ambiguity is affine.

Where a user's own network goes: :func:`estimate_initial_depth` takes any callable
``image (3, H, W) in [0, 1] -> prediction (H, W)`` (or an :class:`ExternalEstimator` wrapping one, which
also says whether it predicts inverse depth), runs it, resizes its output to the image grid and aligns it
to sparse metric points. :class:`deltaz.data.DepthRefinementDataset` calls it for every view when
``initial_source="estimator"`` (see :func:`load_estimator` for the ``module:function`` form used by
``deltaz train --estimator``).

Conventions (DESIGN.md): depth is z-depth in mm, ``0`` (or a non-finite value) means "no value" — in
predictions and in sparse targets alike. Explained in notebooks/08_extensions.ipynb.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import torch

from deltaz.core.errors import ConfigError, DataError
from deltaz.core.geometry import sample_pixels

__all__ = [
    "TUKEY_C",
    "MAD_TO_SIGMA",
    "sparse_points_from_depth",
    "align_scale_shift",
    "ExternalEstimator",
    "resize_prediction",
    "estimate_initial_depth",
    "load_estimator",
]

#: Tukey biweight tuning constant (in units of the robust residual scale σ).
TUKEY_C = 4.685
#: ``σ = MAD_TO_SIGMA · median|r|`` is the standard deviation for Gaussian residuals.
MAD_TO_SIGMA = 1.4826
#: Iterations of each IRLS stage (L1, then Tukey) by default.
DEFAULT_ITERS = 20

Estimator = Callable[[torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------------------- sparse points
def sparse_points_from_depth(
    depth_gt: torch.Tensor,
    fraction: float,
    generator: torch.Generator | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Keep the metric depth at a random ``fraction`` of the valid pixels, as sparse SfM-like points.

    Args:
        depth_gt: ``(H, W)`` or ``(B, H, W)`` mm, ``<= 0`` or non-finite = no value.
        fraction: in (0, 1]; each sample keeps ``max(1, round(fraction · n_valid))`` of its ``n_valid``
            valid pixels, drawn uniformly without replacement.
        generator: seeds the draw (reproducible points).
        mask: optional bool, same shape: only these pixels may be drawn.
    Returns:
        a tensor shaped like ``depth_gt``: the depth at the drawn pixels, 0 elsewhere.
    """
    if not 0.0 < float(fraction) <= 1.0:
        raise ConfigError(f"fraction={fraction!r}: must be in (0, 1]")
    if depth_gt.dim() not in (2, 3):
        raise DataError(f"depth_gt must be (H, W) or (B, H, W), got shape {tuple(depth_gt.shape)}")
    if mask is not None and mask.shape != depth_gt.shape:
        raise DataError(f"mask must have depth_gt's shape {tuple(depth_gt.shape)}, got {tuple(mask.shape)}")
    batched = depth_gt.dim() == 3
    depth = depth_gt if batched else depth_gt[None]
    masks = None if mask is None else (mask if batched else mask[None]).bool()
    out = torch.zeros_like(depth)
    for b in range(depth.shape[0]):
        flat = depth[b].reshape(-1)
        valid = torch.isfinite(flat) & (flat > 0)
        if masks is not None:
            valid = valid & masks[b].reshape(-1)
        index = valid.nonzero().squeeze(1)
        if index.numel() == 0:
            continue
        n_keep = max(1, int(round(float(fraction) * index.numel())))
        pick = torch.randperm(index.numel(), generator=generator)[:n_keep].to(index.device)
        chosen = index[pick]
        out[b].view(-1)[chosen] = flat[chosen]
    return out if batched else out[0]


# ---------------------------------------------------------------------------------------------- the fit
def _weighted_line(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Weighted least squares ``y ≈ s·x + t`` (float64 1-D tensors); None when degenerate."""
    w_sum = w.sum()
    if w_sum <= 0:
        return None
    x_mean = (w * x).sum() / w_sum
    y_mean = (w * y).sum() / w_sum
    dx = x - x_mean
    sxx = (w * dx * dx).sum()
    if sxx <= 1e-12 * w_sum * (x_mean.abs() + 1.0) ** 2:
        return None
    s = (w * dx * (y - y_mean)).sum() / sxx
    return s, y_mean - s * x_mean


def _fit_one(x: torch.Tensor, y: torch.Tensor, robust: bool, iters: int, tukey_c: float, where: str):
    """``(scale, shift)`` of ``y ≈ s·x + t`` for one sample (float64 1-D tensors of the used points)."""
    if x.numel() < 2:
        raise DataError(f"{where}: need at least 2 pixels with both a prediction and a sparse target, got {x.numel()}")
    fit = _weighted_line(x, y, torch.ones_like(x))
    if fit is None:
        raise DataError(f"{where}: the prediction is constant over the {x.numel()} target pixels; scale is undefined")
    if not robust:
        return fit
    # floor of the residual scale: relative to the targets, so an exact fit does not divide by 0
    floor = 1e-9 * float(y.abs().median()) + 1e-30
    s, t = fit
    for _ in range(iters):  # stage 1: least absolute deviations (IRLS with w = 1/|r|)
        r = (y - (s * x + t)).abs()
        new = _weighted_line(x, y, 1.0 / r.clamp(min=floor))
        if new is None:
            break
        converged = bool((new[0] - s).abs() <= 1e-12 * s.abs() and (new[1] - t).abs() <= 1e-12 * (t.abs() + floor))
        s, t = new
        if converged:
            break
    for _ in range(iters):  # stage 2: Tukey's biweight with a MAD scale
        r = y - (s * x + t)
        sigma = (MAD_TO_SIGMA * r.abs().median()).clamp(min=floor)
        u = r / (tukey_c * sigma)
        w = torch.where(u.abs() < 1, (1 - u * u) ** 2, torch.zeros_like(u))
        new = _weighted_line(x, y, w)
        if new is None:
            break
        converged = bool((new[0] - s).abs() <= 1e-12 * s.abs() and (new[1] - t).abs() <= 1e-12 * (t.abs() + floor))
        s, t = new
        if converged:
            break
    return s, t


def align_scale_shift(
    pred: torch.Tensor,
    target_sparse: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    inverse: bool = False,
    robust: bool = True,
    iters: int = DEFAULT_ITERS,
    tukey_c: float = TUKEY_C,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fit the scale and shift that make ``pred`` metric, and apply them.

    Model: ``target ≈ s·pred + t`` (``inverse=False``) or ``1/target ≈ s·pred + t`` (``inverse=True``: ``pred``
    is an affine-invariant *inverse* depth, MiDaS style; the residuals are in 1/mm). Least squares over the
    pixels where ``pred`` is finite and non-zero, ``target_sparse > 0`` and ``mask`` allows; with
    ``robust=True`` IRLS (L1 then Tukey's biweight, see the module docstring) ignores outliers.

    Args:
        pred: ``(H, W)`` or ``(B, H, W)`` prediction (any unit; 0 or non-finite = no value).
        target_sparse: same shape, metric depth in mm at a few pixels, 0 elsewhere
            (:func:`sparse_points_from_depth`, or SfM points splatted into the image).
        mask: optional bool, same shape: pixels allowed in the fit.
        inverse: fit in inverse depth (``pred`` is an inverse depth up to scale and shift).
        robust: IRLS with Tukey's biweight instead of plain least squares.
        iters: iterations of each IRLS stage (stops early once the fit no longer changes).
        tukey_c: the biweight's cut-off in robust standard deviations.
    Returns:
        ``aligned`` shaped like ``pred`` (metric depth, mm; 0 where ``pred`` has no value or the aligned
        depth is not positive), and ``scale``, ``shift`` (float64; ``(B,)`` for batched input, 0-d else).
        In inverse mode ``aligned = 1/(s·pred + t)``.
    Raises:
        DataError when a sample has fewer than 2 usable pixels or a constant prediction there.
    """
    if pred.shape != target_sparse.shape:
        raise DataError(f"target_sparse must have pred's shape {tuple(pred.shape)}, got {tuple(target_sparse.shape)}")
    if pred.dim() not in (2, 3):
        raise DataError(f"pred must be (H, W) or (B, H, W), got shape {tuple(pred.shape)}")
    if mask is not None and mask.shape != pred.shape:
        raise DataError(f"mask must have pred's shape {tuple(pred.shape)}, got {tuple(mask.shape)}")
    if iters < 1:
        raise ConfigError(f"iters={iters!r}: must be >= 1")
    batched = pred.dim() == 3
    p = (pred if batched else pred[None]).detach().to(torch.float64)
    z = (target_sparse if batched else target_sparse[None]).detach().to(torch.float64)
    m = None if mask is None else (mask if batched else mask[None]).bool()
    pred_valid = torch.isfinite(p) & (p != 0)
    use = pred_valid & torch.isfinite(z) & (z > 0)
    if m is not None:
        use = use & m
    scales, shifts = [], []
    for b in range(p.shape[0]):
        x = p[b][use[b]]
        y = z[b][use[b]]
        if inverse:
            y = 1.0 / y
        where = f"align_scale_shift (sample {b})" if batched else "align_scale_shift"
        s, t = _fit_one(x, y, robust, int(iters), float(tukey_c), where)
        scales.append(s)
        shifts.append(t)
    scale = torch.stack(scales)
    shift = torch.stack(shifts)
    affine = scale.view(-1, 1, 1) * torch.where(pred_valid, p, torch.zeros_like(p)) + shift.view(-1, 1, 1)
    if inverse:
        ok = pred_valid & (affine > 0)
        aligned = torch.where(ok, 1.0 / torch.where(ok, affine, torch.ones_like(affine)), torch.zeros_like(affine))
    else:
        ok = pred_valid & (affine > 0)
        aligned = torch.where(ok, affine, torch.zeros_like(affine))
    aligned = aligned.to(pred.dtype if pred.is_floating_point() else torch.float32)
    if not batched:
        return aligned[0], scale[0], shift[0]
    return aligned, scale, shift


# ------------------------------------------------------------------------------------ the plug-in point
@dataclass
class ExternalEstimator:
    """A depth estimator to plug in: ``fn(image (3, H, W) in [0, 1]) -> prediction (h, w)``.

    Attributes:
        fn: the network (or any callable); it is called under ``torch.no_grad()``. Its output may be
            ``(h, w)``, ``(1, h, w)`` or ``(1, 1, h, w)`` of any size with the image's aspect ratio.
        inverse: the prediction is an inverse depth (disparity-like) up to scale and shift.
        metric: the prediction is already metric depth in mm (an MVS network): no alignment.
        name: shown in messages.
    """

    fn: Estimator
    inverse: bool = False
    metric: bool = False
    name: str = "estimator"

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigError(f"ExternalEstimator(fn={self.fn!r}): fn must be callable image -> depth")
        if self.inverse and self.metric:
            raise ConfigError("ExternalEstimator: a metric depth estimator cannot also be inverse=True")

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.fn(image)


def resize_prediction(pred: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Bring a prediction ``(h, w)`` to ``hw = (H, W)`` by validity-aware bilinear sampling.

    Output pixel ``(u, v)`` samples the input at ``(u·w/W, v·h/H)`` — the DESIGN.md resizing convention
    (scaling by ``s`` scales ``K`` by ``s``, no half-pixel shift), through :func:`deltaz.core.geometry.sample_pixels`.
    Values 0 / non-finite are holes: they get weight 0 and the remaining weights are renormalised; a pixel
    with less than half its bilinear weight on valid input is a hole (0). Returns ``(H, W)`` float32.
    """
    if pred.dim() != 2:
        raise DataError(f"pred must be (h, w), got shape {tuple(pred.shape)}")
    H, W = int(hw[0]), int(hw[1])
    h, w = pred.shape
    if (h, w) == (H, W):
        return pred.to(torch.float32)
    if abs(w / h - W / H) > 0.01 * W / H:
        raise DataError(
            f"estimator output is {h}x{w} but the image is {H}x{W}: the aspect ratios differ; "
            "crop or pad the prediction to the image's field of view first"
        )
    p = pred.to(torch.float32)
    valid = torch.isfinite(p) & (p != 0)
    stacked = torch.stack([torch.where(valid, p, torch.zeros_like(p)), valid.to(torch.float32)])[None]
    v, u = torch.meshgrid(
        torch.arange(H, dtype=torch.float32) * (h / H), torch.arange(W, dtype=torch.float32) * (w / W), indexing="ij"
    )
    uv = torch.stack([u, v], dim=-1)[None].to(p.device)
    sampled = sample_pixels(stacked, uv, mode="bilinear", padding_mode="border")[0]
    weight = sampled[1]
    ok = weight >= 0.5
    return torch.where(ok, sampled[0] / torch.where(ok, weight, torch.ones_like(weight)), torch.zeros_like(weight))


def estimate_initial_depth(
    image: torch.Tensor,
    estimator: Estimator | ExternalEstimator,
    sparse: torch.Tensor | None = None,
    align: bool | None = None,
    *,
    inverse: bool | None = None,
    robust: bool = True,
    mask: torch.Tensor | None = None,
) -> dict[str, torch.Tensor | None]:
    """Run an external estimator on one image and make its output a metric initial depth.

    Args:
        image: ``(3, H, W)`` in [0, 1] (the view's image; ``K`` is valid for ``H×W``).
        estimator: a callable ``image -> (h, w)`` prediction, or an :class:`ExternalEstimator`
            (which also says ``inverse``/``metric``). A plain callable is taken as depth up to scale/shift.
        sparse: ``(H, W)`` metric depth (mm) at a few pixels, 0 elsewhere (:func:`sparse_points_from_depth`).
            Required when aligning.
        align: fit scale and shift to ``sparse`` (:func:`align_scale_shift`); False keeps the raw output
            (correct only for a metric estimator). None (default): align unless the estimator is ``metric``.
        inverse: overrides the estimator's ``inverse`` flag.
        robust: robust IRLS fit (see :func:`align_scale_shift`).
        mask: optional ``(H, W)`` bool of pixels allowed in the fit.
    Returns:
        ``{"depth_init" (H, W) float32 mm (0 = no value), "prediction" (H, W) the raw output on the image
        grid, "scale", "shift"}`` (scale/shift float64 0-d tensors, None without alignment).
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise DataError(f"image must be (3, H, W) in [0, 1], got shape {tuple(image.shape)}")
    wrapped = estimator if isinstance(estimator, ExternalEstimator) else ExternalEstimator(estimator)
    inverse = wrapped.inverse if inverse is None else bool(inverse)
    align = not wrapped.metric if align is None else bool(align)
    H, W = image.shape[-2:]
    raw = wrapped(image)
    if not torch.is_tensor(raw):
        raw = torch.as_tensor(raw)
    while raw.dim() > 2 and raw.shape[0] == 1:
        raw = raw[0]
    if raw.dim() != 2:
        raise DataError(
            f"{wrapped.name}: expected an (H, W) prediction for a (3, {H}, {W}) image, got shape {tuple(raw.shape)}"
        )
    prediction = resize_prediction(raw.detach().to(image.device), (H, W))
    if not align:
        if inverse:
            raise ConfigError(
                f"{wrapped.name}: an inverse-depth prediction must be aligned (align=True) to become depth"
            )
        depth = torch.where(torch.isfinite(prediction) & (prediction > 0), prediction, torch.zeros_like(prediction))
        return {"depth_init": depth, "prediction": prediction, "scale": None, "shift": None}
    if sparse is None:
        raise ConfigError(f"{wrapped.name}: align=True needs sparse metric points (sparse=(H, W) mm, 0 elsewhere)")
    if tuple(sparse.shape) != (H, W):
        raise DataError(f"sparse must be (H, W) = ({H}, {W}) like the image, got shape {tuple(sparse.shape)}")
    aligned, scale, shift = align_scale_shift(
        prediction, sparse.to(prediction.device, torch.float32), mask, inverse=inverse, robust=robust
    )
    return {"depth_init": aligned.to(torch.float32), "prediction": prediction, "scale": scale, "shift": shift}


def load_estimator(spec: str) -> ExternalEstimator:
    """Import an estimator from ``"package.module:name"`` (what ``deltaz train --estimator`` takes).

    ``name`` may be an :class:`ExternalEstimator`, a callable ``image -> prediction`` (taken as depth up to
    scale and shift), or a zero-argument factory returning either (e.g. a function that loads the
    network's weights). The module must be importable (on ``PYTHONPATH``).
    """
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ConfigError(f"estimator={spec!r}: expected 'package.module:name'")
    module_name, attr = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"estimator={spec!r}: cannot import module {module_name!r} ({exc})") from exc
    obj = getattr(module, attr, None)
    if obj is None:
        raise ConfigError(f"estimator={spec!r}: module {module_name!r} has no attribute {attr!r}")
    if isinstance(obj, ExternalEstimator):
        return obj
    if isinstance(obj, type) or (callable(obj) and getattr(obj, "__code__", None) is not None
                                 and obj.__code__.co_argcount == 0):
        obj = obj()
        if isinstance(obj, ExternalEstimator):
            return obj
    if not callable(obj):
        raise ConfigError(f"estimator={spec!r}: {attr!r} is not callable")
    return ExternalEstimator(obj, name=spec)
