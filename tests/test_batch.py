"""deltaz.core.batch: the typed multi-view batch (collate, device moves, views, the multiview builder)."""

from __future__ import annotations

import pytest
import torch

from _tiny_scans import make_dataset
from deltaz.core.batch import MultiView, MultiViewBatch, ViewBatch
from deltaz.core.errors import DataError
from deltaz.data import collate_same_scene, create_dataloaders, to_device

pytestmark = pytest.mark.usefixtures("one_thread")

B, V, H, W = 2, 3, 4, 5


def _sample(seed: int, scene: str = "scan1") -> dict:
    """One loader sample: ``V`` views of ``(H, W)`` with a ground-truth hole per view."""
    g = torch.Generator().manual_seed(seed)
    depth = 500.0 + 100.0 * torch.rand(V, H, W, generator=g)
    depth[:, 0, 0] = 0.0
    K = torch.tensor([[10.0, 0, 2], [0, 10.0, 2], [0, 0, 1]]).repeat(V, 1, 1)
    E = torch.cat([torch.eye(3), torch.arange(3.0)[:, None]], 1).repeat(V, 1, 1)
    return {
        "depth": depth, "depth_init": depth + 1.0, "mask": depth > 0, "intrinsics": K, "extrinsics": E,
        "image": torch.rand(V, 3, H, W, generator=g), "view_ids": torch.arange(V), "depth_range": torch.tensor([400.0, 700.0]),
        "scene": scene,
    }


@pytest.fixture()
def batch() -> MultiViewBatch:
    return MultiViewBatch.collate([_sample(0), _sample(1)])


def test_collate_stacks_views_and_keeps_extras(batch):
    assert isinstance(batch, MultiViewBatch) and batch.scene == "scan1"
    assert batch.depth_init.shape == (B, V, H, W) and batch.image.shape == (B, V, 3, H, W)
    assert batch.mask.dtype == torch.bool and batch.num_views == V and batch.num_sources == V - 1
    assert batch.extra["view_ids"].shape == (B, V) and batch.extra["depth_range"].shape == (B, 2)
    assert torch.equal(batch.depth[1], _sample(1)["depth"])
    with pytest.raises(DataError, match="mixes scenes"):
        MultiViewBatch.collate([_sample(0), _sample(1, scene="scan2")])
    assert isinstance(collate_same_scene([_sample(0)]), MultiViewBatch)


def test_mapping_access_reads_like_the_old_dict(batch):
    assert batch["depth"] is batch.depth and batch["view_ids"] is batch.extra["view_ids"]
    assert batch["scene"] == "scan1" and batch.get("nope", 7) == 7
    assert "mask" in batch and "nope" not in batch
    assert set(batch.keys()) == {"depth", "depth_init", "mask", "intrinsics", "extrinsics", "image", "scene",
                                 "view_ids", "depth_range"}
    with pytest.raises(KeyError):
        batch["nope"]
    no_image = MultiViewBatch.from_mapping({k: v for k, v in batch.items() if k != "image"})
    assert "image" not in no_image and no_image.get("image") is None
    assert MultiViewBatch.from_mapping(batch) is batch
    assert MultiViewBatch.from_mapping(dict(batch)).extra.keys() == {"view_ids", "depth_range"}
    with pytest.raises(DataError, match="depth_init"):
        MultiViewBatch.from_mapping({"depth": batch.depth})


def test_to_moves_every_tensor(batch):
    moved = batch.to(torch.device("cpu"))
    assert isinstance(moved, MultiViewBatch) and moved.scene == batch.scene
    assert torch.equal(moved.depth, batch.depth) and torch.equal(moved.extra["view_ids"], batch.extra["view_ids"])
    assert batch.to(None) is batch
    as_double = MultiViewBatch.from_mapping({**batch, "depth": batch.depth.double()}).to("cpu")
    assert as_double.depth.dtype == torch.float64
    assert to_device(batch, None) is batch and isinstance(to_device(dict(batch), "cpu"), MultiViewBatch)
    mv = batch.multiview().to("cpu")
    assert isinstance(mv, MultiView) and mv.confidence_ref is None


def test_ref_sources_and_pairs(batch):
    ref = batch.ref
    assert isinstance(ref, ViewBatch) and torch.equal(ref.depth_init, batch.depth_init[:, 0])
    assert ref.image.shape == (B, 3, H, W) and ref.mask.shape == (B, H, W)
    sources = batch.sources
    assert len(sources) == V - 1
    for v, src in enumerate(sources, start=1):
        assert torch.equal(src.depth, batch.depth[:, v]) and torch.equal(src.intrinsics, batch.intrinsics[:, v])
    pairs = list(batch.pairs())
    assert len(pairs) == V - 1
    for (r, s), src in zip(pairs, sources):
        assert torch.equal(r.depth_init, ref.depth_init) and torch.equal(s.depth_init, src.depth_init)


def test_multiview_builder_zeroes_sources_outside_their_masks(batch):
    mv = batch.multiview("depth")
    assert torch.equal(mv.K_ref, batch.intrinsics[:, 0]) and torch.equal(mv.E_src, batch.extrinsics[:, 1:])
    assert mv.depth_src.shape == (B, V - 1, H, W) and mv.num_sources == V - 1
    assert (mv.depth_src[..., 0, 0] == 0).all()  # ground-truth holes stay 0
    masked = MultiViewBatch.from_mapping({**batch, "mask": batch.mask & (batch.depth > 550.0)})
    mv_masked = masked.multiview("depth")
    outside = ~masked.mask[:, 1:]
    assert (mv_masked.depth_src[outside] == 0).all()
    assert torch.equal(mv_masked.depth_src[~outside], batch.depth[:, 1:][~outside])
    assert torch.equal(batch.multiview().depth_src, batch.depth_init[:, 1:])  # default: the sources' inputs
    refined = torch.full((B, V - 1, H, W), 3.0)
    assert batch.multiview(refined).depth_src is refined
    assert mv["K_ref"] is mv.K_ref and "confidence_ref" not in mv  # reads like the old dict
    assert MultiView.coerce(dict(mv.items())).depth_src is mv.depth_src
    assert MultiViewBatch.collate([{k: v[:1] if torch.is_tensor(v) and v.dim() > 1 else v
                                    for k, v in _sample(0).items()}]).multiview() is None
    with pytest.raises(DataError, match="depth_src"):
        batch.multiview("nope")


def test_training_batches_are_multiview_batches(tmp_path):
    root = make_dataset(tmp_path / "data", n_scans=2, n_views=3, H=16, W=20)
    train, val = create_dataloaders(root, batch_size=2, num_views=2, val_split=0.5, seed=0)
    batch = next(iter(train))
    assert isinstance(batch, MultiViewBatch) and isinstance(batch.scene, str)
    n = batch.depth.shape[0]  # a scene's last batch may be short
    assert 1 <= n <= 2 and batch.depth.shape[1:] == (2, 16, 20) and batch.extra["view_ids"].shape == (n, 2)
    assert isinstance(next(iter(val)), MultiViewBatch)
    moved, _ = create_dataloaders(root, batch_size=2, num_views=2, val_split=0.5, seed=0, device="cpu")
    assert isinstance(next(iter(moved)), MultiViewBatch)
