"""The multi-view batch: one type for what training, evaluation, baselines and adaptation pass around.

A :class:`MultiViewBatch` holds ``B`` samples of ``V`` views each. View 0 is the *reference* (the view
being refined), views ``1…V−1`` are its *sources* (its ``pair.txt`` neighbours). Units and conventions
are the package's: depth in millimetres (z-depth, 0 = hole / no ground truth), ``intrinsics (…, 3, 3)``
in pixels, ``extrinsics (…, 3, 4)`` or ``(…, 4, 4)`` world-to-camera, images ``(…, 3, H, W)`` in [0, 1].

:class:`MultiView` is the reference's cameras with its sources' cameras and depths: the ``multiview``
argument of the losses, metrics and baselines (it also reads as the mapping
``{"K_ref", "E_ref", "depth_src", "K_src", "E_src"}`` that those took before).

Both types also read like the dicts they replace (``batch["depth"]``, ``batch.get("image")``,
``"mask" in batch``), so code written against the old dict batches keeps working.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import torch

from deltaz.core.errors import DataError

__all__ = ["MultiView", "MultiViewBatch", "ViewBatch"]


class _MappingView:
    """Dict-style read access to a dataclass's fields (``None`` fields count as absent)."""

    def _fields(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        out.update(getattr(self, "extra", {}) or {})
        return {k: v for k, v in out.items() if v is not None}

    def __getitem__(self, key: str) -> Any:
        fields = self._fields()
        if key not in fields:
            raise KeyError(key)
        return fields[key]

    def __contains__(self, key: object) -> bool:
        return key in self._fields()

    def get(self, key: str, default: Any = None) -> Any:
        return self._fields().get(key, default)

    def keys(self):
        return self._fields().keys()

    def items(self):
        return self._fields().items()

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields())


def _move(value: Any, device: torch.device, non_blocking: bool) -> Any:
    if torch.is_tensor(value):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, dict):
        return {k: _move(v, device, non_blocking) for k, v in value.items()}
    return value


@dataclass
class MultiView(_MappingView):
    """A reference's cameras and its ``S`` sources' cameras and depths.

    ``K_ref (B, 3, 3)``, ``E_ref (B, 3|4, 4)``, ``depth_src (B, S, H', W')`` mm (0 = hole; ``None`` = cameras
    only, where a function says it may be), ``K_src (B, S, 3, 3)`` for ``H'×W'``, ``E_src (B, S, 3|4, 4)``;
    optional confidences ``confidence_ref (B, H, W)``, ``confidence_src (B, S, H', W')`` (e.g. the plane
    sweep's, read by :class:`deltaz.ops.baselines.GeometricAveraging`).
    """

    K_ref: torch.Tensor
    E_ref: torch.Tensor
    depth_src: torch.Tensor | None
    K_src: torch.Tensor
    E_src: torch.Tensor
    confidence_ref: torch.Tensor | None = None
    confidence_src: torch.Tensor | None = None

    @classmethod
    def coerce(cls, value: "MultiView | Mapping[str, torch.Tensor] | None") -> "MultiView | None":
        """A :class:`MultiView` from itself, from the old dict form, or ``None``."""
        if value is None or isinstance(value, MultiView):
            return value
        missing = [k for k in ("K_ref", "E_ref", "depth_src", "K_src", "E_src") if k not in value]
        if missing:
            raise DataError(f"multiview has no {missing}; expected K_ref, E_ref, depth_src, K_src, E_src")
        return cls(**{k: value[k] for k in ("K_ref", "E_ref", "depth_src", "K_src", "E_src")},
                   confidence_ref=value.get("confidence_ref"), confidence_src=value.get("confidence_src"))

    @property
    def num_sources(self) -> int:
        return int(self.K_src.shape[1])

    def source(self, s: int) -> "MultiView":
        """The same reference with source ``s`` alone (``S = 1``)."""
        pick = lambda t: None if t is None else t[:, s:s + 1]  # noqa: E731
        return dataclasses.replace(self, depth_src=pick(self.depth_src), K_src=self.K_src[:, s:s + 1],
                                   E_src=self.E_src[:, s:s + 1], confidence_src=pick(self.confidence_src))

    def require_depths(self, who: str) -> torch.Tensor:
        """``depth_src``, or a :class:`DataError` naming ``who`` when the multiview has cameras only."""
        if self.depth_src is None:
            raise DataError(f"{who} needs the source depths: multiview.depth_src is None")
        return self.depth_src

    def with_depths(self, depth_src: torch.Tensor) -> "MultiView":
        """The same cameras with other source depths ``(B, S, H, W)`` (e.g. refined ones)."""
        return dataclasses.replace(self, depth_src=depth_src)

    def to(self, device: str | torch.device, non_blocking: bool = False) -> "MultiView":
        device = torch.device(device)
        return MultiView(**{f.name: _move(getattr(self, f.name), device, non_blocking)
                            for f in dataclasses.fields(self)})


@dataclass
class ViewBatch(_MappingView):
    """One view per sample: ``depth_init (B, H, W)`` mm, ``intrinsics (B, 3, 3)``, ``extrinsics
    (B, 3|4, 4)``, and when known ``depth`` (ground truth, mm), ``mask (B, H, W)`` bool, ``image (B, 3, H, W)``."""

    depth_init: torch.Tensor
    intrinsics: torch.Tensor
    extrinsics: torch.Tensor
    depth: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    image: torch.Tensor | None = None


@dataclass
class MultiViewBatch(_MappingView):
    """``B`` samples of ``V`` views, view 0 the reference; tensors are ``(B, V, …)``.

    ``depth_init (B, V, H, W)`` mm, ``intrinsics (B, V, 3, 3)``, ``extrinsics (B, V, 3|4, 4)``;
    optional ``depth`` (ground truth, mm, 0 = none), ``mask (B, V, H, W)`` bool (where ground truth
    counts), ``image (B, V, 3, H, W)`` in [0, 1]; ``scene`` names the scan all samples come from;
    ``extra`` keeps any other per-sample tensor of the loader (``depth_range``, ``view_ids``, …).
    """

    depth_init: torch.Tensor
    intrinsics: torch.Tensor
    extrinsics: torch.Tensor
    depth: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    image: torch.Tensor | None = None
    scene: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.depth_init.dim() != 4:
            raise DataError(f"depth_init must be (B, V, H, W) mm, got shape {tuple(self.depth_init.shape)}")
        if self.mask is not None:
            self.mask = self.mask.bool()

    # ------------------------------------------------------------------ building
    @classmethod
    def from_mapping(cls, batch: "Mapping[str, Any] | MultiViewBatch") -> "MultiViewBatch":
        """The batch from a dict of ``(B, V, …)`` tensors (the loader's former form), or itself."""
        if isinstance(batch, MultiViewBatch):
            return batch
        for name in ("depth_init", "intrinsics", "extrinsics"):
            if name not in batch:
                raise DataError(f"batch has no {name!r}; expected depth_init, intrinsics, extrinsics (B, V, …)")
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(**{k: batch[k] for k in known if k in batch},
                   extra={k: v for k, v in batch.items() if k not in known})

    @classmethod
    def collate(cls, samples: list[Mapping[str, Any]]) -> "MultiViewBatch":
        """Stack per-sample dicts of ``(V, …)`` tensors into a batch; all samples must share ``scene``."""
        scenes = {s.get("scene") for s in samples}
        if len(scenes) != 1:
            raise DataError(f"a batch mixes scenes {sorted(map(str, scenes))}; batch with SameSceneBatchSampler")
        stacked = {k: torch.stack([s[k] for s in samples]) for k in samples[0] if k != "scene"}
        return cls.from_mapping({"scene": samples[0].get("scene"), **stacked})

    # ------------------------------------------------------------------ views
    @property
    def num_views(self) -> int:
        return int(self.depth_init.shape[1])

    @property
    def num_sources(self) -> int:
        return self.num_views - 1

    def view(self, v: int) -> ViewBatch:
        """View ``v`` of every sample (0 = the reference)."""
        pick = lambda t: None if t is None else t[:, v]  # noqa: E731
        return ViewBatch(self.depth_init[:, v], self.intrinsics[:, v], self.extrinsics[:, v],
                         pick(self.depth), pick(self.mask), pick(self.image))

    @property
    def ref(self) -> ViewBatch:
        """The reference view (view 0) of every sample."""
        return self.view(0)

    @property
    def sources(self) -> list[ViewBatch]:
        """The source views (1…V−1) of every sample, in pair order."""
        return [self.view(v) for v in range(1, self.num_views)]

    def pairs(self) -> Iterator[tuple[ViewBatch, ViewBatch]]:
        """``(reference, source)`` for each source view."""
        ref = self.ref
        for src in self.sources:
            yield ref, src

    def multiview(self, depth_src: torch.Tensor | str = "depth_init") -> MultiView | None:
        """The reference's :class:`MultiView`; ``None`` when the batch has no sources.

        ``depth_src``: ``"depth_init"`` (the sources' input depths), ``"depth"`` (their ground truth,
        zeroed outside their masks), or a tensor ``(B, V−1, H, W)`` mm (e.g. their refined depths).
        """
        if self.num_views < 2:
            return None
        if isinstance(depth_src, str):
            depth_src = self._source_depths(depth_src)
        return MultiView(self.intrinsics[:, 0], self.extrinsics[:, 0], depth_src,
                         self.intrinsics[:, 1:], self.extrinsics[:, 1:])

    def _source_depths(self, which: str) -> torch.Tensor:
        if which == "depth_init":
            return self.depth_init[:, 1:]
        if which == "depth":
            if self.depth is None:
                raise DataError("the batch has no ground-truth depth for multiview(depth_src='depth')")
            if self.mask is None:
                return self.depth[:, 1:]
            return torch.where(self.mask[:, 1:], self.depth[:, 1:], torch.zeros_like(self.depth[:, 1:]))
        raise DataError(f"depth_src={which!r}: expected 'depth_init', 'depth' or a (B, V-1, H, W) tensor")

    # ------------------------------------------------------------------ moving
    def to(self, device: str | torch.device | None, non_blocking: bool = False) -> "MultiViewBatch":
        """The batch with every tensor on ``device`` (``None``: unchanged)."""
        if device is None:
            return self
        device = torch.device(device)
        moved = {f.name: _move(getattr(self, f.name), device, non_blocking) for f in dataclasses.fields(self)}
        return MultiViewBatch(**moved)

    def pin_memory(self) -> "MultiViewBatch":
        """The batch in pinned memory (``DataLoader(pin_memory=True)`` calls this)."""
        pin = lambda v: v.pin_memory() if torch.is_tensor(v) else v  # noqa: E731
        return MultiViewBatch(**{f.name: (pin(getattr(self, f.name)) if f.name != "extra"
                                          else {k: pin(v) for k, v in self.extra.items()})
                                 for f in dataclasses.fields(self)})
