"""The train-ready layout (reading, atomic writing) and the DTU parser on tiny fake ``dtu_training`` folders."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from deltaz.io.dtu.layout import (
    META_KEYS,
    ScanWriter,
    list_scans,
    list_views,
    load_view,
    read_meta,
    read_scan_pairs,
    write_scan,
)
from deltaz.core.errors import DataError, FormatError


def _views(n=3, H=8, W=10, image=True, initial=False, seed=0):
    rng = np.random.default_rng(seed)
    views = {}
    for vid in range(n):
        depth = rng.uniform(500, 900, size=(H, W)).astype(np.float32)
        depth[0, :3] = 0
        view = {
            "depth": depth,
            "intrinsics": np.array([[20.0, 0, W / 2], [0, 20.0, H / 2], [0, 0, 1]]),
            "extrinsics": np.hstack([np.eye(3), [[vid * 10.0], [0], [0]]]),
        }
        if image:
            view["image"] = rng.uniform(0, 1, size=(3, H, W)).astype(np.float32)
        if initial:
            view["initial"] = depth + 1
        views[vid] = view
    return views


def _pairs(n=3):
    return {r: [(s, float(10 - s)) for s in range(n) if s != r] for r in range(n)}


# ------------------------------------------------------------------------------------------- layout


def test_write_and_load_scan(tmp_path):
    views = _views(initial=True)
    path = write_scan(tmp_path, "scan7", views, _pairs(), {"source": "test", "light": 3})
    assert path == tmp_path / "scan7"
    assert list_scans(tmp_path) == ["scan7"]
    assert list_views(path) == [0, 1, 2]
    meta = read_meta(path)
    assert set(META_KEYS) <= set(meta)
    assert meta["resolution"] == [8, 10] and meta["n_views"] == 3 and meta["units"] == "mm"
    assert meta["has_images"] and meta["has_initial"] and meta["light"] == 3
    valid = np.concatenate([v["depth"][v["depth"] > 0] for v in views.values()])
    assert meta["depth_range_mm"] == pytest.approx([valid.min(), valid.max()])
    assert read_scan_pairs(path) == _pairs()
    view = load_view(path, 1)
    assert set(view) == {"depth", "intrinsics", "extrinsics", "image", "initial"}
    assert view["depth"].dtype == np.float32 and view["extrinsics"].shape == (3, 4)
    np.testing.assert_array_equal(view["depth"], views[1]["depth"])
    np.testing.assert_allclose(view["image"], views[1]["image"], atol=0.5 / 255 + 1e-6)
    assert view["image"].shape == (3, 8, 10)
    assert set(load_view(path, 1, with_image=False, with_initial=False)) == {"depth", "intrinsics", "extrinsics"}
    assert sorted(os.listdir(tmp_path)) == ["scan7"]  # no temporary folders left


def test_list_scans_order_and_completeness(tmp_path):
    for name in ["scan10", "scan2", "scan1"]:
        write_scan(tmp_path, name, _views(n=2, image=False), _pairs(2), {"source": "test"})
    (tmp_path / "scan3" / "depths").mkdir(parents=True)  # interrupted: no meta.json
    (tmp_path / ".tmp-scan4-99999999").mkdir()
    assert list_scans(tmp_path) == ["scan1", "scan2", "scan10"]
    with pytest.raises(DataError, match="no such folder"):
        list_scans(tmp_path / "missing")
    with pytest.raises(DataError, match="meta.json"):
        read_meta(tmp_path / "scan3")


def test_interrupted_writer_leaves_no_complete_scan(tmp_path):
    with pytest.raises(RuntimeError):
        with ScanWriter(tmp_path, "scan5") as writer:
            writer.add_view(0, **{k: v for k, v in _views(n=1)[0].items()})
            raise RuntimeError("killed")
    assert list_scans(tmp_path) == [] and os.listdir(tmp_path) == []
    # a temporary folder of a dead process (kill -9) is cleaned up by the next writer
    stale = tmp_path / ".tmp-scan5-99999999"
    (stale / "depths").mkdir(parents=True)
    write_scan(tmp_path, "scan5", _views(n=2), _pairs(2), {"source": "test"})
    assert not stale.exists() and list_scans(tmp_path) == ["scan5"]


def test_rewrite_replaces_scan(tmp_path):
    write_scan(tmp_path, "scan1", _views(n=3), _pairs(3), {"source": "a"})
    write_scan(tmp_path, "scan1", _views(n=2, seed=1), _pairs(2), {"source": "b"})
    assert list_views(tmp_path / "scan1") == [0, 1] and read_meta(tmp_path / "scan1")["source"] == "b"
    assert sorted(os.listdir(tmp_path)) == ["scan1"]


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda v: v[1].update(depth=np.zeros((4, 4), np.float32)), "shape"),
        (lambda v: v[1]["depth"].__setitem__((0, 0), np.nan), "finite"),
        (lambda v: v[1]["depth"].__setitem__((0, 0), -1), "finite depths >= 0"),
        (lambda v: v[1].update(intrinsics=np.eye(4)), "intrinsics"),
        (lambda v: v[1].update(extrinsics=np.eye(3)), "extrinsics"),
        (lambda v: v[1].pop("image"), "mix"),
        (lambda v: v[1].update(image=np.full((3, 8, 10), 2.0)), r"\[0, 1\]"),
        (lambda v: v[1].pop("depth"), "missing"),
    ],
)
def test_write_scan_rejects_bad_views(tmp_path, change, match):
    views = _views()
    change(views)
    with pytest.raises(DataError, match=match):
        write_scan(tmp_path, "scan1", views, _pairs(), {"source": "test"})
    assert os.listdir(tmp_path) == []


def test_write_scan_rejects_bad_pairs_and_meta(tmp_path):
    with pytest.raises(DataError, match=r"\[5\]"):
        write_scan(tmp_path, "scan1", _views(), {0: [(5, 1.0)]}, {"source": "test"})
    with pytest.raises(DataError, match="source"):
        write_scan(tmp_path, "scan1", _views(), _pairs(), {})
    with pytest.raises(DataError, match="scan name"):
        write_scan(tmp_path, "../x", _views(), _pairs(), {"source": "t"})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "damage, error, match",
    [
        (lambda s: (s / "depths" / "001.npy").unlink(), DataError, "missing depth"),
        (lambda s: (s / "intrinsics" / "001.npy").unlink(), DataError, "missing intrinsics"),
        (lambda s: np.save(s / "extrinsics" / "001.npy", np.eye(4)), FormatError, r"shape \(3, 4\)"),
        (lambda s: np.save(s / "depths" / "001.npy", np.full((8, 10), np.inf)), FormatError, "finite"),
        (lambda s: np.save(s / "depths" / "001.npy", -np.ones((8, 10))), FormatError, ">= 0"),
        (lambda s: np.save(s / "depths" / "001.npy", np.ones((8, 11))), FormatError, "8x10"),
        (lambda s: (s / "depths" / "001.npy").write_bytes(b"garbage"), FormatError, "unreadable"),
        (lambda s: np.save(s / "initial" / "001.npy", np.ones((8, 9))), FormatError, "initial"),
        (lambda s: (s / "images" / "001.png").write_bytes(b"not a png"), FormatError, "PNG"),
    ],
)
def test_load_view_names_the_bad_file(tmp_path, damage, error, match):
    scan = write_scan(tmp_path, "scan1", _views(initial=True), _pairs(), {"source": "test"})
    damage(scan)
    with pytest.raises(error, match=match) as info:
        load_view(scan, 1)
    assert "001" in str(info.value)


def test_read_meta_rejects_bad_json(tmp_path):
    scan = write_scan(tmp_path, "scan1", _views(), _pairs(), {"source": "test"})
    meta = json.loads((scan / "meta.json").read_text())
    del meta["units"]
    (scan / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(FormatError, match="units"):
        read_meta(scan)
    (scan / "meta.json").write_text("{")
    with pytest.raises(FormatError, match="JSON"):
        read_meta(scan)


# ------------------------------------------------------------------------------------------- parser

import imageio.v3 as iio  # noqa: E402

from deltaz.apps.cli import main as cli_main  # noqa: E402
from deltaz.io.dtu.cameras import raw_intrinsics_to_frame  # noqa: E402
from deltaz.io.dtu.formats import read_pfm, write_cam_file, write_pair_file, write_pfm  # noqa: E402
from deltaz.io.dtu.parse import parse_dtu, resize_depth_nearest  # noqa: E402

H, W = 16, 20  # depth maps (MVSNet frame, 5:4); images are 4x larger
K_TRAIN = np.array([[18.0, 0.0, 10.3], [0.0, 18.2, 7.9], [0.0, 0.0, 1.0]])


def _pose(view_id):
    angle = 0.1 * view_id
    R = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    return np.hstack([R, [[-50.0 * view_id], [3.0], [20.0]]])


def _fake_dtu(root, scans=(1, 2), n_views=3, images=True, cams=True, seed=0):
    """A tiny MVSNet ``dtu_training`` folder written with DeltaZ's own writers."""
    rng = np.random.default_rng(seed)
    write_pair_file(
        root / "Cameras" / "pair.txt", {r: [(s, 100.0 - s) for s in range(49) if s != r][:10] for r in range(49)}
    )
    for vid in range(n_views):
        if cams:
            write_cam_file(root / "Cameras" / "train" / f"{vid:08d}_cam.txt", K_TRAIN, _pose(vid), 425.0, 2.5)
    for scan in scans:
        for vid in range(n_views):
            depth = rng.uniform(500, 900, size=(H, W)).astype(np.float32)
            depth[:3, :4] = 0
            write_pfm(root / "Depths" / f"scan{scan}_train" / f"depth_map_{vid:04d}.pfm", depth)
            if images:
                for light in (3, 5):
                    image = rng.integers(0, 256, size=(4 * H, 4 * W, 3), dtype=np.uint8)
                    path = root / "Rectified" / f"scan{scan}_train" / f"rect_{vid + 1:03d}_{light}_r5000.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    iio.imwrite(path, image, plugin="pillow")
    return root


def test_parse_dtu_training(tmp_path):
    src = _fake_dtu(tmp_path / "dtu_training")
    summary = parse_dtu(src, tmp_path / "out", progress=False)
    assert summary.written == ["scan1", "scan2"] and summary.ok and not summary.skipped
    assert any("3 views" in message for _, message in summary.warnings)
    assert list_scans(tmp_path / "out") == ["scan1", "scan2"]
    scan = tmp_path / "out" / "scan2"
    meta = read_meta(scan)
    assert meta["resolution"] == [H, W] and meta["light"] == 3 and meta["n_views"] == 3
    assert meta["has_images"] and not meta["has_initial"]
    assert meta["depth_range_mm"][0] == 425.0 and meta["depth_range_mm"][1] == pytest.approx(425 + 2.5 * 1.06 * 191)
    assert read_scan_pairs(scan) == {r: [(s, 100.0 - s) for s in range(3) if s != r] for r in range(3)}
    for vid in range(3):
        view = load_view(scan, vid)
        np.testing.assert_array_equal(
            view["depth"], read_pfm(src / "Depths" / "scan2_train" / f"depth_map_{vid:04d}.pfm")
        )
        np.testing.assert_allclose(view["intrinsics"], K_TRAIN, rtol=1e-6)
        np.testing.assert_allclose(view["extrinsics"], _pose(vid), rtol=1e-6, atol=1e-5)
        # the image is the light-3 PNG of view vid+1, block-averaged 4x4 down to the depth's size
        png = iio.imread(src / "Rectified" / "scan2_train" / f"rect_{vid + 1:03d}_3_r5000.png")
        block_mean = png.reshape(H, 4, W, 4, 3).mean(axis=(1, 3)).transpose(2, 0, 1) / 255
        np.testing.assert_allclose(view["image"], block_mean, atol=0.5 / 255 + 1e-6)


def test_parse_resolution_light_and_scan_selection(tmp_path):
    src = _fake_dtu(tmp_path / "src")
    summary = parse_dtu(src, tmp_path / "out", scans=["2"], light=5, resolution=(8, 10), progress=False)
    assert summary.written == ["scan2"]
    view = load_view(tmp_path / "out" / "scan2", 1)
    depth = read_pfm(src / "Depths" / "scan2_train" / "depth_map_0001.pfm")
    np.testing.assert_array_equal(view["depth"], depth[::2, ::2])
    np.testing.assert_allclose(view["intrinsics"], K_TRAIN * [[0.5], [0.5], [1]], rtol=1e-6)
    png = iio.imread(src / "Rectified" / "scan2_train" / "rect_002_5_r5000.png")
    np.testing.assert_allclose(
        view["image"], png.reshape(8, 8, 10, 8, 3).mean(axis=(1, 3)).transpose(2, 0, 1) / 255, atol=0.51 / 255
    )
    assert read_meta(tmp_path / "out" / "scan2")["light"] == 5


def test_resize_depth_nearest_matches_scaled_intrinsics():
    depth = np.arange(12 * 20, dtype=np.float32).reshape(12, 20)
    np.testing.assert_array_equal(resize_depth_nearest(depth, (6, 10)), depth[::2, ::2])
    # upsampling 2 -> 4: output u takes input floor(u/2 + 0.5) = 0, 1, 1, 2 (clipped to 1)
    up = resize_depth_nearest(depth[:2, :2], (4, 4))
    np.testing.assert_array_equal(up[0], [0, 1, 1, 1])
    assert set(np.unique(up)) <= set(depth[:2, :2].ravel())  # never interpolates depths


def test_rerun_skips_complete_and_redoes_interrupted(tmp_path):
    src = _fake_dtu(tmp_path / "src", images=False)
    dst = tmp_path / "out"
    assert parse_dtu(src, dst, progress=False).written == ["scan1", "scan2"]
    # simulate an interrupted run: scan2 lost its meta.json, a dead process left a temp folder
    (dst / "scan2" / "meta.json").unlink()
    (dst / "scan2" / "depths" / "001.npy").unlink()
    (dst / ".tmp-scan2-99999999" / "depths").mkdir(parents=True)
    summary = parse_dtu(src, dst, progress=False)
    assert summary.skipped == ["scan1"] and summary.written == ["scan2"]
    assert list_views(dst / "scan2") == [0, 1, 2] and sorted(os.listdir(dst)) == ["scan1", "scan2"]
    assert not read_meta(dst / "scan2")["has_images"]
    assert parse_dtu(src, dst, progress=False, overwrite=True).written == ["scan1", "scan2"]


@pytest.mark.parametrize(
    "damage, match",
    [
        (
            lambda src: (src / "Depths/scan2_train/depth_map_0001.pfm").write_bytes(b"Pf\n20 16\n-1\n" + bytes(100)),
            "truncated",
        ),
        (lambda src: write_pfm(src / "Depths/scan2_train/depth_map_0001.pfm", np.full((H, W), np.nan)), "finite"),
        (lambda src: write_pfm(src / "Depths/scan2_train/depth_map_0001.pfm", -np.ones((H, W))), "negative"),
        (
            lambda src: write_pfm(src / "Depths/scan2_train/depth_map_0001.pfm", np.ones((H, W + 1))),
            "like the scan's first view",
        ),
        (lambda src: (src / "Rectified/scan2_train/rect_002_3_r5000.png").unlink(), "missing image"),
        (
            lambda src: iio.imwrite(
                src / "Rectified/scan2_train/rect_002_3_r5000.png", np.zeros((64, 64, 3), np.uint8), plugin="pillow"
            ),
            "aspect",
        ),
        (lambda src: (src / "Cameras/train/00000002_cam.txt").write_text("extrinsic\n1 0 0\n"), "00000002_cam.txt"),
    ],
)
def test_malformed_scan_fails_alone(tmp_path, capsys, damage, match):
    src = _fake_dtu(tmp_path / "src")
    damage(src)
    summary = parse_dtu(src, tmp_path / "out", progress=False)
    assert "scan2" in summary.failed and match in summary.failed["scan2"]
    assert not (tmp_path / "out" / "scan2").exists() and not summary.ok
    if "cam" not in match:  # a bad camera is shared by every scan
        assert summary.written == ["scan1"]
    code = cli_main(["parse", "--src", str(src), "--dst", str(tmp_path / "out2"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "FAILED scan2" in out and "failed" in out


def test_raw_calibration_and_initial_depths(tmp_path):
    src = _fake_dtu(tmp_path / "src", scans=(1,), images=False, cams=False)
    K_raw = np.array([[2892.3, 0.0, 823.2], [0.0, 2883.2, 619.1], [0.0, 0.0, 1.0]])
    for vid in range(3):
        P = 0.5 * K_raw @ _pose(vid)
        path = src / "Calibration" / "cal18" / f"pos_{vid + 1:03d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(("\r\n".join(" ".join(f"{x:.9f}" for x in row) for row in P) + "\r\n").encode())
    initial_root = tmp_path / "mvs"
    for vid in range(3):
        name = f"{vid:08d}.pfm" if vid != 1 else f"depth_map_{vid:04d}.pfm"
        write_pfm(initial_root / "scan1" / name, np.full((2 * H, 2 * W), 600.0 + vid))
    assert (
        cli_main(
            [
                "parse",
                "--src",
                str(src),
                "--dst",
                str(tmp_path / "out"),
                "--scans",
                "scan1",
                "--initial",
                str(initial_root),
                "--no-progress",
            ]
        )
        == 0
    )
    view = load_view(tmp_path / "out" / "scan1", 2)
    expected_K = raw_intrinsics_to_frame(K_raw, (H, W))
    assert expected_K[0, 0] == pytest.approx(2892.3 / 2 * W / 640)
    np.testing.assert_allclose(view["intrinsics"], expected_K, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(view["extrinsics"], _pose(2), atol=1e-5)
    np.testing.assert_array_equal(view["initial"], np.full((H, W), 602.0))
    meta = read_meta(tmp_path / "out" / "scan1")
    assert meta["has_initial"] and meta["cameras"] == "Calibration/cal18"


def test_split_names_and_bad_arguments(tmp_path):
    src = _fake_dtu(tmp_path / "src", scans=(1,), images=False)
    summary = parse_dtu(src, tmp_path / "out", scans="test", progress=False)
    assert summary.written == ["scan1"] and len(summary.failed) == 21
    assert all("no depth folder" in reason for reason in summary.failed.values())
    with pytest.raises(DataError, match="no such folder"):
        parse_dtu(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(Exception, match="light"):
        parse_dtu(src, tmp_path / "out", light=9)
    (src / "Cameras" / "pair.txt").unlink()
    assert cli_main(["parse", "--src", str(src), "--dst", str(tmp_path / "o"), "--no-progress"]) == 1


# ------------------------------------------------------------------------------------------- lights


def _block_mean(png: np.ndarray) -> np.ndarray:
    return png.reshape(H, 4, W, 4, 3).mean(axis=(1, 3)).transpose(2, 0, 1) / 255


def test_parser_keeps_every_light_and_load_view_picks_one(tmp_path):
    from deltaz.io.dtu.layout import LIGHT_DIR, list_lights

    src = _fake_dtu(tmp_path / "src", scans=(1,))  # lights 3 and 5 on disk
    assert parse_dtu(src, tmp_path / "all", progress=False).ok
    scan = tmp_path / "all" / "scan1"
    meta = read_meta(scan)
    assert meta["light"] == 3 and meta["lights"] == [3, 5] and list_lights(scan) == [3, 5]
    assert sorted(p.name for p in (scan / LIGHT_DIR).iterdir()) == ["5"]  # the primary light stays in images/
    for vid in range(3):
        for light in (3, 5):
            png = iio.imread(src / "Rectified" / "scan1_train" / f"rect_{vid + 1:03d}_{light}_r5000.png")
            np.testing.assert_allclose(load_view(scan, vid, light=light)["image"], _block_mean(png), atol=0.51 / 255)
        np.testing.assert_array_equal(load_view(scan, vid)["image"], load_view(scan, vid, light=3)["image"])
    with pytest.raises(DataError, match=r"light 2.*\[3, 5\]"):
        load_view(scan, 0, light=2)
    # one light, as before: --light alone
    assert parse_dtu(src, tmp_path / "one", light=5, progress=False).ok
    assert read_meta(tmp_path / "one" / "scan1")["lights"] == [5]
    assert not (tmp_path / "one" / "scan1" / LIGHT_DIR).exists()
    # a chosen subset with another primary light
    assert parse_dtu(src, tmp_path / "sub", light=5, lights="3,5", progress=False).ok
    assert list_lights(tmp_path / "sub" / "scan1") == [3, 5] and read_meta(tmp_path / "sub" / "scan1")["light"] == 5
    # asking for lights the scan lacks fails the scan with the missing file named
    summary = parse_dtu(src, tmp_path / "missing", lights="0-6", progress=False)
    assert "rect_001_0_r5000.png" in summary.failed["scan1"]


@pytest.mark.parametrize("kwargs, match", [
    ({"light": 7}, "light: expected a DTU lighting index 0..6"),
    ({"lights": "0-9"}, "lights: expected DTU lighting indices 0..6"),
    ({"lights": "three"}, "lights: expected DTU lighting indices"),
    ({"lights": []}, "lights: expected DTU lighting indices 0..6"),
])
def test_bad_light_options_are_one_config_error_line(tmp_path, kwargs, match):
    from deltaz.core.errors import ConfigError

    src = _fake_dtu(tmp_path / "src", scans=(1,), n_views=1)
    with pytest.raises(ConfigError, match=match) as info:
        parse_dtu(src, tmp_path / "out", progress=False, **kwargs)
    assert "\n" not in str(info.value)


def test_cli_lights_flag(tmp_path, capsys):
    src = _fake_dtu(tmp_path / "src", scans=(1,), n_views=2)
    assert cli_main(["parse", "--src", str(src), "--dst", str(tmp_path / "o"), "--lights", "5", "--no-progress"]) == 0
    assert read_meta(tmp_path / "o" / "scan1")["lights"] == [5]
    assert cli_main(["parse", "--src", str(src), "--dst", str(tmp_path / "x"), "--lights", "8", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lights" in err


def test_per_scan_cameras_win_over_the_shared_ones(tmp_path):
    src = _fake_dtu(tmp_path / "src", scans=(1, 2), n_views=3, images=False)
    for vid in range(3):
        write_cam_file(src / "Cameras" / "scan2_train" / f"{vid:08d}_cam.txt", K_TRAIN, _pose(vid), 300.0, 5.0, 192,
                       1300.0)
    assert parse_dtu(src, tmp_path / "out", progress=False).ok
    assert read_meta(tmp_path / "out" / "scan1")["depth_range_mm"][0] == 425.0
    meta = read_meta(tmp_path / "out" / "scan2")
    assert meta["depth_range_mm"] == [300.0, 1300.0] and meta["cameras"] == "Cameras/scan2_train"
