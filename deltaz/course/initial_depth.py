"""Course helpers of notebooks/03_initial_depth.ipynb: one corruption effect at a time, its error, a raw plane sweep.

* :func:`effect_preset` / :func:`effect_params` — the preset an effect is shown with and its parameters there;
* :func:`apply_effect` — :func:`deltaz.ops.corrupt.simulate_initial_depth` with every other effect of that preset
  switched off (``<effect>=False``), so an effect runs alone with exactly the parameters training uses;
* :func:`signed_error` / :func:`error_layers` / :func:`effect_figures` — the error of an initial depth against
  the ground truth (mm, on pixels valid in both), as layers, a row of panels and a histogram (:mod:`deltaz.viz`);
* :func:`near_edges` / :func:`neighbour_correlation` / :func:`local_contrast` — pixels near depth edges, how alike
  the errors of neighbouring pixels are, and the image's texture: what the notebook's checks measure;
* :func:`error_summary` — one row of numbers per initial depth (holes, median, gross errors and where they are);
* :func:`sweep_view` — the plane sweep (:func:`deltaz.ops.mvs.plane_sweep`) of a sample's reference view against
  its source views, before any geometric filter: a real algorithm's initial depth to compare with the simulation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from deltaz.core.errors import ConfigError
from deltaz.ops import corrupt
from deltaz.ops.mvs import SweepResult, plane_sweep
from deltaz.ops.mvs.scan import widened_range
from deltaz.course.mvs_lesson import local_contrast  # noqa: F401 (one definition, shared with 04)
from deltaz.viz import render_depth_row, render_error_histogram

__all__ = [
    "ERROR",
    "effect_preset",
    "effect_params",
    "apply_effect",
    "signed_error",
    "error_layers",
    "effect_figures",
    "near_edges",
    "neighbour_correlation",
    "local_contrast",
    "error_summary",
    "sweep_view",
]

#: Name of the error layer of :func:`error_layers` (a name starting with "error": drawn diverging around 0).
ERROR = "error: initial − gt"


def effect_preset(name: str) -> str:
    """The preset of :data:`deltaz.ops.corrupt.PRESETS` an effect is shown with: ``"mvs"``, else the first preset
    that has it (``mde_distortion``: ``"mde"``, ``shift_edges``: ``"edges"``). Raises ConfigError for an unknown
    effect."""
    if name not in corrupt.EFFECTS:
        raise ConfigError(f"effect: expected one of {', '.join(corrupt.EFFECTS)}, got {name!r}")
    for preset in ("mvs", *corrupt.PRESETS):
        if name in {n for n, _ in corrupt.PRESETS[preset]}:
            return preset
    raise ConfigError(f"effect {name!r} is in no preset")


def effect_params(name: str) -> dict[str, Any]:
    """The parameters ``name`` runs with in its preset (:func:`effect_preset`), e.g. ``{"step_mm": 2.65}``."""
    return dict(dict(corrupt.PRESETS[effect_preset(name)])[name])


def apply_effect(
    depth: torch.Tensor,
    name: str,
    seed: int = 0,
    depth_range_mm: tuple[float, float] = (425.0, 935.0),
    **overrides: Any,
) -> torch.Tensor:
    """Effect ``name`` alone on ground truth ``depth`` ``(H, W)`` mm: its preset with every other effect off.

    The generator is ``torch.Generator().manual_seed(seed)``; ``depth_range_mm`` is the scan's range (the first
    plane of ``quantize``, the range of ``outliers``); ``overrides`` change the effect's parameters.
    """
    preset = effect_preset(name)
    others = {n: False for n, _ in corrupt.PRESETS[preset] if n != name}
    generator = torch.Generator().manual_seed(int(seed))
    return corrupt.simulate_initial_depth(depth, preset, generator, depth_range_mm, **others, **overrides)


def signed_error(initial: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """``initial − gt`` (mm, positive = too far) on the pixels where both are > 0, as a 1-D tensor."""
    both = (initial > 0) & (gt > 0)
    return (initial - gt)[both]


def error_layers(gt: torch.Tensor, initial: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"gt", "initial", ERROR}`` for :func:`deltaz.viz.render_depth_row`: the error (:data:`ERROR`, a diverging
    layer) is ``initial − gt`` in mm where both are > 0 and NaN elsewhere (drawn as a hole)."""
    both = (initial > 0) & (gt > 0)
    error = torch.where(both, initial - gt, torch.full_like(gt, float("nan")))
    return {"gt": gt, "initial": initial, ERROR: error}


def effect_figures(gt: torch.Tensor, initial: torch.Tensor, title: str, error_max_mm: float | None = None,
                   histogram_max_mm: float | None = None):
    """Two figures: ground truth / initial depth (both in the colours of the ground truth's range, so outliers
    do not wash it out) / error (mm, ``±error_max_mm``), and the histogram of ``|initial − gt|``."""
    lo, hi = (float(v) for v in (gt[gt > 0].min(), gt[gt > 0].max())) if (gt > 0).any() else (0.0, 1.0)
    row = render_depth_row(error_layers(gt, initial), names=["gt", "initial", ERROR], depth_vmin=lo,
                           depth_vmax=hi, diverging_max=error_max_mm, title=title)
    hist = render_error_histogram({title: signed_error(initial, gt)}, max_mm=histogram_max_mm,
                                  title=f"{title}: |initial − gt|", figsize=(6.0, 3.0))
    return row, hist


def near_edges(gt: torch.Tensor, radius_px: int = 2, jump_mm: float = 10.0) -> torch.Tensor:
    """Pixels within ``radius_px`` of a depth edge of ``gt`` (:func:`deltaz.ops.corrupt.edge_mask`: a jump of more
    than ``jump_mm`` or a hole in the 3×3 neighbourhood): ``(H, W)`` bool, the band ``edge_holes`` draws from."""
    edges = corrupt.edge_mask(gt, jump_mm).float()[None, None]
    return F.max_pool2d(edges, 2 * int(radius_px) + 1, 1, int(radius_px))[0, 0] > 0


def neighbour_correlation(initial: torch.Tensor, gt: torch.Tensor) -> float:
    """Correlation of the error ``initial − gt`` at horizontally adjacent pixels (both valid in both maps):
    about 0 for independent per-pixel noise, near 1 for a smooth error."""
    both = (initial > 0) & (gt > 0)
    error = initial - gt
    pair = both[:, :-1] & both[:, 1:]
    left, right = error[:, :-1][pair].double(), error[:, 1:][pair].double()
    return float(torch.corrcoef(torch.stack([left, right]))[0, 1])


def sweep_view(
    sample: dict[str, Any],
    depth_range_mm: tuple[float, float],
    num_planes: int = 48,
    num_src: int = 4,
    **options: Any,
) -> tuple[SweepResult, float]:
    """The raw plane sweep of a sample's reference view (view 0) against its first ``num_src`` source views.

    As :func:`deltaz.ops.mvs.sweep_scan` runs it, without the geometric filter: the planes cover the scan's
    ``depth_range_mm`` widened by ``range_margin`` (5 %) of its span on both sides. ``options`` go to
    :func:`deltaz.ops.mvs.plane_sweep`. Returns the :class:`~deltaz.ops.mvs.SweepResult` and the plane spacing (mm).
    """
    if "image" not in sample:
        raise ConfigError("sample: expected images (course.sample_view(..., use_images=True)) for the plane sweep")
    low, high = widened_range(*depth_range_mm)
    image, K, E = sample["image"], sample["intrinsics"], sample["extrinsics"]
    n = 1 + min(int(num_src), image.shape[0] - 1)
    result = plane_sweep(image[0], K[0], E[0], image[1:n], K[1:n], E[1:n], low, high, num_planes, **options)
    return result, (high - low) / (num_planes - 1)


def error_summary(initial: torch.Tensor, gt: torch.Tensor, image: torch.Tensor, gross_mm: float = 20.0) -> dict:
    """Numbers that tell two initial depths apart, on the pixels with ground truth:

    ``holes_pct`` (% without an initial depth), ``median_mm``/``mae_mm`` of ``|initial − gt|`` where both exist,
    ``gross_pct`` (% of those with an error over ``gross_mm``), ``gross_clustered`` (share of gross pixels with a
    gross 8-neighbour: near 1 when wrong pixels come in patches), ``gross_near_edges`` (share of gross pixels
    within 4 px of a depth edge), ``gross_too_far`` (share of gross pixels with ``initial > gt``: small when the
    gross errors are foreground fattening, which only moves pixels nearer) and ``hole_contrast`` (median :func:`local_contrast` of ``image`` at holes over
    that at good pixels, both away from depth edges: well below 1 when holes sit where the image has no texture).
    """
    valid = gt > 0
    both = valid & (initial > 0)
    error = (initial - gt).abs()
    gross = both & (error > gross_mm)
    holes = valid & (initial <= 0)
    neighbours = F.conv2d(gross.float()[None, None], torch.ones(1, 1, 3, 3), padding=1)[0, 0] - gross.float()
    edges = near_edges(gt, radius_px=4)
    contrast = local_contrast(image)
    off_holes, off_good = holes & ~edges, both & ~gross & ~edges
    ratio = (float(contrast[off_holes].median() / contrast[off_good].median())
             if off_holes.any() and off_good.any() else float("nan"))
    n_gross = max(int(gross.sum()), 1)
    return {
        "holes_pct": 100 * float(holes.sum()) / max(int(valid.sum()), 1),
        "median_mm": float(error[both].median()),
        "mae_mm": float(error[both].mean()),
        "gross_pct": 100 * float(gross.sum()) / max(int(both.sum()), 1),
        "gross_clustered": float((neighbours[gross] > 0).sum()) / n_gross,
        "gross_near_edges": float((gross & edges).sum()) / n_gross,
        "gross_too_far": float((gross & (initial > gt)).sum()) / n_gross,
        "hole_contrast": ratio,
    }
