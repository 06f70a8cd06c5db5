"""Photometric augmentation of training images (deltaz.data.augment) and its place in the dataset."""

from __future__ import annotations

import pytest
import torch

from _tiny_scans import make_dataset
from deltaz.core.errors import ConfigError
from deltaz.data import DepthRefinementDataset, create_dataloaders
from deltaz.data import augment
from deltaz.data.augment import photometric_augment
from deltaz.engine.config import TrainConfig, demo_train_config
from deltaz.engine.train.forward import drop_images, forward_batch
from deltaz.model import build_model

OFF = {"log_gain": (0.0, 0.0), "log_channel": (0.0, 0.0), "log_gamma": (0.0, 0.0), "blur_sigma": (0.0, 0.0),
       "noise_sigma": (0.0, 0.0), "grey_p": 0.0}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("augment") / "data", n_scans=1, images=True)


def _image(seed: int = 0, views: int = 2) -> torch.Tensor:
    return 0.1 + 0.8 * torch.rand((views, 3, 24, 32), generator=torch.Generator().manual_seed(seed))


def _only(monkeypatch, **ranges) -> None:
    """Every effect off but ``ranges``."""
    monkeypatch.setattr(augment, "RANGES", {**OFF, **ranges})


def test_augment_is_deterministic_bounded_and_off_at_zero():
    image = _image()
    rng = torch.get_rng_state()
    a = photometric_augment(image, torch.Generator().manual_seed(5), 1.0)
    assert torch.equal(torch.get_rng_state(), rng)  # its own generator only
    assert torch.equal(a, photometric_augment(image, torch.Generator().manual_seed(5), 1.0))
    assert a.shape == image.shape and a.dtype == image.dtype
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert photometric_augment(image, torch.Generator().manual_seed(5), 0.0) is image


def test_each_effect_does_what_it_says(monkeypatch):
    image = _image()
    _only(monkeypatch, log_gain=(-0.7, -0.7))
    assert torch.allclose(photometric_augment(image, torch.Generator(), 1.0), image * torch.exp(torch.tensor(-0.7)))
    _only(monkeypatch, log_gain=(-0.7, -0.7))
    assert torch.allclose(photometric_augment(image, torch.Generator(), 0.5), image * torch.exp(torch.tensor(-0.35)))
    _only(monkeypatch, log_gamma=(0.3, 0.3))
    assert torch.allclose(photometric_augment(image, torch.Generator(), 1.0), image ** torch.exp(torch.tensor(0.3)))
    _only(monkeypatch, grey_p=1.0)
    grey = photometric_augment(image, torch.Generator(), 1.0)
    assert torch.allclose(grey, image.mean(1, keepdim=True).expand_as(image))
    _only(monkeypatch, blur_sigma=(1.0, 1.0))
    blurred = photometric_augment(image, torch.Generator(), 1.0)
    step = lambda x: float((x[..., 1:] - x[..., :-1]).abs().mean())  # noqa: E731
    assert step(blurred) < 0.6 * step(image) and abs(float(blurred.mean() - image.mean())) < 0.01
    _only(monkeypatch, noise_sigma=(0.02, 0.02))
    noisy = photometric_augment(image, torch.Generator().manual_seed(1), 1.0)
    assert 0.015 < float((noisy - image).std()) < 0.025


def test_views_share_the_change_but_not_the_noise(monkeypatch):
    same = _image(views=1).expand(2, -1, -1, -1).clone()
    _only(monkeypatch, **{k: v for k, v in augment.RANGES.items() if k != "noise_sigma"})
    out = photometric_augment(same, torch.Generator().manual_seed(3), 1.0)
    assert torch.equal(out[0], out[1]) and not torch.equal(out[0], same[0])
    monkeypatch.undo()
    out = photometric_augment(same, torch.Generator().manual_seed(3), 1.0)
    assert not torch.equal(out[0], out[1])


def test_impossible_strengths_are_refused(tiny_root):
    with pytest.raises(ConfigError, match="image_augment"):
        photometric_augment(_image(), torch.Generator(), 1.5)
    with pytest.raises(ConfigError, match="image_augment"):
        TrainConfig(data_root="x", image_augment=-0.1)
    with pytest.raises(ConfigError, match="image_augment"):
        DepthRefinementDataset(tiny_root, ["scan1"], use_images=True, image_augment=2)
    with pytest.raises(ConfigError, match="image_augment"):
        DepthRefinementDataset(tiny_root, ["scan1"], use_images=True, image_augment="strong")


def test_dataset_augments_training_images_only(tiny_root):
    plain = DepthRefinementDataset(tiny_root, ["scan1"], num_views=2, use_images=True, crop_hw=(16, 24))
    aug = DepthRefinementDataset(tiny_root, ["scan1"], num_views=2, use_images=True, crop_hw=(16, 24),
                                 image_augment=1.0)
    a, b = plain[1], aug[1]
    assert b["image"].shape == (2, 3, 16, 24) and not torch.equal(a["image"], b["image"])
    for key in ("depth", "depth_init", "intrinsics", "extrinsics"):
        assert torch.equal(a[key], b[key])
    assert torch.equal(aug[1]["image"], b["image"])  # reproducible per (seed, epoch, index)
    aug.set_epoch(1)
    assert not torch.equal(aug[1]["image"], b["image"])
    val = DepthRefinementDataset(tiny_root, ["scan1"], num_views=2, use_images=True, train=False, image_augment=1.0)
    val_plain = DepthRefinementDataset(tiny_root, ["scan1"], num_views=2, use_images=True, train=False)
    assert torch.equal(val[1]["image"], val_plain[1]["image"])


def test_training_and_the_demo_recipe_use_it(tiny_root):
    train_loader, _ = create_dataloaders(tiny_root, 2, 2, 0.0, use_images=True, image_augment=0.5)
    assert train_loader.dataset.image_augment == 0.5
    assert demo_train_config().image_augment == 1.0
    assert TrainConfig(data_root="x").image_augment == 0.0  # off unless asked (and in older checkpoints' configs)


def test_image_dropout_greys_whole_samples_at_its_rate():
    image = torch.rand((4000, 3, 2, 2), generator=torch.Generator().manual_seed(3))
    assert drop_images(image, 0.0) is image
    torch.manual_seed(0)
    out = drop_images(image, 0.25)
    grey = (out == 0.5).flatten(1).all(dim=1)
    assert 0.22 < float(grey.float().mean()) < 0.28
    assert torch.equal(out[~grey], image[~grey])  # the others untouched


def test_forward_batch_drops_images_in_training_mode_only(tiny_root):
    loader, _ = create_dataloaders(tiny_root, 2, 2, 0.0, use_images=True)
    batch = next(iter(loader))
    torch.manual_seed(1)
    model = build_model("deltaz_unet", in_channels=4, base_channel=4, depth=2)
    with torch.no_grad():  # its last layer starts at zero: give every weight a value, so the image matters
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    grey = dict(batch, image=torch.full_like(batch["image"], 0.5))
    with torch.no_grad():
        model.train()
        dropped = forward_batch(model, batch, image_dropout=0.999999)["depth_refined"]
        assert torch.allclose(dropped, forward_batch(model, grey)["depth_refined"])
        assert not torch.allclose(dropped, forward_batch(model, batch)["depth_refined"])
        model.eval()
        assert torch.equal(forward_batch(model, batch, image_dropout=0.999999)["depth_refined"],
                           forward_batch(model, batch)["depth_refined"])


def test_image_dropout_option_is_a_probability():
    assert TrainConfig(data_root="x").image_dropout == 0.0
    assert TrainConfig(data_root="x", image_dropout=0.25).image_dropout == 0.25
    for bad in (-0.1, 1.0, 2):
        with pytest.raises(ConfigError, match="image_dropout"):
            TrainConfig(data_root="x", image_dropout=bad)
