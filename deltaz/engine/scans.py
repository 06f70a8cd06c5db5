"""Which scans are evaluated, and every view of one scan as the methods see it.

:func:`resolve_scans` recovers the checkpoint's train / validation split; :func:`load_scan_views` loads a
scan's views with their evaluation-mode initial depths and ``pair.txt`` source views (:class:`ScanViews`);
:func:`gate_views` puts a method's depths of those views behind the photometric gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from deltaz.core.batch import MultiView, MultiViewBatch
from deltaz.core.errors import ConfigError, DataError
from deltaz.data import DepthRefinementDataset
from deltaz.data.splits import split_scans
from deltaz.engine.config import TrainConfig
from deltaz.io.dtu import layout
from deltaz.io.dtu.splits import scan_list
from deltaz.ops.gate import GATE_MARGIN, gate_correction

__all__ = ["EVAL_SPLITS", "ScanViews", "chunks", "gate_views", "load_scan_views", "resolve_scans"]

#: The ``--split`` choices: the checkpoint's validation / training scans, the scans it never saw, or all.
EVAL_SPLITS = ("val", "test", "all", "train")


@dataclass
class ScanViews:
    """Every view of one scan, as evaluated: ``N`` views, ``S`` source views each.

    ``depth``/``depth_init (N, H, W)`` mm (0 = hole), ``intrinsics (N, 3, 3)``, ``extrinsics (N, 3, 4)``
    world-to-camera, ``image (N, 3, H, W)`` in [0, 1] or None, ``depth_range (2,)`` mm, ``view_ids``
    (N ints) and ``src_index``: for each view, the *array indices* of its ``S`` source views.
    """

    scan: str
    view_ids: list[int]
    depth: torch.Tensor
    depth_init: torch.Tensor
    intrinsics: torch.Tensor
    extrinsics: torch.Tensor
    image: torch.Tensor | None
    depth_range: torch.Tensor
    src_index: list[list[int]]

    def __len__(self) -> int:
        return len(self.view_ids)

    @property
    def num_src(self) -> int:
        return len(self.src_index[0]) if self.src_index else 0

    def view_index(self, idx: Sequence[int]) -> torch.Tensor:
        """``(B, 1 + S)`` array indices: each reference of ``idx`` followed by its source views."""
        return torch.tensor([[i, *self.src_index[i]] for i in idx], dtype=torch.long)

    def batch(self, idx: Sequence[int], images: bool = False) -> MultiViewBatch:
        """The references ``idx`` with their sources as a :class:`MultiViewBatch` (``V = 1 + S``);
        ``images=True`` also gathers the ``(B, V, 3, H, W)`` images (when the scan has them)."""
        pick = self.view_index(list(idx))
        image = self.image[pick] if images and self.image is not None else None
        return MultiViewBatch(depth_init=self.depth_init[pick], intrinsics=self.intrinsics[pick],
                              extrinsics=self.extrinsics[pick], depth=self.depth[pick], image=image, scene=self.scan)

    def multiview(self, idx: Sequence[int], depth_all: torch.Tensor | None = None) -> MultiView | None:
        """Cameras of the references ``idx`` and of their sources, with the sources' depths taken from
        ``depth_all (N, H, W)`` mm (the same method's outputs; default the initial depths). None without sources."""
        if self.num_src == 0:
            return None
        idx = list(idx)
        depth_src = "depth_init" if depth_all is None else depth_all[self.view_index(idx)[:, 1:]]
        return self.batch(idx).multiview(depth_src)


def chunks(indices: Iterable[int], size: int) -> Iterable[list[int]]:
    """``indices`` in consecutive lists of at most ``size``."""
    indices = list(indices)
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


@torch.no_grad()
def gate_views(views: ScanViews, idx: Sequence[int], refined: torch.Tensor, margin: float = GATE_MARGIN,
               trust_rel: float | None = None, batch_size: int = 8, against: torch.Tensor | None = None
               ) -> torch.Tensor:
    """``refined (B, H, W)`` mm of the views ``idx`` behind :func:`deltaz.ops.gate.gate_correction`: checked
    against the views' inputs with their ``pair.txt`` sources (the sources' input depths for the visibility
    test; ``trust_rel`` as there), or against ``against (N, H, W)`` mm, depths of every view of the scan (each
    source's own for its visibility test). Needs the scan's images and at least one source view; returns
    ``(B, H, W)`` mm on the CPU."""
    idx = list(idx)
    if views.image is None or views.num_src == 0:
        raise DataError(f"{views.scan}: the photometric gate needs the scan's images and >= 1 source view")
    refined = refined.detach().float().cpu()
    base = views.depth_init if against is None else against.detach().float().cpu()
    out = []
    for start in range(0, len(idx), batch_size):
        part = idx[start:start + batch_size]
        batch = views.batch(part, images=True)
        out.append(gate_correction(base[part], refined[start:start + len(part)], batch.image[:, 0],
                                   batch.image[:, 1:], views.multiview(part, base), margin, trust_rel))
    return torch.cat(out)


def load_scan_views(
    data_root: str | Path,
    scan: str,
    num_src_views: int = 4,
    preset: str = "mvs",
    use_images: bool = False,
) -> ScanViews:
    """Load every view of ``scan`` with its evaluation-mode initial depth.

    One :class:`deltaz.data.DepthRefinementDataset` (``train=False``) gives both: its fixed per-(scan, view)
    corruption the initial depth, its pair.txt-based samples each view's source views (at most
    ``num_src_views``, fewer when the scan has fewer views). Raises :class:`DataError` when a source view
    has no pair.txt row of its own (it could not be evaluated as a reference).
    """
    n_views = len(layout.list_views(Path(data_root) / scan))
    num_src = max(0, min(int(num_src_views), n_views - 1))
    dataset = DepthRefinementDataset(data_root, [scan], num_views=1 + num_src, preset=preset, train=False,
                                     use_images=use_images)
    view_ids = [ids[0] for _, ids in dataset.samples]
    position = {vid: i for i, vid in enumerate(view_ids)}
    missing = sorted({s for _, ids in dataset.samples for s in ids[1:] if s not in position})
    if missing:
        raise DataError(f"{Path(data_root) / scan / 'pair.txt'}: source views {missing} have no row of their own; "
                        "re-run `deltaz parse` for this scan or lower --num-src-views to 0")
    src_index = [[position[s] for s in ids[1:]] for _, ids in dataset.samples]
    samples = [dataset[i] for i in range(len(dataset))]
    first = lambda key: torch.stack([s[key][0] for s in samples])  # noqa: E731  (view 0 = the reference)
    return ScanViews(
        scan=scan, view_ids=view_ids, depth=first("depth"), depth_init=first("depth_init"),
        intrinsics=first("intrinsics"), extrinsics=first("extrinsics"),
        image=first("image") if use_images else None, depth_range=samples[-1]["depth_range"], src_index=src_index,
    )


def _split_config(train_config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that chose a checkpoint's scene split; ``split_seed`` is its ``seed`` in checkpoints from
    before ``split_seed`` existed (the training seed split the scenes then)."""
    defaults = TrainConfig()
    seed = int(train_config.get("seed", defaults.seed))
    return {
        "data_root": train_config.get("data_root") or "",
        "val_split": float(train_config.get("val_split", defaults.val_split)),
        "split_seed": int(train_config.get("split_seed", seed)),
        "split": str(train_config.get("split", defaults.split)),
    }


def _training_split(split_root: Path, cfg: Mapping[str, Any]) -> tuple[list[str], list[str], str]:
    """``(train, val, mode)`` scans of ``split_root`` as :func:`deltaz.data.splits.split_scans` chose them."""
    names = layout.list_scans(split_root)
    sources = [str(layout.read_meta(split_root / s).get("source", "")) for s in names]
    mode = cfg["split"]
    if mode == "auto":
        mode = "mvsnet" if sources and all(s.lower().startswith("dtu") for s in sources) else "random"
    train, val = split_scans(names, cfg["val_split"], seed=cfg["split_seed"], split=mode, sources=sources)
    return list(train), list(val), mode


def resolve_scans(data_root: str | Path, split: str, train_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Which scans to evaluate and which to tune the baselines on.

    The training split is recovered with :func:`deltaz.data.splits.split_scans` from the checkpoint's
    ``train_config`` (``data_root``, ``val_split``, ``split_seed`` — ``seed`` in older checkpoints — and
    ``split``); when its ``data_root`` no longer exists, ``data_root`` is split with the same settings instead.
    ``split``: ``val``/``train`` the checkpoint's own scans, ``test`` the scans in neither (with MVSNet's split:
    its test list), ``all``.

    Returns ``{"eval": [...], "val": [...], "train": [...], "split_root": Path, "mode": "random" | "mvsnet",
    "note": str | None}``; ``val`` are the validation scans of ``split_root`` (the baselines' tuning set); ``note``
    says so when some of them are also evaluated (their baseline rows are then not held out) or when the checkpoint's
    training root is missing.
    Raises :class:`ConfigError` for an unknown split, :class:`DataError` when it selects no scan.
    """
    if split not in EVAL_SPLITS:
        raise ConfigError(f"split={split!r}: expected one of {', '.join(EVAL_SPLITS)}")
    data_root = Path(data_root)
    root_scans = layout.list_scans(data_root)
    if not root_scans:
        raise DataError(f"data_root={str(data_root)!r}: no train-ready scans (scan*/ with meta.json)")
    cfg = _split_config(train_config or {})
    split_root = Path(cfg["data_root"]) if cfg["data_root"] and Path(cfg["data_root"]).is_dir() else data_root
    train, val, mode = _training_split(split_root, cfg)
    if split in ("val", "train"):
        wanted = set(val if split == "val" else train)
        chosen = [s for s in root_scans if s in wanted]
    elif split == "test" and mode == "mvsnet":
        chosen = [s for s in root_scans if s in set(scan_list("test"))]
    elif split == "test":
        chosen = [s for s in root_scans if s not in set(train) | set(val)]
    else:
        chosen = list(root_scans)
    if not chosen:
        raise DataError(
            f"--split {split}: no scan of data_root={str(data_root)!r} is in that split "
            f"(training root {str(split_root)!r}: train {train[:4]}..., val {val}); for held-out scans pass "
            f"their own root (e.g. data/demo/test_ready) with --split test or --split all"
        )
    note = _tuning_note(data_root, split_root, cfg["data_root"], chosen, val)
    return {"eval": chosen, "val": val, "train": train, "split_root": split_root, "mode": mode, "note": note}


def _tuning_note(data_root: Path, split_root: Path, configured: str | None, chosen: list[str], val: list[str]
                 ) -> str | None:
    """A note when the checkpoint's training root is missing, or the baselines' tuning scans (``val`` of
    ``split_root``) are among the evaluated ones; else None."""
    tuned_on = set(val) if split_root.resolve() == data_root.resolve() else set()
    both = [s for s in chosen if s in tuned_on]
    notes = []
    if configured and not Path(configured).is_dir():
        notes.append(f"the checkpoint's training root {configured!r} is missing, so {str(data_root)!r} was split with "
                     "its settings")
    if both:
        notes.append(f"the baselines are tuned on {len(both)} of the evaluated scans ({', '.join(both)}): their rows "
                     "are not held out")
    return "; ".join(notes) or None
