"""Two-view SGBM on unrectified calibrated pairs (deltaz.ops.mvs.stereo) and its per-scan cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deltaz.core.errors import ConfigError, DataError
from deltaz.ops import mvs
from _tiny_scans import make_scan
from test_mvs import PlaneScene

pytestmark = pytest.mark.usefixtures("one_thread")

pytest.importorskip("cv2", reason="OpenCV (opencv-contrib-python-headless) is a test dependency")


@pytest.fixture(scope="module")
def scene():
    return PlaneScene()


def _depth(scene, ref, src, **kw):
    return mvs.stereo_depth(scene.image(ref).numpy(), scene.K.numpy(), scene.E[ref].numpy(), scene.image(src).numpy(),
                            scene.K.numpy(), scene.E[src].numpy(), 480.0, 720.0, **kw)


# view 1 lies right of view 0 (a plain left-right pair), 0 left of 1 (mirrored), 3 below-left of 0 (mostly
# vertical: transposed), 2 diagonal: each orientation must give the plane's depth
@pytest.mark.parametrize("ref, src", [(0, 1), (1, 0), (0, 3), (3, 0), (0, 2)])
def test_stereo_recovers_a_slanted_plane_in_every_pair_orientation(scene, ref, src):
    # the 64x80 image is small for these baselines: clip the search to what leaves half the image matchable
    depth = _depth(scene, ref, src, clip_range=True)
    truth = scene.depth(ref).numpy()
    assert depth.shape == truth.shape and depth.dtype == np.float32
    valid = depth > 0
    # SGBM leaves the first min+num disparity columns of its left image unmatched: up to half of the image
    assert valid.mean() > 0.25, f"SGBM matched only {valid.mean():.0%} of the pixels"
    error = np.abs(depth[valid] - truth[valid])
    # measured 1.0-1.8 mm median, 2.8-4.2 mm 90th percentile (a disparity step of 1/16 px is ~0.7 mm here)
    assert np.median(error) < 2.5, f"median error {np.median(error):.2f} mm (plane at ~600 mm)"
    assert np.percentile(error, 90) < 8.0


def test_upsampling_changes_the_match_not_the_scale(scene):
    coarse, fine = _depth(scene, 0, 1, upsample=1, clip_range=True), _depth(scene, 0, 1, upsample=2, clip_range=True)
    both = (coarse > 0) & (fine > 0)
    assert both.mean() > 0.4
    assert abs(np.median(coarse[both] - fine[both])) < 2.0


def test_a_pair_whose_disparities_do_not_fit_returns_none(scene):
    # a 10 mm depth range at ~1 mm: disparities far wider than the 80 px image
    assert mvs.stereo_depth(scene.image(0).numpy(), scene.K.numpy(), scene.E[0].numpy(), scene.image(1).numpy(),
                            scene.K.numpy(), scene.E[1].numpy(), 1.0, 10.0) is None


def test_a_range_too_wide_for_the_image_is_clipped_to_its_far_end_on_request(scene):
    # 100-720 mm needs disparities of 42-300 px at 2x (160 px wide, half of it to stay matchable): only the far
    # part fits
    args = (scene.image(0).numpy(), scene.K.numpy(), scene.E[0].numpy(), scene.image(1).numpy(), scene.K.numpy(),
            scene.E[1].numpy(), 100.0, 720.0)
    assert mvs.stereo_depth(*args) is None
    depth = mvs.stereo_depth(*args, clip_range=True)
    truth = scene.depth(0).numpy()
    valid = depth > 0
    assert valid.mean() > 0.3 and np.median(np.abs(depth[valid] - truth[valid])) < 2.5


@pytest.mark.parametrize("change, match", [
    ({"low_mm": 700.0, "high_mm": 500.0}, "depth range"),
    ({"upsample": 8}, "upsample"),
])
def test_bad_options_raise_one_clear_error(scene, change, match):
    args = dict(low_mm=480.0, high_mm=720.0)
    args.update(change)
    with pytest.raises(ConfigError, match=match):
        mvs.stereo_depth(scene.image(0).numpy(), scene.K.numpy(), scene.E[0].numpy(), scene.image(1).numpy(),
                         scene.K.numpy(), scene.E[1].numpy(), **args)


def test_a_pair_without_baseline_is_refused(scene):
    with pytest.raises(DataError, match="baseline 0"):
        mvs.stereo_depth(scene.image(0).numpy(), scene.K.numpy(), scene.E[0].numpy(), scene.image(0).numpy(),
                         scene.K.numpy(), scene.E[0].numpy(), 480.0, 720.0)


# ------------------------------------------------------------------------------------------ scan cache


@pytest.fixture
def tiny_scan(tmp_path):
    return make_scan(tmp_path, "scan1", n_views=4, H=32, W=40, images=True)


def test_stereo_scan_writes_reuses_and_recomputes(tiny_scan, monkeypatch):
    out = mvs.stereo_scan(tiny_scan, num_src=2, progress=False)
    assert out == tiny_scan / "sgbm"
    settings = json.loads((out / "settings.json").read_text())
    assert settings["num_src"] == 2 and settings["views"] == [0, 1, 2, 3]
    for v in range(4):
        depth = mvs.load_stereo(tiny_scan, v)
        assert depth.shape == (32, 40) and depth.dtype == np.float32 and (depth >= 0).all()

    def fail(*args, **kwargs):
        raise AssertionError("stereo_depth must not run again for the same options")

    monkeypatch.setattr("deltaz.ops.mvs.stereo_cache.stereo_depth", fail)
    assert mvs.stereo_scan(tiny_scan, num_src=2, progress=False) == out
    monkeypatch.undo()
    mvs.stereo_scan(tiny_scan, num_src=1, upsample=1, progress=False)
    assert json.loads((out / "settings.json").read_text())["upsample"] == 1
    assert not [p.name for p in tiny_scan.iterdir() if p.name.startswith(".")], "no temporary folder left"


def test_a_view_no_source_fits_is_all_holes(tiny_scan, monkeypatch):
    monkeypatch.setattr("deltaz.ops.mvs.stereo_cache.stereo_depth", lambda *a, **k: None)
    mvs.stereo_scan(tiny_scan, num_src=2, progress=False)
    assert not mvs.load_stereo(tiny_scan, 0).any()


def test_stereo_scan_leaves_nothing_half_written(tiny_scan, monkeypatch):
    import deltaz.ops.mvs.stereo_cache as module

    real, calls = module.stereo_depth, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr("deltaz.ops.mvs.stereo_cache.stereo_depth", flaky)
    with pytest.raises(KeyboardInterrupt):
        mvs.stereo_scan(tiny_scan, num_src=2, progress=False)
    assert not (tiny_scan / "sgbm").exists()
    assert not [p.name for p in tiny_scan.iterdir() if p.name.startswith(".")]
    with pytest.raises(DataError, match=r"sgbm/depth/000\.npy.*stereo_scan"):
        mvs.load_stereo(tiny_scan, 0)


def test_load_stereo_names_a_malformed_file(tiny_scan):
    mvs.stereo_scan(tiny_scan, num_src=2, progress=False)
    path = tiny_scan / "sgbm" / "depth" / "001.npy"
    np.save(path, np.full((32, 40), -1.0, np.float32))
    with pytest.raises(DataError, match=r"depth/001\.npy.*negative"):
        mvs.load_stereo(tiny_scan, 1)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"depth/001\.npy"):
        mvs.load_stereo(tiny_scan, 1)
