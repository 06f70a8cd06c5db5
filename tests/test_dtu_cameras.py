"""Intrinsics under resizing/cropping, raw DTU calibration → training cameras, and the scan splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deltaz.io.dtu.cameras import (
    crop_intrinsics,
    raw_to_camera,
    raw_to_mvsnet_camera,
    raw_to_training_camera,
    resize_intrinsics,
    scale_intrinsics,
)
from deltaz.io.dtu.splits import SPLITS, scan_list, scan_numbers
from deltaz.core.errors import ConfigError
from deltaz.core.geometry import project_points, world_to_camera

K_RAW = np.array([[2892.33, 0.0, 823.205], [0.0, 2883.18, 619.071], [0.0, 0.0, 1.0]])


def _project(K, E, X):
    uv, z = project_points(world_to_camera(torch.as_tensor(X), torch.as_tensor(E)), torch.as_tensor(K))
    assert (z > 0).all()
    return uv.numpy()


def _random_pose(seed):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)) * 0.1 + np.eye(3))
    Q = Q * np.sign(np.diag(Q))
    E = np.eye(4)
    E[:3, :3] = Q
    E[:3, 3] = [10.0, -5.0, 20.0]
    X = rng.uniform([-100, -80, 500], [100, 80, 900], size=(50, 3))
    return E, X


def test_scale_and_crop_formulas():
    K = scale_intrinsics(K_RAW, 0.5)
    np.testing.assert_allclose(K[[0, 0, 1, 1], [0, 2, 1, 2]], np.array([2892.33, 823.205, 2883.18, 619.071]) / 2)
    assert K[2, 2] == 1
    K2 = scale_intrinsics(K_RAW, 0.25, 0.5)
    assert K2[0, 0] == pytest.approx(2892.33 / 4) and K2[1, 1] == pytest.approx(2883.18 / 2)
    C = crop_intrinsics(K_RAW, 80, 44)
    assert C[0, 2] == pytest.approx(823.205 - 80) and C[1, 2] == pytest.approx(619.071 - 44)
    assert C[0, 0] == K_RAW[0, 0]
    np.testing.assert_allclose(resize_intrinsics(K_RAW, (1200, 1600), (300, 400)), scale_intrinsics(K_RAW, 0.25))
    # inputs are not modified; batches work
    batch = np.stack([K_RAW, 2 * K_RAW])
    assert scale_intrinsics(batch, 2.0).shape == (2, 3, 3) and K_RAW[0, 0] == 2892.33


def test_scaled_intrinsics_match_subsampled_pixels():
    """Keeping every f-th pixel centre (index u·f) is the resize that ``scale_intrinsics(K, 1/f)`` describes."""
    E, X = _random_pose(0)
    uv = _project(K_RAW, E, X)
    for f in (2, 4):
        uv_small = _project(scale_intrinsics(K_RAW, 1 / f), E, X)
        np.testing.assert_allclose(uv_small * f, uv, rtol=1e-9)
    uv_crop = _project(crop_intrinsics(K_RAW, 80, 44), E, X)
    np.testing.assert_allclose(uv_crop + [80, 44], uv, rtol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_raw_to_training_camera_follows_halve_crop_quarter(seed):
    E_true, X = _random_pose(seed)
    P = 0.7 * K_RAW @ E_true[:3]
    K, E = raw_to_training_camera(P)
    np.testing.assert_allclose(E, E_true, atol=1e-9)
    assert K[0, 0] == pytest.approx(K_RAW[0, 0] / 8)
    assert K[0, 2] == pytest.approx((K_RAW[0, 2] / 2 - 80) / 4)
    assert K[1, 1] == pytest.approx(K_RAW[1, 1] / 8)
    assert K[1, 2] == pytest.approx((K_RAW[1, 2] / 2 - 44) / 4)
    # pixel of a world point in the raw image, mapped through halve → crop → quarter
    uv_raw = _project(K_RAW, E_true, X)
    expected = (uv_raw / 2 - [80, 44]) / 4
    np.testing.assert_allclose(_project(K, E, X), expected, rtol=1e-9, atol=1e-9)
    K640, _ = raw_to_mvsnet_camera(P)
    np.testing.assert_allclose(K640, scale_intrinsics(K, 4.0), rtol=1e-12)
    K_custom, _ = raw_to_camera(P, (256, 320))
    np.testing.assert_allclose(K_custom, scale_intrinsics(K, 2.0), rtol=1e-12)


def test_splits_are_mvsnets():
    sizes = {name: len(scan_numbers(name)) for name in SPLITS}
    assert sizes == {"train": 79, "val": 18, "test": 22}
    all_scans = [n for name in SPLITS for n in scan_numbers(name)]
    assert len(set(all_scans)) == 119 == len(all_scans)
    assert scan_list("val")[:2] == ["scan3", "scan5"] and "scan24" in scan_list("test")
    assert set(all_scans) <= set(range(1, 129))
    with pytest.raises(ConfigError, match="split"):
        scan_list("training")
