"""deltaz.io.aloe: Middlebury 2006 Aloe (OpenCV's sample) as a DeltaZ scene, and the benchmark's ``--scene aloe``.

The format tests write small stand-in files; the real-data tests read ``data/aloe`` (``make aloe-data``;
``DELTAZ_ALOE`` names another folder) and skip with that reason without it.
"""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from _benchmarks import load_benchmark
from deltaz.core.errors import DataError
from deltaz.core.geometry import warp
from deltaz.io.aloe import ALOE_CALIBRATION, ALOE_FILES, ALOE_FULL, ALOE_SGBM, aloe_dir, half_size_pair, load_aloe
from deltaz.io.middlebury import SGBM_PARAMS, disparity_to_depth, nearest_index, sgbm_params

pytestmark = pytest.mark.usefixtures("one_thread")


def _write_pair(folder, gt=None, shape=ALOE_FULL):
    """Stand-in files of the sample's sizes: noise images, a ground truth of 60 px (0 = unknown in one corner)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ALOE_FILES[:2]:
        iio.imwrite(folder / name, rng.integers(0, 256, (*shape, 3), dtype=np.uint8))
    if gt is None:
        gt = np.full(shape, 60, dtype=np.uint8)
        gt[:10, :10] = 0
    iio.imwrite(folder / ALOE_FILES[2], gt)
    return folder


def test_half_size_averages_images_and_keeps_only_agreeing_truth():
    left = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    gt = np.array([[60, 60, 60, 61, 50, 0],
                   [60, 60, 61, 60, 70, 50],
                   [40, 40, 40, 42, 9, 9],
                   [40, 40, 40, 40, 9, 9]], dtype=np.uint8)
    half_left, half_right, disparity = half_size_pair(left, left.copy(), gt)
    assert half_left.shape == (2, 3, 3) and half_left.dtype == np.uint8 and np.array_equal(half_left, half_right)
    assert half_left[0, 0, 0] == round(np.mean(left[:2, :2, 0]))
    expected = np.array([[30.0, 30.25, np.nan], [20.0, np.nan, 4.5]], dtype=np.float32)
    assert np.array_equal(np.isnan(disparity), np.isnan(expected))  # 1 px apart agrees; 2 px or a 0 does not
    assert np.allclose(disparity[~np.isnan(disparity)], expected[~np.isnan(expected)])


def test_load_aloe_from_stand_in_files(tmp_path):
    folder = _write_pair(tmp_path / "aloe")
    scene = load_aloe(folder, median_depth_mm=500.0)
    gt = scene["depth_gt"]
    assert gt.shape == (139, 160) and scene["image_left"].shape == (3, 139, 160)
    assert scene["grey_left_full"].shape == (ALOE_FULL[0] // 2, ALOE_FULL[1] // 2)
    assert float(gt[gt > 0].median()) == pytest.approx(500.0)
    assert (gt[:2, :2] == 0).all() and (gt[3:, 3:] > 0).all()  # the unknown corner is a hole at the grid too
    cal = ALOE_CALIBRATION
    depth_60 = disparity_to_depth(np.float32([30.0]), cal["f_px"], cal["baseline_mm"], cal["doffs_px"])[0]
    assert scene["scale"] == pytest.approx(500.0 / depth_60, rel=1e-5)
    assert scene["baseline_mm"] == pytest.approx(cal["baseline_mm"] * scene["scale"])
    assert float(scene["E_right"][0, 3]) == pytest.approx(-scene["baseline_mm"])
    assert float(scene["K_right"][0, 2] - scene["K_left"][0, 2]) == pytest.approx(cal["doffs_px"] * 160 / 641)
    assert sgbm_params(scene) == {**SGBM_PARAMS, **ALOE_SGBM} and sgbm_params({}) == SGBM_PARAMS
    sx, sy = 160 / 641, 139 / 555  # the grid of the half-size pair; the principal point is its centre
    assert torch.allclose(scene["K_left"], torch.tensor([[cal["f_px"] * sx, 0, cal["cx_px"] * sx],
                                                         [0, cal["f_px"] * sy, cal["cy_px"] * sy], [0, 0, 1.0]]))
    assert (cal["cx_px"], cal["cy_px"]) == ((1281 / 2 - 0.5) / 2, (1109 / 2 - 0.5) / 2)


def test_crops_of_one_size_shift_the_grid_by_whole_half_size_pixels(tmp_path):
    """Phase (dy, dx) of load_aloe's crop: the same grid as phase (0, 0), moved by (dy, dx) half-size pixels."""
    folder = _write_pair(tmp_path / "aloe")
    left = iio.imread(folder / ALOE_FILES[0])
    half, _, _ = half_size_pair(left, left, iio.imread(folder / ALOE_FILES[2]))
    base = load_aloe(folder, crop=(0, 0, 3, 3), scale=1.0)
    moved = load_aloe(folder, crop=(2, 1, 1, 2), scale=1.0)
    rows, cols = nearest_index(552, 139), nearest_index(638, 160)
    assert np.array_equal(moved["rgb_left_full"], half[2:2 + 552, 1:1 + 638])
    assert np.array_equal((moved["image_left"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8),
                          half[2 + rows][:, 1 + cols])
    sx, sy = 160 / 638, 139 / 552
    assert float(base["K_left"][0, 2] - moved["K_left"][0, 2]) == pytest.approx(1 * sx, abs=1e-5)
    assert float(base["K_left"][1, 2] - moved["K_left"][1, 2]) == pytest.approx(2 * sy, abs=1e-5)
    with pytest.raises(DataError, match="crop"):
        load_aloe(folder, crop=(16, 0, 0, 0))


def test_load_aloe_refuses_bad_files_in_one_line(tmp_path):
    with pytest.raises(DataError, match=r"aloeL\.jpg: missing.*make aloe-data"):
        load_aloe(tmp_path / "nowhere")
    folder = _write_pair(tmp_path / "small", shape=(40, 50))
    with pytest.raises(DataError, match=r"aloeL\.jpg: expected a 1110x1282x3 uint8 image.*got 40x50x3"):
        load_aloe(folder)
    folder = _write_pair(tmp_path / "truncated")
    (folder / ALOE_FILES[2]).write_bytes((folder / ALOE_FILES[2]).read_bytes()[:100])
    with pytest.raises(DataError, match=r"aloeGT\.png: not a readable image"):
        load_aloe(folder)
    folder = _write_pair(tmp_path / "unknown", gt=np.zeros(ALOE_FULL, dtype=np.uint8))
    with pytest.raises(DataError, match="no finite value"):
        load_aloe(folder)
    with pytest.raises(DataError, match="size"):
        load_aloe(folder, size=(600, 160))


def test_a_scene_may_widen_numdisparities_only():
    from deltaz.io.middlebury import MOTORCYCLE_CALIBRATION, pair_scene

    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    disparity = np.full((16, 16), 20.0, dtype=np.float32)
    args = (rgb, rgb, disparity, MOTORCYCLE_CALIBRATION, (8, 8), 680.0, None, "pair")
    assert pair_scene(*args, sgbm={"numDisparities": 80})["sgbm"] == {"numDisparities": 80}
    with pytest.raises(DataError, match="numDisparities only"):
        pair_scene(*args, sgbm={"minDisparity": 4})


def test_aloe_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DELTAZ_ALOE", str(tmp_path))
    assert aloe_dir() == tmp_path
    monkeypatch.delenv("DELTAZ_ALOE")
    monkeypatch.setenv("DELTAZ_DATA", str(tmp_path / "data"))
    assert aloe_dir() == tmp_path / "data" / "aloe"


@pytest.fixture(scope="module")
def real_scene():
    folder = aloe_dir()
    if not all((folder / name).is_file() for name in ALOE_FILES):
        pytest.skip(f"the Aloe pair is not in {folder} (make aloe-data)")
    return load_aloe(folder)


def test_real_aloe_ground_truth_matches_its_images(real_scene):
    """The right image warped through the ground truth lands on the left one, better than at depths 3 % off (about
    5 half-size px of disparity). It checks the pairing of images, ground truth and camera sides; f and doffs cancel
    between the depth and ``K_right`` here, and sub-pixel registration is below what this comparison can see."""
    gt = real_scene["depth_gt"][None]
    args = (real_scene["K_left"][None], real_scene["E_left"][None], real_scene["K_right"][None],
            real_scene["E_right"][None])

    def photometric_error(depth):
        warped, valid = warp(real_scene["image_right"][None], depth, *args)
        ok = valid & (gt > 0)
        return float((warped - real_scene["image_left"][None]).abs().mean(1)[ok].mean())

    assert 0.85 < float((gt > 0).float().mean()) < 1.0  # unknown and edge blocks are holes
    at_gt = photometric_error(gt)
    assert at_gt < 0.7 * photometric_error(gt * 1.03) and at_gt < 0.7 * photometric_error(gt * 0.97)


def test_real_aloe_sgbm_input_covers_the_scene_with_its_wider_search(real_scene):
    from deltaz.io.middlebury import sgbm_depth

    depth, gt = sgbm_depth(real_scene), real_scene["depth_gt"]
    covered = (depth > 0) & (gt > 0)
    holes = float((depth == 0).float().mean())
    assert sgbm_params(real_scene)["numDisparities"] == 112
    assert 0.2 < holes < 0.33  # 26.7 % measured: the unmatched left band (112 of 641 columns), occlusions
    err = (depth - gt).abs()[covered]
    assert float(err.mean()) < 4.0 and float((err < 2.0).float().mean()) > 0.5  # 3.12 mm measured


def test_the_wider_search_reaches_the_sweep_and_the_candidate_search(real_scene, monkeypatch):
    import deltaz.ops.mvs.search as search

    bench = load_benchmark("real_middlebury")
    cal = real_scene["calibration"]
    fb = cal["f_px"] * cal["baseline_mm"]
    assert bench.sweep_range_mm(real_scene) == pytest.approx((fb / (112 + cal["doffs_px"]), fb / cal["doffs_px"]))
    seen = []

    def stop(left, right, max_disparity, window):
        seen.append(max_disparity)
        raise RuntimeError("enough")

    monkeypatch.setattr(search, "sad_cost_volume", stop)
    with pytest.raises(RuntimeError, match="enough"):
        search.search_depth(real_scene, real_scene["depth_gt"])
    assert seen == [112]


def test_benchmark_runs_on_aloe_with_the_scene_option(real_scene):
    bench = load_benchmark("real_middlebury")
    double = bench.load_scene(2.0, scene="aloe")
    assert torch.allclose(double["depth_gt"], 2 * real_scene["depth_gt"], rtol=1e-5)
    depth_init = bench.simulated_input(real_scene, "noise", 0)
    outputs, _ = bench.method_outputs("noise", depth_init, real_scene, None)
    right = {r["method"]: r for r in bench.score(outputs, depth_init, real_scene["depth_gt"])["right"]}
    assert right["identity"]["mae_valid_mm"] == pytest.approx(1.6, abs=0.1)  # 2 mm Gaussian: mean |e| = 1.6 mm
    assert right["bilateral"]["mae_valid_mm"] < right["identity"]["mae_valid_mm"]
