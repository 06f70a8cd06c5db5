"""DTU file formats: PFM, cam files, pair.txt, raw projection matrices — round trips and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from deltaz.io.dtu.formats import (
    decompose_projection,
    read_cam_file,
    read_pair_file,
    read_pfm,
    read_projection,
    write_cam_file,
    write_pair_file,
    write_pfm,
)
from deltaz.core.errors import FormatError


def _rotation(rng: np.random.Generator) -> np.ndarray:
    Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return Q * np.sign(np.linalg.det(Q))


# ---------------------------------------------------------------------------------------------- PFM


@pytest.mark.parametrize("little_endian", [True, False])
@pytest.mark.parametrize("shape", [(5, 7), (4, 6, 3)])
def test_pfm_round_trip(tmp_path, shape, little_endian):
    array = np.random.default_rng(0).uniform(400, 900, size=shape).astype(np.float32)
    write_pfm(tmp_path / "a.pfm", array, little_endian=little_endian)
    back = read_pfm(tmp_path / "a.pfm")
    assert back.dtype == np.float32 and back.shape == shape
    np.testing.assert_array_equal(back, array)
    scale_line = (tmp_path / "a.pfm").read_bytes().split(b"\n")[2]
    assert (float(scale_line) < 0) == little_endian


def test_pfm_rows_stored_bottom_to_top(tmp_path):
    # Hand-written file: the first stored row is the bottom of the image.
    rows_stored = np.array([[1, 2, 3], [4, 5, 6]], dtype="<f4")
    (tmp_path / "b.pfm").write_bytes(b"Pf\n3 2\n-1.0\n" + rows_stored.tobytes())
    image = read_pfm(tmp_path / "b.pfm")
    np.testing.assert_array_equal(image, [[4, 5, 6], [1, 2, 3]])
    # big-endian, positive scale
    (tmp_path / "c.pfm").write_bytes(b"Pf\n3 2\n1.0\n" + rows_stored.astype(">f4").tobytes())
    np.testing.assert_array_equal(read_pfm(tmp_path / "c.pfm"), [[4, 5, 6], [1, 2, 3]])


@pytest.mark.parametrize(
    "content, match",
    [
        (b"P5\n3 2\n-1.0\n" + bytes(24), "magic"),
        (b"Pf\n3\n-1.0\n" + bytes(24), "line 2"),
        (b"Pf\n3 2\nabc\n" + bytes(24), "line 3"),
        (b"Pf\n3 2\n0\n" + bytes(24), "line 3"),
        (b"Pf\n3 2\n-1.0\n" + bytes(20), "truncated"),
        (b"Pf\n3 2\n-1.0\n" + bytes(28), "trailing"),
        (b"PF\n3 2\n-1.0\n" + bytes(24), "truncated"),
        (b"Pf\n3 2\n-1.0\n" + np.array([1, 2, np.nan, 4, 5, 6], "<f4").tobytes(), "finite"),
        (b"Pf", "line 1"),
        (b"", "line 1"),
    ],
)
def test_pfm_malformed(tmp_path, content, match):
    path = tmp_path / "bad.pfm"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=match) as info:
        read_pfm(path)
    assert str(path) in str(info.value)


def test_pfm_missing_file(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        read_pfm(tmp_path / "nope.pfm")


def test_write_pfm_is_atomic_and_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError):
        write_pfm(tmp_path / "x.pfm", np.zeros((2, 3, 2)))
    write_pfm(tmp_path / "x.pfm", np.ones((2, 3)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pfm"]  # no temp file left behind


# --------------------------------------------------------------------------------------------- cams


def _dtu_cam_text(newline: str = "\n") -> str:
    lines = [
        "extrinsic",
        "0.970263 0.00747983 0.241939 -191.02",
        "-0.0147429 0.999493 0.0282234 3.28832",
        "-0.241605 -0.030951 0.969881 22.5401",
        "0.0 0.0 0.0 1.0",
        "",
        "intrinsic",
        "361.54125 0.0 82.900625",
        "0.0 360.3975 66.383875",
        "0.0 0.0 1.0",
        "",
        "425.0 2.5",
        "",
    ]
    return newline.join(lines)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_read_dtu_cam_file(tmp_path, newline):
    path = tmp_path / "00000000_cam.txt"
    path.write_bytes(_dtu_cam_text(newline).replace("\n\nintrinsic", "\n\n\n\nintrinsic").encode())
    cam = read_cam_file(path)
    assert cam.extrinsics.shape == (4, 4) and cam.extrinsics.dtype == np.float64
    assert cam.intrinsics.shape == (3, 3) and cam.intrinsics.dtype == np.float64
    assert cam.extrinsics[0, 3] == -191.02 and cam.intrinsics[1, 2] == 66.383875
    assert (cam.depth_min, cam.depth_interval, cam.depth_num, cam.depth_max) == (425.0, 2.5, None, None)


@pytest.mark.parametrize("extra", [{}, {"depth_num": 192}, {"depth_num": 192, "depth_max": 931.0}])
@pytest.mark.parametrize("rows", [3, 4])
def test_cam_file_round_trip(tmp_path, extra, rows):
    rng = np.random.default_rng(1)
    E = np.eye(4)
    E[:3, :3] = _rotation(rng)
    E[:3, 3] = rng.normal(size=3) * 300
    K = np.array([[361.54125, 0.0, 82.900625], [0, 360.3975, 66.383875], [0, 0, 1]])
    write_cam_file(tmp_path / "c.txt", K, E[:rows], 425.0, 2.5, **extra)
    text = (tmp_path / "c.txt").read_text()
    assert text.startswith("extrinsic\n") and "\n\nintrinsic\n" in text
    assert text.splitlines()[4] == "0 0 0 1"
    cam = read_cam_file(tmp_path / "c.txt")
    np.testing.assert_array_equal(cam.extrinsics, E)
    np.testing.assert_array_equal(cam.intrinsics, K)
    assert cam.depth_min == 425.0 and cam.depth_interval == 2.5
    assert cam.depth_num == extra.get("depth_num") and cam.depth_max == extra.get("depth_max")


def _mutate(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("-191.02", "", "line 2 / extrinsic row 1: expected 4 numbers, got 3"),
        ("extrinsic", "extrinsics", "line 1: expected 'extrinsic'"),
        ("intrinsic", "intrinsics", "expected 'intrinsic'"),
        ("-191.02", "nan", "finite"),
        ("3.28832", "abc", "expected a number, got 'abc'"),
        ("0.0 0.0 0.0 1.0", "0.0 0.0 1.0 1.0", "0 0 0 1"),
        ("0.970263", "1.970263", "orthonormal"),
        ("361.54125", "-361.54125", "positive focal"),
        ("425.0 2.5", "425.0", "expected 2 or 3 or 4 numbers, got 1"),
        ("425.0 2.5", "425.0 0", "DEPTH_INTERVAL"),
        ("425.0 2.5", "425.0 2.5 19.5", "DEPTH_NUM"),
        ("425.0 2.5", "425.0 2.5 192 400", "DEPTH_MAX"),
        ("425.0 2.5\n", "425.0 2.5\n7\n", "end of file"),
        ("0.0 0.0 1.0\n\n425.0", "\n425.0", "non-empty lines"),
    ],
)
def test_cam_file_malformed(tmp_path, old, new, match):
    path = tmp_path / "bad_cam.txt"
    path.write_text(_mutate(_dtu_cam_text(), old, new))
    with pytest.raises(FormatError, match=match) as info:
        read_cam_file(path)
    assert str(path) in str(info.value)


def test_cam_file_with_11_numbers(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("extrinsic\n1 0 0 0\n0 1 0\n0 0 1 0\n0 0 0 1\n")
    with pytest.raises(FormatError):
        read_cam_file(path)


# --------------------------------------------------------------------------------------------- pairs


def test_pair_file_trailing_spaces_and_short_rows(tmp_path):
    path = tmp_path / "pair.txt"
    path.write_bytes(b"3\r\n0\r\n2 1 20.5 2 10.25 \r\n1\r\n1 0 3.0 \r\n\r\n2\r\n0 \r\n")
    pairs = read_pair_file(path)
    assert pairs == {0: [(1, 20.5), (2, 10.25)], 1: [(0, 3.0)], 2: []}
    assert list(pairs) == [0, 1, 2]


def test_pair_file_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    pairs = {}
    for ref in [5, 0, 3, 7]:
        others = [v for v in [5, 0, 3, 7] if v != ref]
        pairs[ref] = [(int(v), float(s)) for v, s in zip(others, sorted(rng.uniform(0, 3000, 3), reverse=True))]
    write_pair_file(tmp_path / "p.txt", pairs)
    back = read_pair_file(tmp_path / "p.txt")
    assert back == pairs and list(back) == list(pairs)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("2\n0\n1 1 5.0\n", "expected 5 non-empty lines"),
        ("2\n0\n1 1 5.0\n0\n1 1 4.0\n", "reference view id: expected each view once, got 0 again"),
        ("1\n0\n2 1 5.0 1 4.0\n", "repeated source"),
        ("1\n0\n1 0 5.0\n", "own reference"),
        ("1\n0\n2 1 5.0\n", "expected 2 \\(id, score\\) pairs"),
        ("1\n0\n1 1 inf\n", "finite"),
        ("1\nx\n1 1 5.0\n", "expected an integer, got 'x'"),
        ("1\n0\n1 1.5 5.0\n", "source 1 id: expected an integer"),
        ("two\n", "view count"),
    ],
)
def test_pair_file_malformed(tmp_path, text, match):
    path = tmp_path / "pair.txt"
    path.write_text(text)
    with pytest.raises(FormatError, match=match) as info:
        read_pair_file(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------- projection


def _random_camera(rng):
    K = np.array(
        [
            [rng.uniform(500, 3000), rng.uniform(-1, 1), rng.uniform(300, 900)],
            [0, rng.uniform(500, 3000), rng.uniform(200, 700)],
            [0, 0, 1],
        ]
    )
    R = _rotation(rng)
    t = rng.normal(size=3) * 300
    return K, R, t


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("scale", [1.0, -3.5, 1e-3])
def test_decompose_projection_recovers_K_R_t(seed, scale):
    rng = np.random.default_rng(seed)
    K, R, t = _random_camera(rng)
    P = scale * K @ np.hstack([R, t[:, None]])
    K2, R2, t2 = decompose_projection(P)
    np.testing.assert_allclose(K2, K, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(R2, R, atol=1e-10)
    np.testing.assert_allclose(t2, t, rtol=1e-9, atol=1e-8)
    assert np.linalg.det(R2) == pytest.approx(1.0)
    assert K2[2, 2] == 1 and K2[0, 0] > 0 and K2[1, 1] > 0


def test_read_projection_crlf_and_errors(tmp_path):
    path = tmp_path / "pos_001.txt"
    path.write_bytes(b"2607.4 -3.8 1498.1 -533936.6\r\n-192.0 2862.5 681.7 23434.6\r\n-0.24 -0.03 0.97 22.5\r\n")
    P = read_projection(path)
    assert P.shape == (3, 4) and P.dtype == np.float64 and P[2, 3] == 22.5
    path.write_text("1 2 3 4\n5 6 7 8\n")
    with pytest.raises(FormatError, match="3 non-empty lines"):
        read_projection(path)
    path.write_text("1 2 3 4\n5 6 7\n9 10 11 12\n")
    with pytest.raises(FormatError, match="line 2 / row 2: expected 4 numbers, got 3"):
        read_projection(path)
    path.write_text("1 2 3 4\n2 4 6 8\n0 0 0 1\n")
    with pytest.raises(FormatError, match="singular"):
        read_projection(path)
