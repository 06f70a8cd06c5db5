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


def test_a_format_1_confidence_head_keeps_its_old_start(tmp_path):
    """Before format 2 a confidence head started at b = the depth range's half span; such a checkpoint
    still gives the log b it was trained to give (``confidence_init_mm=None``), new ones start at 1 mm."""
    from deltaz.engine import checkpoint as ckpt
    from deltaz.model import CONFIDENCE_INIT_MM, build_model, model_config

    legacy = build_model("deltaz_unet", base_channel=4, depth=2, out_confidence=True, confidence_init_mm=None)
    config = {k: v for k, v in model_config(legacy).items() if k != "confidence_init_mm"}
    torch.save({"format": 1, "model": legacy.state_dict(), "config": {}, "model_config": config}, tmp_path / "old.pt")
    model, _, _ = load_refiner(tmp_path / "old.pt")
    assert model.confidence_init_mm is None
    depth = torch.full((1, 16, 16), 600.0)
    range_mm = torch.tensor([[500.0, 900.0]])
    with torch.no_grad():
        old = refine(legacy, depth, depth_range=range_mm)["log_b"]
        torch.testing.assert_close(refine(model, depth, depth_range=range_mm)["log_b"], old)
        assert float(old.mean()) == pytest.approx(float(torch.log(torch.tensor(200.0))), abs=0.05)
        new = build_model("deltaz_unet", base_channel=4, depth=2, out_confidence=True)
        assert float(refine(new, depth, depth_range=range_mm)["log_b"].mean()) == pytest.approx(
            np.log(CONFIDENCE_INIT_MM), abs=0.05)
    ckpt.save_checkpoint(tmp_path / "new.pt", {"model": new.state_dict(), "model_config": model_config(new)})
    assert load_refiner(tmp_path / "new.pt")[0].confidence_init_mm == CONFIDENCE_INIT_MM
