"""The rows of the tables: each evaluated method as ``(ScanViews, idx) -> (B, H, W)`` mm.

A *method* maps the references ``idx`` of a :class:`~deltaz.engine.scans.ScanViews` to depth maps.
``identity`` is the initial depth, the classical baselines come from :data:`deltaz.ops.baselines.BASELINES`,
``mvsnet_refine`` / ``deltaz`` are trained refiners (:func:`model_method`), ``deltaz+gate`` the refiner behind
the photometric gate (:func:`gated_method`), ``search`` the multi-view candidate search and ``search+deltaz`` the
refiner after it (:func:`search_methods`). To add a row, give it a
place in :data:`METHOD_ORDER` and a builder in :func:`build_methods`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch

from deltaz.core.errors import ConfigError, DataError
from deltaz.engine.scans import ScanViews, chunks, gate_views
from deltaz.engine.refine import load_refiner  # noqa: F401 (part of the evaluate API)
from deltaz.model import refine
from deltaz.ops.agreement import MIRROR_AGREEMENT
from deltaz.ops.baselines import BASELINES, NEEDS_IMAGE, NEEDS_MULTIVIEW
from deltaz.ops.dead_zone import DEAD_ZONE
from deltaz.ops.gate import GATE_MARGIN
from deltaz.ops.mvs.consensus import consensus_depth
from deltaz.ops.mvs.planes_calibrated import planes_views
from deltaz.ops.mvs.propagate import propagate_depth
from deltaz.ops.mvs.subpixel import subpixel_views
from deltaz.ops.smooth import SURFACE_SMOOTHING

__all__ = [
    "CLASSICAL_BASELINES",
    "METHOD_ORDER",
    "Method",
    "load_refiner",
    "baseline_method",
    "model_method",
    "gated_method",
    "remembered",
    "consensus_views",
    "search_methods",
    "confidence_method",
    "apply_method",
    "baseline_names",
    "build_methods",
]

#: Baselines evaluated by ``--baselines all`` (identity is always evaluated: it is the input).
CLASSICAL_BASELINES = tuple(name for name in BASELINES if name != "identity")
#: Row order of the tables.
METHOD_ORDER = ("identity", *CLASSICAL_BASELINES, "search", "mvsnet_refine", "deltaz", "deltaz+gate", "search+deltaz",
                "deltaz+adapt")

Method = Callable[[ScanViews, Sequence[int]], torch.Tensor]


def baseline_method(name: str, params: Mapping[str, Any]) -> Method:
    """A registry baseline as a method: its inputs are the initial depths (sources' too)."""
    fn = BASELINES[name]

    def apply(views: ScanViews, idx: Sequence[int]) -> torch.Tensor:
        idx = list(idx)
        image = views.image[idx] if name in NEEDS_IMAGE else None
        multiview = views.multiview(idx) if name in NEEDS_MULTIVIEW else None
        return fn(views.depth_init[idx], image, dict(params), multiview)

    return apply


def _refine_views(model: torch.nn.Module, views: ScanViews, idx: list[int], device, depth: torch.Tensor | None = None,
                  **kwargs) -> dict[str, torch.Tensor]:
    """:func:`deltaz.model.refine` on the references ``idx`` (with their images when the model takes them), from
    their initial depths or from ``depth (B, H, W)`` mm."""
    image = None
    if getattr(model, "in_channels", 1) == 4:
        if views.image is None:
            raise DataError(f"{views.scan}: the model takes images (use_images) but the scan has no images/")
        image = views.image[idx].to(device)
    depth_range = views.depth_range.reshape(1, 2).expand(len(idx), 2).to(device)
    depth = views.depth_init[idx] if depth is None else depth
    return refine(model, depth.to(device), image=image, depth_range=depth_range, **kwargs)


def model_method(model: torch.nn.Module, device: torch.device | str, keep_holes: bool = True,
                 dead_zone: tuple[float, float] | None = DEAD_ZONE,
                 mirror_agreement: bool = MIRROR_AGREEMENT, smooth: bool = SURFACE_SMOOTHING) -> Method:
    """A refiner as a method: ``depth_refined = depth_init + Δz`` via :func:`deltaz.model.refine`.

    ``keep_holes`` as in training (``not TrainConfig.fill_holes``): holes of the initial depth stay holes
    unless the model was trained to fill them. ``dead_zone``: :mod:`deltaz.ops.dead_zone` (None = off), here and
    in the other refiner rows; ``mirror_agreement``: :mod:`deltaz.ops.agreement`, likewise; ``smooth``:
    :mod:`deltaz.ops.smooth`, likewise.
    """

    @torch.no_grad()
    def apply(views: ScanViews, idx: Sequence[int]) -> torch.Tensor:
        out = _refine_views(model, views, list(idx), device, keep_holes=keep_holes, dead_zone=dead_zone,
                            mirror_agreement=mirror_agreement, smooth=smooth)
        return out["depth_refined"].float().cpu()

    return apply


def gated_method(model: torch.nn.Module, device: torch.device | str, keep_holes: bool = True,
                 margin: float = GATE_MARGIN, dead_zone: tuple[float, float] | None = DEAD_ZONE,
                 mirror_agreement: bool = MIRROR_AGREEMENT, refined: Method | None = None,
                 smooth: bool = SURFACE_SMOOTHING) -> Method:
    """The refiner behind the photometric gate (:func:`deltaz.ops.gate.gate_correction`): its correction is kept
    where the scan's source views (pair.txt's, with their input depths for the visibility test) confirm it
    photometrically, the input elsewhere. Needs the scan's images and at least one source view. ``refined``: the
    ungated row's method (:func:`remembered`), whose output it then gates instead of running the refiner again;
    its dials are then that method's (``keep_holes``, ``dead_zone``, ``mirror_agreement``, ``smooth`` here are not
    used)."""
    ungated = refined or model_method(model, device, keep_holes, dead_zone, mirror_agreement, smooth)

    @torch.no_grad()
    def apply(views: ScanViews, idx: Sequence[int]) -> torch.Tensor:
        idx = list(idx)  # gate_views says so when images or sources lack
        return gate_views(views, idx, ungated(views, idx), margin, batch_size=len(idx))

    return apply


def remembered(method: Method) -> Method:
    """``method`` keeping its outputs for the scan it last saw (the very object), batch by batch, so that two rows
    starting from them (``deltaz`` and ``deltaz+gate``) run it once."""
    cache: dict[Any, Any] = {}

    def apply(views: ScanViews, idx: Sequence[int]) -> torch.Tensor:
        if cache.get("views") is not views:
            cache.clear()
            cache["views"] = views
        key = tuple(idx)
        if key not in cache:
            cache[key] = method(views, idx)
        return cache[key]

    return apply


@torch.no_grad()
def consensus_views(views: ScanViews, batch_size: int = 8) -> torch.Tensor:
    """:func:`deltaz.ops.mvs.consensus.consensus_depth` on every view of the scan against its pair.txt sources
    (their input depths, images for the photometric check; holes two sources agree on are filled):
    ``(N, H, W)`` mm on the CPU."""
    out = []
    for idx in chunks(range(len(views)), batch_size):
        batch = views.batch(idx, images=True)
        out.append(consensus_depth(views.depth_init[idx], batch.image[:, 0], batch.image[:, 1:],
                                   views.multiview(idx), fill_holes=True).cpu())
    return torch.cat(out)


def search_methods(model: torch.nn.Module, device: torch.device | str, keep_holes: bool = True,
                   dead_zone: tuple[float, float] | None = DEAD_ZONE,
                   mirror_agreement: bool = MIRROR_AGREEMENT, smooth: bool = SURFACE_SMOOTHING
                   ) -> dict[str, Method]:
    """``search``: the multi-view candidate search — first the sources' depths
    (:func:`consensus_views`: a pixel no source agrees with takes theirs), then the neighbours'
    (:func:`deltaz.ops.mvs.propagate.propagate_depth`, the sources' consensus depths deciding visibility and
    agreement), then segment planes (:func:`deltaz.ops.mvs.planes_calibrated.planes_views`, the same sources), then the
    sub-pixel refinement (:func:`deltaz.ops.mvs.subpixel.subpixel_views`, the same sources);
    ``search+deltaz``: the refiner on that. The two share one search per view. Needs the scan's
    images and at least one source view."""
    cache: dict[Any, Any] = {}  # one scan at a time: "views" (the very object), "agreed", then one entry per batch

    def searched(views: ScanViews, idx: list[int]) -> torch.Tensor:
        if views.image is None or views.num_src == 0:
            raise DataError(f"{views.scan}: the candidate search needs the scan's images and >= 1 source view")
        if cache.get("views") is not views:  # identity, not the scan's name: another root may reuse a name
            cache.clear()
            cache.update(views=views, agreed=consensus_views(views))
        key = tuple(idx)
        if key not in cache:
            agreed = cache["agreed"]
            batch = views.batch(idx, images=True)
            multiview = views.multiview(idx, agreed)
            depth = propagate_depth(agreed[idx], batch.image[:, 0], batch.image[:, 1:], multiview)
            depth = planes_views(depth, batch.image[:, 0], batch.image[:, 1:], multiview)
            cache[key] = subpixel_views(depth, batch.image[:, 0], batch.image[:, 1:], multiview).cpu()
        return cache[key]

    def search(views: ScanViews, idx: Sequence[int]) -> torch.Tensor:
        return searched(views, list(idx))

    @torch.no_grad()
    def search_then_refine(views: ScanViews, idx: Sequence[int]) -> torch.Tensor:
        idx = list(idx)
        out = _refine_views(model, views, idx, device, depth=searched(views, idx), keep_holes=keep_holes,
                            dead_zone=dead_zone, mirror_agreement=mirror_agreement, smooth=smooth)
        return out["depth_refined"].float().cpu()

    return {"search": search, "search+deltaz": search_then_refine}


def confidence_method(model: torch.nn.Module, device: torch.device | str) -> Method:
    """A refiner's confidence map ``(N, H, W)`` in (0, 1] (:func:`deltaz.model.refine`), as a method."""

    @torch.no_grad()
    def apply(views: ScanViews, idx: Sequence[int]) -> torch.Tensor:
        return _refine_views(model, views, list(idx), device)["confidence"].float().cpu()

    return apply


def apply_method(method: Method, views: ScanViews, batch_size: int = 8) -> torch.Tensor:
    """``method`` on every view of the scan, ``batch_size`` views at a time → ``(N, H, W)`` mm.

    Negative or non-finite outputs become holes (0), the layout's "no value".
    """
    out = torch.cat([method(views, idx) for idx in chunks(range(len(views)), batch_size)]).float()
    return torch.where(torch.isfinite(out) & (out > 0), out, torch.zeros_like(out))


def baseline_names(baselines: str | Sequence[str] | None) -> list[str]:
    """``"all"``, ``"none"``/None, a comma-separated string or a list → registry names (without identity).
    Raises :class:`ConfigError` naming ``--baselines`` for an unknown name."""
    if baselines is None or baselines == "none":
        return []
    if isinstance(baselines, str):
        baselines = list(CLASSICAL_BASELINES) if baselines == "all" else [
            b.strip() for b in baselines.split(",") if b.strip()]
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ConfigError(f"--baselines: unknown {unknown}; expected 'all', 'none' or names from {sorted(BASELINES)}")
    return [b for b in baselines if b != "identity"]


def needs_images(model: torch.nn.Module | None) -> bool:
    """Whether a refiner takes an RGB image (4 input channels)."""
    return model is not None and getattr(model, "in_channels", 1) == 4


def build_methods(
    baseline_params: Mapping[str, Mapping[str, Any]],
    refiners: Mapping[str, tuple[torch.nn.Module, Mapping[str, Any]]],
    device: torch.device | str,
    extra: Mapping[str, Method] | None = None,
    dead_zone: tuple[float, float] | None = DEAD_ZONE,
    mirror_agreement: bool = MIRROR_AGREEMENT,
    smooth: bool = SURFACE_SMOOTHING,
) -> dict[str, Method]:
    """Every row to evaluate, in :data:`METHOD_ORDER`: ``identity``, the baselines with their chosen ``{"params":
    ...}``, the ``refiners`` (``{"deltaz": (model, train_config), ...}``, holes kept unless trained with
    ``fill_holes``; ``dead_zone`` as in :func:`model_method`; ``mirror_agreement`` and ``smooth`` likewise, for
    ``deltaz`` only: the compared network runs without them) and ``extra`` methods (e.g. ``deltaz+adapt``; one
    named like a refiner is that refiner's row, built by the caller)."""
    methods: dict[str, Method] = {"identity": baseline_method("identity", {})}
    for name, info in baseline_params.items():
        methods[name] = baseline_method(name, info["params"])
    for name, (model, config) in refiners.items():
        if name in (extra or {}):
            continue  # the caller's own row for this refiner (the runner's remembered deltaz) replaces it
        methods[name] = model_method(model, device, keep_holes=not config.get("fill_holes", False),
                                     dead_zone=dead_zone, mirror_agreement=mirror_agreement and name == "deltaz",
                                     smooth=smooth and name == "deltaz")
    methods.update(extra or {})
    unknown = [m for m in methods if m not in METHOD_ORDER]
    if unknown:
        raise ConfigError(f"methods {unknown}: not in METHOD_ORDER; add them there to give them a table row")
    return {m: methods[m] for m in METHOD_ORDER if m in methods}
