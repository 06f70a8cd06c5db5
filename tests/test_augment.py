"""Photometric augmentation of training images (deltaz.data.augment) and its place in the dataset."""

from __future__ import annotations

import pytest
import torch

from _tiny_scans import make_dataset
from deltaz.core.errors import ConfigError
from deltaz.data import DepthRefinementDataset
from deltaz.data.augment import photometric_augment
from deltaz.engine.config import TrainConfig


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("augment") / "data", n_scans=1, images=True)


def _image(seed: int = 0) -> torch.Tensor:
    return torch.rand((2, 3, 24, 32), generator=torch.Generator().manual_seed(seed))


def test_augment_is_deterministic_bounded_and_off_at_zero():
    image = _image()
    a = photometric_augment(image, torch.Generator().manual_seed(5), 1.0)
    b = photometric_augment(image, torch.Generator().manual_seed(5), 1.0)
    c = photometric_augment(image, torch.Generator().manual_seed(6), 1.0)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == image.shape and a.dtype == image.dtype
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(photometric_augment(image, torch.Generator().manual_seed(5), 0.0), image)


def test_augment_changes_the_look_more_at_full_strength():
    """Mean absolute change over 40 draws grows with the strength; every view gets the same change."""
    image = _image()
    change = {s: sum(float((photometric_augment(image, torch.Generator().manual_seed(i), s) - image).abs().mean())
                     for i in range(40)) / 40 for s in (0.25, 1.0)}
    assert 0.0 < change[0.25] < change[1.0]
    same = torch.rand((1, 3, 24, 32), generator=torch.Generator().manual_seed(1)).expand(2, -1, -1, -1).clone()
    out = photometric_augment(same, torch.Generator().manual_seed(3), 1.0)
    assert torch.allclose(out[0], out[1], atol=0.2)  # noise differs per pixel, the photometric change does not
    assert float((out[0] - out[1]).abs().mean()) < float((out[0] - same[0]).abs().mean()) + 0.05


def test_augment_refuses_an_impossible_strength():
    with pytest.raises(ConfigError, match="image_augment"):
        photometric_augment(_image(), torch.Generator(), 1.5)
    with pytest.raises(ConfigError, match="image_augment"):
        TrainConfig(data_root="x", image_augment=-0.1)


def test_dataset_augments_training_images_only(tiny_root):
    plain = DepthRefinementDataset(tiny_root, ["scan1"], num_views=2, use_images=True)
    aug = DepthRefinementDataset(tiny_root, ["scan1"], num_views=2, use_images=True, image_augment=1.0)
    a, b = plain[1], aug[1]
    assert not torch.equal(a["image"], b["image"])
    for key in ("depth", "depth_init", "intrinsics", "extrinsics"):
        assert torch.equal(a[key], b[key])
    assert torch.equal(aug[1]["image"], b["image"])  # reproducible per (seed, epoch, index)
    aug.set_epoch(1)
    assert not torch.equal(aug[1]["image"], b["image"])
    val = DepthRefinementDataset(tiny_root, ["scan1"], num_views=2, use_images=True, train=False, image_augment=1.0)
    val_plain = DepthRefinementDataset(tiny_root, ["scan1"], num_views=2, use_images=True, train=False)
    assert torch.equal(val[1]["image"], val_plain[1]["image"])
