"""The train-ready layout (reading, atomic writing) and the DTU parser on tiny fake ``dtu_training`` folders."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from deltaz.dtu.layout import (
    META_KEYS,
    ScanWriter,
    list_scans,
    list_views,
    load_view,
    read_meta,
    read_scan_pairs,
    write_scan,
)
from deltaz.errors import DataError, FormatError


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
