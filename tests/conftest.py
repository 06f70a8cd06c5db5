"""Shared fixtures. Real-data tests read a folder of real DTU fragments through ``DELTAZ_DTU_SAMPLE``."""

from __future__ import annotations

import pytest

from deltaz.core.paths import dtu_sample_dir


@pytest.fixture(scope="session")
def dtu_sample():
    """Path of the real DTU fragments; skips the test with a clear reason when not configured."""
    path = dtu_sample_dir()
    if path is None:
        pytest.skip("real DTU fragments not configured: set DELTAZ_DTU_SAMPLE=/path/to/dtu_fragments")
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one torch thread is fastest, and far faster than two on a shared, busy CPU.

    Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def still_checkpoint(tmp_path_factory):
    """An untrained depth-and-image U-Net's checkpoint: Δz = 0, so what a benchmark's refiner rows change is
    its inference steps alone (the surface smoothing)."""
    import torch

    from deltaz.engine.checkpoint import save_checkpoint
    from deltaz.model import build_model, model_config

    torch.manual_seed(0)
    model = build_model("deltaz_unet", in_channels=4, base_channel=4, depth=2, depth_scale_rel=0.03)
    path = tmp_path_factory.mktemp("ckpt") / "still.pt"
    save_checkpoint(path, {"model": model.state_dict(), "model_config": model_config(model), "config": {}})
    return path
