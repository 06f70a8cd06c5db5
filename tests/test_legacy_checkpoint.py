"""A checkpoint written before the package moved into layers still evaluates and resumes.

``tests/data/legacy_v0/last.pt`` was written by the pre-layer code (commit f5bb195, ``deltaz.train.train``
on ``_tiny_scans.make_dataset(n_scans=3, n_views=4, initial=True, images=True)``, base channel 4, U-Net
depth 2, images, 3 steps); ``expected.npz`` holds an input depth and image and what that code's
``deltaz.model.refine`` made of them with this checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from _tiny_scans import make_dataset
from deltaz.config import TrainConfig
from deltaz.engine.train import train
from deltaz.evaluate import load_refiner
from deltaz.model import refine

LEGACY = Path(__file__).parent / "data" / "legacy_v0"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_legacy_checkpoint_refines_as_before():
    model, config, path = load_refiner(LEGACY / "last.pt")
    assert path.name == "last.pt" and config["base_channel"] == 4 and config["use_images"] is True
    expected = np.load(LEGACY / "expected.npz", allow_pickle=False)
    with torch.no_grad():
        out = refine(model, torch.from_numpy(expected["depth"]), image=torch.from_numpy(expected["image"]))
    np.testing.assert_allclose(out["depth_refined"].numpy(), expected["refined"], rtol=0, atol=1e-4)


def test_legacy_checkpoint_resumes(tmp_path):
    root = make_dataset(tmp_path / "data", n_scans=3, n_views=4, initial=True, images=True)
    run = tmp_path / "ckpt"
    run.mkdir()
    shutil.copy(LEGACY / "last.pt", run / "last.pt")
    config = TrainConfig(
        data_root=str(root), batch_size=2, num_views=2, num_epochs=2, lr=1e-3, val_split=0.34,
        base_channel=4, unet_depth=2, device="cpu", seed=0, checkpoint_dir=str(run),
        log_dir=str(tmp_path / "logs"), progress=False, image_log_every=0, max_steps=5, use_images=True,
    )
    result = train(config, resume="latest")
    assert result["steps"] == 5 and result["stopped_by"] == "max_steps"
    assert all(torch.isfinite(p).all() for p in result["model"].parameters())
