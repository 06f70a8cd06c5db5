"""``deltaz refine`` and ``deltaz.refine_depth``: formats, folders, disparity, bad input, tiling, shipped weights."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import deltaz
from deltaz.engine import checkpoint as ckpt
from deltaz.apps.cli import main as cli_main
from deltaz.io.depth_io import read_depth_file, write_depth_file
from deltaz.core.errors import ConfigError, DataError
from deltaz.model import build_model, model_config
from deltaz.engine.refine import load_model, predict_delta_z, prepare_image, refine_depth

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 24, 32
EXT = {"pfm": ".pfm", "npy": ".npy", "png": ".png", "tiff": ".tif", "colmap": ".geometric.bin"}


def _save(path: Path, in_channels: int, perturb: bool) -> Path:
    """A tiny DeltaZUnet checkpoint in the training format (the demo's input options: 20 mm span, hole pre-fill)."""
    torch.manual_seed(0)
    model = build_model("deltaz_unet", in_channels=in_channels, base_channel=4, depth=2, depth_scale_mm=20.0,
                        prefill_holes=True)
    if perturb:  # the head is zero-initialised (identity); perturb it so that delta_z != 0
        torch.nn.init.normal_(model.head.weight, std=0.05)
        torch.nn.init.constant_(model.head.bias, 0.02)
    ckpt.save_checkpoint(path, {"model": model.state_dict(), "model_config": model_config(model), "config": {}})
    return path


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    base = tmp_path_factory.mktemp("ckpt")
    return {"rgb": _save(base / "rgb.pt", 4, True), "depth": _save(base / "depth.pt", 1, True),
            "identity": _save(base / "identity.pt", 4, False)}


def _depth(holes: str = "zero") -> np.ndarray:
    rng = np.random.default_rng(0)
    depth = np.full((H, W), 600.0, np.float32) + rng.normal(0, 2, (H, W)).astype(np.float32)
    depth[8:16, 10:20] -= 50
    depth[2:5, 2:6] = 0.0
    if holes == "nan":
        depth[20:22, 25:30] = np.nan
        depth[0, W - 1] = np.inf
    return np.rint(depth) if holes == "int" else depth


def _image(scale: int = 1) -> np.ndarray:
    return (np.random.default_rng(1).random((H * scale, W * scale, 3)) * 255).astype(np.uint8)


def _cli(*args) -> int:
    return cli_main(["refine", *map(str, args)])


def _bad(capsys, tmp_path, *args, out: Path | None = None) -> str:
    """Run a CLI call that must fail: non-zero, exactly one stderr line, no traceback, no file left in tmp_path/out."""
    out = out or tmp_path / "out"
    before = set(tmp_path.rglob("*"))
    assert _cli(*args) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deltaz refine: error: ") and "Traceback" not in err[0], err
    assert set(tmp_path.rglob("*")) == before, "a bad input left a file behind"
    return err[0]


# ------------------------------------------------------------------------------------------- formats
@pytest.mark.parametrize("fmt", ["pfm", "npy", "png", "tiff", "colmap"])
def test_format_round_trip_keeps_values_and_holes(fmt, ckpts, tmp_path, capsys):
    holes = "int" if fmt == "png" else "nan"
    depth, image = _depth(holes), _image()
    src, out = tmp_path / f"d{EXT[fmt]}", tmp_path / "out" / f"r{EXT[fmt]}"
    write_depth_file(src, depth, fmt)
    iio.imwrite(tmp_path / "d.png.img.png", image)
    assert _cli("--depth", src, "--image", tmp_path / "d.png.img.png", "--out", out, "--checkpoint", ckpts["rgb"]) == 0
    got = read_depth_file(out)
    assert got.format == fmt and got.values.shape == (H, W)
    expected = refine_depth(depth, image, ckpts["rgb"])  # the Python API gives the CLI's result
    if fmt == "png":
        expected = np.rint(expected)
    np.testing.assert_array_equal(got.values, expected)
    valid = np.isfinite(depth) & (depth > 0)
    assert np.abs(got.values[valid] - depth[valid]).max() > 0.5  # the perturbed head changes the depth
    np.testing.assert_array_equal(got.values[~valid], depth[~valid])  # 0, NaN and inf come back as they came
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left


def test_png_depth_scale_and_other_output_format(ckpts, tmp_path):
    depth = _depth("int")
    write_depth_file(tmp_path / "d.png", depth * 10, "png")  # stored in 0.1 mm
    iio.imwrite(tmp_path / "i.png", _image())
    args = ["--image", tmp_path / "i.png", "--checkpoint", ckpts["rgb"], "--depth-scale", "0.1"]
    assert _cli("--depth", tmp_path / "d.png", "--out", tmp_path / "o.png", *args) == 0
    assert _cli("--depth", tmp_path / "d.png", "--out", tmp_path / "o.npy", *args) == 0
    refined = refine_depth(depth, _image(), ckpts["rgb"])
    # rounded to the PNG's 0.1 mm units (the CLI's input is stored x 0.1 in float32: one unit either way at a .5)
    np.testing.assert_allclose(read_depth_file(tmp_path / "o.png").values, np.rint(refined * 10), atol=1)
    np.testing.assert_allclose(read_depth_file(tmp_path / "o.npy").values, refined * 10, rtol=1e-6)


def test_colmap_layout_is_column_major_width_height_channels(tmp_path):
    values = np.arange(6, dtype=np.float32).reshape(2, 3) + 1  # H=2, W=3, value(x, y) = 1 + x + 3y
    data = b"3&2&1&" + b"".join(struct.pack("<f", float(1 + x + 3 * y)) for y in range(2) for x in range(3))
    (tmp_path / "a.jpg.geometric.bin").write_bytes(data)
    np.testing.assert_array_equal(read_depth_file(tmp_path / "a.jpg.geometric.bin").values, values)
    write_depth_file(tmp_path / "b.photometric.bin", values, "colmap")
    assert (tmp_path / "b.photometric.bin").read_bytes() == data


def test_preview_and_fill_holes(ckpts, tmp_path):
    write_depth_file(tmp_path / "d.pfm", _depth(), "pfm")
    iio.imwrite(tmp_path / "i.png", _image())
    assert _cli("--depth", tmp_path / "d.pfm", "--image", tmp_path / "i.png", "--out", tmp_path / "o.pfm",
                "--checkpoint", ckpts["rgb"], "--preview", tmp_path / "p.png", "--fill-holes") == 0
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (read_depth_file(tmp_path / "o.pfm").values[2:5, 2:6] > 500).all()  # the small hole is filled


# ------------------------------------------------------------------------------------------- folders
def test_folder_pairs_by_stem_skips_and_reports_failures(ckpts, tmp_path, capsys):
    depth_dir, image_dir, out = tmp_path / "depth", tmp_path / "images", tmp_path / "out"
    depth_dir.mkdir(), image_dir.mkdir()
    write_depth_file(depth_dir / "a.pfm", _depth(), "pfm")
    write_depth_file(depth_dir / "b.png", _depth("int"), "png")
    write_depth_file(depth_dir / "c.jpg.geometric.bin", _depth(), "colmap")  # COLMAP keeps the image's name
    write_depth_file(depth_dir / "lonely.npy", _depth(), "npy")  # no image: skipped
    (depth_dir / "broken.pfm").write_bytes(b"Pf\n32 24\n-1.0\n" + b"\0" * 100)  # truncated: failed
    (depth_dir / "notes.txt").write_text("not a depth map")  # ignored
    for name in ("a.png", "b.jpg", "c.jpg", "broken.png"):
        iio.imwrite(image_dir / name, _image())
    rc = _cli("--depth", depth_dir, "--image", image_dir, "--out", out, "--checkpoint", ckpts["rgb"])
    captured = capsys.readouterr()
    assert rc == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.pfm", "b.png", "c.jpg.geometric.bin"]
    assert "refined 3, skipped 1, failed 1" in captured.out
    assert "skipped lonely.npy: no image named lonely" in captured.out and "failed  broken.pfm" in captured.out
    assert "broken.pfm" in captured.err and "truncated" in captured.err
    np.testing.assert_array_equal(read_depth_file(out / "a.pfm").values, refine_depth(_depth(), _image(), ckpts["rgb"]))
    (depth_dir / "broken.pfm").unlink()
    assert _cli("--depth", depth_dir, "--image", image_dir, "--out", tmp_path / "o2", "--checkpoint", ckpts["rgb"],
                "--out-format", "npy") == 0
    assert sorted(p.name for p in (tmp_path / "o2").iterdir()) == ["a.npy", "b.npy", "c.jpg.npy"]


# ------------------------------------------------------------------------------------------- disparity
def test_disparity_becomes_depth_in_mm(ckpts, tmp_path):
    disparity = np.full((H, W), 40.0, np.float32)
    disparity[:, W // 2:] = 20.0
    disparity[0, 0], disparity[1, 1], disparity[2, 2] = np.inf, np.nan, 0.0  # unknown
    write_depth_file(tmp_path / "disp.pfm", disparity, "pfm")
    iio.imwrite(tmp_path / "i.png", _image())
    assert _cli("--depth", tmp_path / "disp.pfm", "--image", tmp_path / "i.png", "--out", tmp_path / "z.npy",
                "--checkpoint", ckpts["identity"], "--disparity", "--focal", 1000, "--baseline", 100, "--doffs", 10) == 0
    depth = np.load(tmp_path / "z.npy")
    assert depth[0, 0] == depth[1, 1] == depth[2, 2] == 0  # holes
    np.testing.assert_allclose(depth[5, 3], 1000 * 100 / (40 + 10), rtol=1e-6)  # f·B/(d + doffs) mm
    np.testing.assert_allclose(depth[5, -1], 1000 * 100 / (20 + 10), rtol=1e-6)


def test_right_image_runs_the_stereo_search_before_refining(ckpts, tmp_path, capsys):
    rng = np.random.default_rng(2)
    left = (rng.random((H, W + 8, 3)) * 255).astype(np.uint8)
    right = left[:, 6:W + 6].copy()  # a fronto-parallel scene at 6 px: x_right = x - 6
    left = left[:, :W].copy()
    right[:, W - 6:] = 0
    disparity = np.full((H, W), 6.0, np.float32)
    disparity[8:14, 12:18] = 9.0  # a wrong patch the right image refutes
    write_depth_file(tmp_path / "disp.pfm", disparity, "pfm")
    iio.imwrite(tmp_path / "l.png", left)
    iio.imwrite(tmp_path / "r.png", right)
    stereo = ["--disparity", "--focal", 1000, "--baseline", 100, "--checkpoint", ckpts["identity"]]
    assert _cli("--depth", tmp_path / "disp.pfm", "--image", tmp_path / "l.png", "--right-image", tmp_path / "r.png",
                "--out", tmp_path / "z.npy", *stereo) == 0
    # searched back to 6 px; the sub-pixel step (last) may move it by a few thousandths of a pixel
    np.testing.assert_allclose(np.load(tmp_path / "z.npy")[8:14, 12:18], 1000 * 100 / 6, rtol=1e-3)
    assert _cli("--depth", tmp_path / "disp.pfm", "--image", tmp_path / "l.png", "--out", tmp_path / "y.npy",
                *stereo) == 0
    np.testing.assert_allclose(np.load(tmp_path / "y.npy")[8:14, 12:18], 1000 * 100 / 9, rtol=1e-6)  # no search
    iio.imwrite(tmp_path / "small.png", right[:, :-2])
    capsys.readouterr()
    out = ["--out", tmp_path / "o" / "z.npy"]
    assert "needs --disparity" in _bad(capsys, tmp_path, "--depth", tmp_path / "disp.pfm", "--image", tmp_path / "l.png",
                                       "--right-image", tmp_path / "r.png", "--checkpoint", ckpts["identity"], *out)
    assert "disparity map's size" in _bad(capsys, tmp_path, "--depth", tmp_path / "disp.pfm", "--image",
                                          tmp_path / "l.png", "--right-image", tmp_path / "small.png", *stereo, *out)
    assert "single-file mode" in _bad(capsys, tmp_path, "--depth", tmp_path / "disp.pfm", "--image", tmp_path / "l.png",
                                      "--right-image", tmp_path, *stereo, *out)
    (tmp_path / "maps").mkdir()
    write_depth_file(tmp_path / "maps" / "l.pfm", disparity, "pfm")
    assert "single-file mode" in _bad(capsys, tmp_path, "--depth", tmp_path / "maps", "--image", tmp_path,
                                      "--right-image", tmp_path / "r.png", *stereo, "--out", tmp_path / "o")


# ------------------------------------------------------------------------------------------- images
def test_image_a_whole_multiple_larger_is_area_averaged(ckpts, tmp_path, capsys):
    big = _image(scale=4)
    write_depth_file(tmp_path / "d.pfm", _depth(), "pfm")
    iio.imwrite(tmp_path / "big.png", big)
    assert _cli("--depth", tmp_path / "d.pfm", "--image", tmp_path / "big.png", "--out", tmp_path / "o.pfm",
                "--checkpoint", ckpts["rgb"]) == 0
    assert "area-averaged 4x4" in capsys.readouterr().err
    small = big.astype(np.float64).reshape(H, 4, W, 4, 3).mean(axis=(1, 3)) / 255
    expected = refine_depth(_depth(), small.astype(np.float32), ckpts["rgb"])
    np.testing.assert_allclose(read_depth_file(tmp_path / "o.pfm").values, expected, atol=1e-3)
    odd = np.zeros((H * 2 + 3, W * 2, 3), np.uint8)
    with pytest.raises(DataError, match=f"image is {W * 2}x{H * 2 + 3} but depth is {W}x{H}"):
        prepare_image(odd, (H, W))
    assert prepare_image(odd, (H, W), resize_image=True)[0].shape == (3, H, W)


# ------------------------------------------------------------------------------------------- bad input
def test_bad_inputs_fail_with_one_line_and_leave_nothing(ckpts, tmp_path, capsys):
    iio.imwrite(tmp_path / "i.png", _image())
    iio.imwrite(tmp_path / "odd.png", np.zeros((H + 5, W, 3), np.uint8))
    write_depth_file(tmp_path / "d.pfm", _depth(), "pfm")
    iio.imwrite(tmp_path / "d8.png", np.full((H, W), 100, np.uint8))
    write_depth_file(tmp_path / "holes.npy", np.zeros((H, W), np.float32), "npy")
    negative = _depth()
    negative[3, 3] = -5
    write_depth_file(tmp_path / "neg.tif", negative, "tiff")
    (tmp_path / "trunc.png").write_bytes((tmp_path / "i.png").read_bytes()[:60])
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    out = tmp_path / "out" / "o.pfm"
    rgb = ["--checkpoint", ckpts["rgb"], "--out", out]
    assert "is 32x29 but" in _bad(capsys, tmp_path, "--depth", tmp_path / "d.pfm", "--image", tmp_path / "odd.png", *rgb)
    assert "8-bit PNG" in _bad(capsys, tmp_path, "--depth", tmp_path / "d8.png", "--image", tmp_path / "i.png", *rgb)
    assert "every pixel is a hole" in _bad(capsys, tmp_path, "--depth", tmp_path / "holes.npy", "--image", tmp_path / "i.png", *rgb)
    assert "negative" in _bad(capsys, tmp_path, "--depth", tmp_path / "neg.tif", "--image", tmp_path / "i.png", *rgb)
    assert "trunc.png" in _bad(capsys, tmp_path, "--depth", tmp_path / "trunc.png", "--image", tmp_path / "i.png", *rgb)
    assert "junk.npy" in _bad(capsys, tmp_path, "--depth", tmp_path / "junk.npy", "--image", tmp_path / "i.png", *rgb)
    assert "takes an RGB image" in _bad(capsys, tmp_path, "--depth", tmp_path / "d.pfm", *rgb)
    assert "drop --image" in _bad(capsys, tmp_path, "--depth", tmp_path / "d.pfm", "--image", tmp_path / "i.png",
                                  "--checkpoint", ckpts["depth"], "--out", out)
    assert "is the input" in _bad(capsys, tmp_path, "--depth", tmp_path / "d.pfm", "--image", tmp_path / "i.png",
                                  "--checkpoint", ckpts["rgb"], "--out", tmp_path / "d.pfm")
    assert _cli("--depth", tmp_path / "d.pfm", "--image", tmp_path / "i.png", "--checkpoint", ckpts["rgb"],
                "--out", tmp_path / "d.pfm", "--overwrite") == 0


def test_foreign_checkpoints_are_refused(tmp_path, capsys):
    write_depth_file(tmp_path / "d.pfm", _depth(), "pfm")
    torch.save({"model": torch.nn.Linear(3, 2).state_dict()}, tmp_path / "linear.pt")
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "plain.pt")
    for name in ("linear.pt", "plain.pt"):
        line = _bad(capsys, tmp_path, "--depth", tmp_path / "d.pfm", "--checkpoint", tmp_path / name, "--out", tmp_path / "o.pfm")
        assert name in line and "DeltaZ" in line


class _Payload:
    """Unpickling this would create a file (``open(path, "w")``); weights_only=True must never run it."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_payload_is_never_run(tmp_path, capsys):
    marker = tmp_path / "pwned.txt"
    import pickle

    pickle.loads(pickle.dumps(_Payload(tmp_path / "control.txt")))  # control: unpickling it does create a file
    assert (tmp_path / "control.txt").exists()
    (tmp_path / "control.txt").unlink()
    torch.save({"model": {}, "evil": _Payload(marker)}, tmp_path / "evil.pt")
    write_depth_file(tmp_path / "d.pfm", _depth(), "pfm")
    line = _bad(capsys, tmp_path, "--depth", tmp_path / "d.pfm", "--checkpoint", tmp_path / "evil.pt", "--out", tmp_path / "o.pfm")
    assert "evil.pt" in line and not marker.exists()
    with pytest.raises(DataError):
        load_model(tmp_path / "evil.pt")
    assert not marker.exists()


def test_subprocess_exit_code_and_single_line(ckpts, tmp_path):
    write_depth_file(tmp_path / "neg.pfm", -np.ones((H, W), np.float32), "pfm")
    result = subprocess.run([sys.executable, "-m", "deltaz", "refine", "--depth", str(tmp_path / "neg.pfm"),
                             "--checkpoint", str(ckpts["depth"]), "--out", str(tmp_path / "o.pfm")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "negative" in result.stderr and "Traceback" not in result.stderr and not (tmp_path / "o.pfm").exists()


# ------------------------------------------------------------------------------------------- API, tiling, weights
def test_python_api_numpy_in_numpy_out_and_cache(ckpts):
    image = _image()
    a = deltaz.refine_depth(_depth(), image, ckpts["rgb"])
    b = deltaz.refine_depth(_depth(), image.astype(np.float32) / 255, ckpts["rgb"])
    assert a.dtype == np.float32 and a.shape == (H, W)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert load_model(ckpts["rgb"]) is load_model(ckpts["rgb"])  # loaded once per (checkpoint, device)
    identity = deltaz.refine_depth(_depth("nan"), image, ckpts["identity"], smooth=False)  # the network alone
    np.testing.assert_array_equal(identity, _depth("nan"))


def test_tiling_covers_the_map_and_small_maps_are_untouched(ckpts):
    model = load_model(ckpts["rgb"])
    rng = np.random.default_rng(2)
    depth = (600 + rng.normal(0, 2, (300, 280))).astype(np.float32)
    image = rng.random((3, 300, 280)).astype(np.float32)
    full = predict_delta_z(model, depth, image, max_pixels=None)
    same = predict_delta_z(model, depth, image, max_pixels=300 * 280)
    tiled = predict_delta_z(model, depth, image, max_pixels=160 * 160, tile_overlap=32)
    np.testing.assert_array_equal(full, same)
    assert tiled.shape == full.shape and np.isfinite(tiled).all()
    assert np.abs(tiled - full).mean() < 0.5 * np.abs(full).mean()  # close to the whole-map Δz, not equal (GroupNorm)
    bf16 = predict_delta_z(model, depth, image, max_pixels=None, bf16=True)
    assert np.abs(bf16 - full).mean() < 0.05 * np.abs(full).mean()


def test_default_checkpoint_is_the_shipped_file_or_a_clear_error(monkeypatch, tmp_path):
    import deltaz.weights as weights

    monkeypatch.setattr(weights, "DEFAULT_WEIGHTS", tmp_path / "deltaz_refiner.pt")
    with pytest.raises(ConfigError, match="no weights ship in this checkout.*--checkpoint"):
        weights.default_checkpoint()
    _save(tmp_path / "deltaz_refiner.pt", 1, False)
    assert weights.default_checkpoint() == tmp_path / "deltaz_refiner.pt"
    depth = _depth()
    np.testing.assert_array_equal(refine_depth(depth, smooth=False), depth)  # identity weights, loaded by default


def test_weights_of_another_architecture_are_refused(tmp_path):
    """A checkpoint whose config names one model and whose weights are another's: one line naming the file."""
    from deltaz.core.errors import DataError
    from deltaz.engine.refine import load_refiner

    unet = build_model("deltaz_unet", in_channels=1, base_channel=4, depth=2)
    config = {**model_config(unet), "name": "deltaz_select", "radius": 1}
    ckpt.save_checkpoint(tmp_path / "mixed.pt", {"model": unet.state_dict(), "model_config": config, "config": {}})
    with pytest.raises(DataError, match=r"mixed\.pt: not a DeltaZ refiner checkpoint \(its weights do not fit"):
        load_refiner(tmp_path / "mixed.pt")


def _save_select(path: Path) -> Path:
    """A tiny selection checkpoint with image input whose selection moves depth (gain 1, random logits)."""
    torch.manual_seed(3)
    model = build_model("deltaz_select", in_channels=4, base_channel=4, depth=2, radius=2, depth_scale_mm=20.0)
    with torch.no_grad():
        torch.nn.init.normal_(model.head.weight, std=0.05)
        model.head.bias[1] = 1.0  # gain
        model.colour_log_scale.fill_(-2.0)  # a small colour weight: the image steers it only a little
    ckpt.save_checkpoint(path, {"model": model.state_dict(), "model_config": model_config(model), "config": {}})
    return path


def test_colour_scale_dial_of_a_selection_model(ckpts, tmp_path, capsys):
    """--colour-scale K multiplies a selection model's colour weight for that call only: a larger K moves less
    depth; the CLI writes what refine_depth returns; models without a colour weight refuse K != 1 in one line."""
    from deltaz.model import colour_scaled

    select = _save_select(tmp_path / "select.pt")
    depth, image = _depth(), _image()
    moved = {k: np.abs(refine_depth(depth, image, select, colour_scale=k) - depth).mean() for k in (0.25, 1.0, 16.0)}
    assert moved[0.25] > moved[1.0] > moved[16.0]
    model = load_model(select)
    trained = model.colour_log_scale.detach().item()
    with colour_scaled(model, 4.0):
        assert abs(model.colour_log_scale.detach().item() - trained - np.log(4.0)) < 1e-6
    assert model.colour_log_scale.detach().item() == trained  # restored: the cached model is shared
    src, img, out = tmp_path / "d.npy", tmp_path / "i.png", tmp_path / "r.npy"
    np.save(src, depth)
    iio.imwrite(img, image)
    assert _cli("--depth", src, "--image", img, "--out", out, "--checkpoint", select, "--colour-scale", 16) == 0
    np.testing.assert_allclose(np.load(out), refine_depth(depth, image, select, colour_scale=16.0), atol=1e-4)
    assert "colour weight" in _bad(capsys, tmp_path, "--depth", src, "--image", img, "--out", tmp_path / "x.npy",
                                   "--checkpoint", ckpts["rgb"], "--colour-scale", 2, out=tmp_path / "x.npy")
    assert "--colour-scale" in _bad(capsys, tmp_path, "--depth", src, "--image", img, "--out", tmp_path / "x.npy",
                                    "--checkpoint", select, "--colour-scale", 0, out=tmp_path / "x.npy")
    with colour_scaled(load_model(ckpts["depth"]), 1.0):  # 1 = as trained: any model
        pass
