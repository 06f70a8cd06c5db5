"""deltaz adapt end to end on tiny scans (checkpoint, refined depths, report, resume after a kill), the
COLMAP importer, the Middlebury 2-view scan, and bad input in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from deltaz.core.errors import DataError
from deltaz.engine import checkpoint as ckpt
from deltaz.apps.cli import main
from tests._tiny_scans import make_dataset, make_scan
from _benchmarks import load_benchmark

pytestmark = pytest.mark.usefixtures("one_thread")
REPO = Path(__file__).resolve().parents[1]


def tiny_checkpoint(path: Path, data_root: Path) -> Path:
    """An untrained-but-not-identity tiny RGB refiner saved as a training checkpoint would be."""
    from deltaz.engine.config import TrainConfig
    from deltaz.model import build_model, model_config

    cfg = TrainConfig(data_root=str(data_root), val_split=0.0, use_images=True, base_channel=4, unet_depth=2,
                      depth_scale_rel=0.03).resolved()
    torch.manual_seed(0)
    model = build_model(cfg.model, **cfg.model_kwargs())
    torch.nn.init.normal_(model.head.weight, std=0.02)
    return ckpt.save_checkpoint(path, {"model": model.state_dict(), "config": cfg.to_dict(),
                                       "model_config": model_config(model), "epoch": 1, "step": 10})


@pytest.fixture()
def tiny(tmp_path):
    root = make_dataset(tmp_path / "ready", n_scans=1, n_views=3, H=32, W=40, images=True, initial=True)
    return {"root": root, "ck": tiny_checkpoint(tmp_path / "ck.pt", root), "out": tmp_path / "adapt"}


def _adapt_args(t, *extra: str) -> list[str]:
    return ["adapt", "--checkpoint", str(t["ck"]), "--data-root", str(t["root"]), "--out", str(t["out"]),
            "--minutes", "1", "--no-progress", *extra]


def test_adapt_end_to_end_writes_checkpoint_refined_and_report(tiny, capsys):
    from deltaz.engine.adapt.outputs import load_adapted_view
    from deltaz.engine.evaluate import load_refiner, run_evaluation
    from deltaz.engine.refine import load_model

    assert main(_adapt_args(tiny, "--max-steps", "3")) == 0
    out = tiny["out"]
    assert "covered MAE input" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    entry = report["scans"][0]
    assert entry["steps"] == 3 and len(entry["history"]) == 3 and entry["scores"]["deltaz+adapt"]["n_covered"] > 0
    assert "Loss curve" in (out / "report.md").read_text()
    refined = np.load(out / "scan1" / "refined" / "000.npy")
    assert refined.shape == (32, 40) and refined.dtype == np.float32 and np.isfinite(refined).all()
    assert "deltaz+adapt ungated" in entry["scores"] and report["config"]["gate"] is True
    view = load_adapted_view(out / "scan1", 0)
    assert view["depth_init"].shape == refined.shape and view["image"].shape == (3, 32, 40)
    model, config, _ = load_refiner(out / "checkpoints" / "scan1.pt")
    assert config["extra"]["adapt"]["steps"] == 3 and model.in_channels == 4
    load_model(out / "checkpoints" / "scan1.pt", device="cpu")  # deltaz refine --checkpoint reads it
    rows = run_evaluation(out / "checkpoints" / "scan1.pt", tiny["root"], "all", baselines="none", figures=False,
                          pointclouds=False, progress=False, num_src_views=2)["rows"]
    assert {r["method"] for r in rows} == {"identity", "deltaz", "deltaz+gate", "search", "search+deltaz"}
    assert not list(out.rglob(".*.tmp")) and not (out / "state" / "scan1.pt").exists()
    # a second run finds the scan done and skips it
    assert main(_adapt_args(tiny, "--max-steps", "3")) == 0
    assert "already adapted" in capsys.readouterr().err
    # ... but another checkpoint's or other settings' run into the same --out is refused, not mixed in
    assert main([*_adapt_args(tiny, "--max-steps", "3"), "--lr", "0.001"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0] and "other settings (lr)" in err[0]
    other = tiny["ck"].with_name("other.pt")
    other.write_bytes(tiny["ck"].read_bytes())
    argv = _adapt_args(tiny, "--max-steps", "3")
    argv[argv.index("--checkpoint") + 1] = str(other)
    assert main(argv) == 1 and "another checkpoint" in capsys.readouterr().err


def test_evaluate_adds_the_adapted_row(tiny):
    from deltaz.engine.evaluate import run_evaluation

    result = run_evaluation(tiny["ck"], tiny["root"], "all", baselines="none", figures=False, pointclouds=False,
                            progress=False, num_src_views=2, adapt_minutes=0.02, search=False)
    methods = [r["method"] for r in result["rows"] if r["scan"] == "all"]
    assert methods == ["identity", "deltaz", "deltaz+gate", "deltaz+adapt"] and result["settings"]["adapt_minutes"] == 0.02


@pytest.mark.parametrize("mode", ["nograd", "grad"])
def test_source_modes_step(tiny, mode):
    from deltaz.engine.adapt import AdaptConfig, adapt_scan, scan_confidence
    from deltaz.engine.evaluate import load_refiner, load_scan_views

    model, _, _ = load_refiner(tiny["ck"])
    views = load_scan_views(tiny["root"], "scan1", 2, use_images=True)
    conf = scan_confidence(tiny["root"], "scan1", views, "mvs", "agreement")
    adapted, info = adapt_scan(model, views, conf, AdaptConfig(max_steps=2, source_mode=mode, progress=False))
    assert info["steps"] == 2 and all(np.isfinite(r["total"]) for r in info["history"])
    changed = any(not torch.equal(a, b) for a, b in zip(adapted.state_dict().values(), model.state_dict().values()))
    assert changed  # a copy was adapted ...
    assert torch.equal(next(model.parameters()), load_refiner(tiny["ck"])[0].state_dict()["stem.0.weight"])  # ... not the original


def test_resume_after_kill_leaves_no_half_written_file(tiny):
    out = tiny["out"]
    cmd = [sys.executable, "-m", "deltaz", *_adapt_args(tiny, "--max-steps", "100000", "--max-passes", "0",
                                                        "--save-every", "0", "--threads", "1")]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "state" / "scan1.pt"
    deadline = time.time() + 60
    while not state.is_file() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert state.is_file()
    saved = ckpt.load_checkpoint(state)  # the state on disk is whole, never half-written
    done = int(saved["step"])
    assert done >= 1
    assert not (out / "scan1").exists() and not (out / "checkpoints" / "scan1.pt").exists()
    assert main(_adapt_args(tiny, "--max-steps", str(done + 2), "--max-passes", "0")) == 0  # resumes from the state
    entry = json.loads((out / "report.json").read_text())["scans"][0]
    assert entry["steps"] == done + 2 and entry["history"][0]["step"] == 1
    assert not list(out.rglob(".*.tmp")) and not state.exists()


def test_adapt_refuses_an_empty_data_root_and_out_equal_to_it(tiny, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["adapt", "--checkpoint", str(tiny["ck"]), "--data-root", str(empty), "--out", str(tmp_path / "o"),
                 "--no-progress"]) != 0
    assert "no train-ready scans" in capsys.readouterr().err
    assert main(["adapt", "--checkpoint", str(tiny["ck"]), "--data-root", str(tiny["root"]), "--out",
                 str(tiny["root"]), "--no-progress"]) != 0
    assert "is --data-root" in capsys.readouterr().err and not (tiny["root"] / "run.json").exists()


@pytest.mark.parametrize("args, needle", [
    (["--checkpoint", "missing.pt"], "missing.pt"),
    (["--scans", "scan9"], "scan9"),
    (["--minutes", "-1"], "minutes"),
    (["--max-passes", "-1"], "max_passes"),
    (["--preset", "bogus"], "preset"),
    (["--blend", "2"], "blend"),
])
def test_bad_input_one_clear_line(tiny, capsys, args, needle):
    argv = _adapt_args(tiny)
    for flag, value in zip(args[::2], args[1::2]):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deltaz adapt: error:") and needle in err[0]


def test_scan_without_images_is_refused(tmp_path, capsys):
    root = make_dataset(tmp_path / "ready", n_scans=1, n_views=3, initial=True)
    ck = tiny_checkpoint(tmp_path / "ck.pt", root)
    assert main(["adapt", "--checkpoint", str(ck), "--data-root", str(root), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "images" in err[0]


# ----------------------------------------------------------------------------- COLMAP importer
def _quat(R: np.ndarray) -> np.ndarray:
    """Rotation matrix → Hamilton quaternion (qw, qx, qy, qz), by the largest of the four (Shepperd)."""
    t = np.trace(R)
    cands = [1 + t, 1 + 2 * R[0, 0] - t, 1 + 2 * R[1, 1] - t, 1 + 2 * R[2, 2] - t]
    k = int(np.argmax(cands))
    s = np.sqrt(cands[k]) * 2  # 4 × the largest component
    if k == 0:
        q = [s / 4, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    elif k == 1:
        q = [(R[2, 1] - R[1, 2]) / s, s / 4, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s]
    elif k == 2:
        q = [(R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, s / 4, (R[1, 2] + R[2, 1]) / s]
    else:
        q = [(R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, s / 4]
    return np.array(q)


def _colmap_model(tmp_path: Path, camera_line: str) -> tuple[Path, Path, Path, Path]:
    """A tiny COLMAP text model of a tiny scan: cameras.txt, images.txt, images/, depths/ (.npy)."""
    import imageio.v3 as iio

    from deltaz.io.dtu.layout import load_view

    scan = make_scan(tmp_path / "src", "scan1", n_views=3, H=32, W=40, images=True)
    model, images, depths = tmp_path / "sparse", tmp_path / "images", tmp_path / "depths"
    for d in (model, images, depths):
        d.mkdir()
    (model / "cameras.txt").write_text("# Camera list\n" + camera_line + "\n")
    lines = ["# Image list with two lines of data per image:"]
    for vid in range(3):
        view = load_view(scan, vid)
        R, t = view["extrinsics"][:, :3].astype(np.float64), view["extrinsics"][:, 3]
        q = _quat(R)
        lines += [f"{vid + 1} {' '.join(f'{v:.10f}' for v in q)} {' '.join(f'{v:.6f}' for v in t)} 1 view{vid}.png",
                  "10.0 12.0 -1"]
        iio.imwrite(images / f"view{vid}.png", (view["image"].transpose(1, 2, 0) * 255).round().astype(np.uint8))
        np.save(depths / f"view{vid}.npy", view["depth"])
    (model / "images.txt").write_text("\n".join(lines) + "\n")
    return scan, images, model, depths


def test_import_colmap_round_trip(tmp_path, capsys):
    from deltaz.io.dtu.layout import load_view, read_scan_pairs

    K = np.array([[90.4, 0, 20.7], [0, 90.1, 16.6], [0, 0, 1]])  # tiny scan's K at 40x32
    line = f"1 PINHOLE 40 32 {K[0, 0]} {K[1, 1]} {K[0, 2] + 0.5} {K[1, 2] + 0.5}"  # COLMAP: pixel centre at 0.5
    scan, images, model, depths = _colmap_model(tmp_path, line)
    assert main(["import-colmap", "--images", str(images), "--model", str(model), "--depth", str(depths),
                 "--out", str(tmp_path / "ready")]) == 0
    for vid in range(3):
        src, got = load_view(scan, vid), load_view(tmp_path / "ready" / "scan1", vid)
        np.testing.assert_allclose(got["intrinsics"], src["intrinsics"], atol=1e-4)
        np.testing.assert_allclose(got["extrinsics"], src["extrinsics"], atol=1e-4)
        np.testing.assert_array_equal(got["initial"], src["depth"])
        assert (got["depth"] == 0).all() and np.abs(got["image"] - src["image"]).max() < 1e-6
    pairs = read_scan_pairs(tmp_path / "ready" / "scan1")
    assert pairs[0][0][0] == 1  # the neighbouring camera first


def test_import_colmap_models_and_bad_input(tmp_path, capsys):
    from deltaz.io.colmap import colmap_intrinsics

    with pytest.raises(DataError, match="SIMPLE_RADIAL camera with distortion"):  # as OPENCV's: undistort first
        colmap_intrinsics("SIMPLE_RADIAL", [100.0, 20.5, 16.5, 0.01])
    K, note = colmap_intrinsics("SIMPLE_RADIAL", [100.0, 20.5, 16.5, 0.01], ignore_distortion=True)
    assert K[0, 0] == K[1, 1] == 100.0 and K[0, 2] == 20.0 and "ignored" in note
    assert colmap_intrinsics("SIMPLE_RADIAL", [100.0, 20.5, 16.5, 0.0])[1] is None
    scan, images, model, depths = _colmap_model(tmp_path, "1 OPENCV 40 32 90 90 21 17 0.1 0 0 0")
    argv = ["import-colmap", "--images", str(images), "--model", str(model), "--depth", str(depths),
            "--out", str(tmp_path / "ready")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "distortion" in err[0]
    assert main(argv + ["--ignore-distortion"]) == 0
    assert "ignored" in capsys.readouterr().err
    (depths / "view1.npy").unlink()
    assert main(argv + ["--ignore-distortion", "--scan", "scan2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "view1.png" in err[0] and str(depths) in err[0]
    (model / "cameras.txt").write_text("1 FISHEYE 40 32 1 2 3\n")
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cameras.txt" in err[0] and "FISHEYE" in err[0]


# ----------------------------------------------------------------------------- Middlebury 2-view scan
def test_middlebury_scan_two_views_sgbm_input(tmp_path):
    from deltaz.io.dtu.layout import load_view, read_meta, read_scan_pairs
    from deltaz.core.geometry import reproject, sample_pixels
    from deltaz.io.middlebury_scan import write_motorcycle_scan

    try:
        scan = write_motorcycle_scan(tmp_path, size=(50, 74))
    except DataError as error:  # the skimage download may be unavailable offline (load_motorcycle's one line)
        pytest.skip(f"Middlebury data unavailable: {error}")
    left, right = load_view(scan, 0), load_view(scan, 1)
    assert (left["depth"] > 0).any() and (right["depth"] == 0).all()
    assert (left["initial"] > 0).mean() > 0.7 and (right["initial"] > 0).mean() > 0.7
    assert read_scan_pairs(scan) == {0: [(1, 1.0)], 1: [(0, 1.0)]}
    # the depth range (the refiner's normalisation during adaptation) is the inputs' own, never the ground truth's
    inputs = np.concatenate([v["initial"][v["initial"] > 0] for v in (left, right)])
    assert read_meta(scan)["depth_range_mm"] == pytest.approx([inputs.min() * 0.95, inputs.max() * 1.05], rel=1e-6)
    # the right view's SGBM agrees with the left ground truth seen from the right camera
    t = {k: torch.tensor(v)[None] for k, v in (("d", left["depth"]), ("K0", left["intrinsics"]),
                                               ("E0", left["extrinsics"]), ("K1", right["intrinsics"]),
                                               ("E1", right["extrinsics"]), ("r", right["initial"]))}
    uv, z, valid = reproject(t["d"], t["K0"], t["E0"], t["K1"], t["E1"])
    sampled = sample_pixels(t["r"][:, None], uv, mode="nearest")[0, 0]
    both = valid[0] & (sampled > 0)
    assert float((z[0] - sampled).abs()[both].median()) < 0.02 * float(z[0][both].median())


def test_demo_adapt_stage_off_by_default_and_runs(tiny):
    from deltaz.engine.adapt import demo_adapt_stage

    assert demo_adapt_stage(tiny["ck"], tiny["root"], tiny["out"], 0) is None
    report = demo_adapt_stage(tiny["ck"], tiny["root"], tiny["out"], 0.01, progress=False)
    assert report["scans"][0]["scan"] == "scan1" and (tiny["out"] / "report.md").is_file()


def test_report_curve_averages_windows_of_steps():
    from deltaz.engine.adapt.outputs import _curve

    history = [{"step": i + 1, "t_s": 0.5 * (i + 1), "total": float(i % 2), "anchor": 2.0} for i in range(48)]
    rows = _curve(history, points=8)
    assert len(rows) == 8 and rows[-1]["step"] == 48 and rows[-1]["t_s"] == 24.0
    assert all(r["total"] == 0.5 and r["anchor"] == 2.0 for r in rows)  # alternating views average out
    assert [r["step"] for r in _curve(history[:3])] == [1, 2, 3] and _curve([]) == []


def test_gate_hands_out_the_input_or_the_adapted_depth(tiny):
    from deltaz.engine.adapt import gate_adapted, refine_all
    from deltaz.engine.evaluate import load_refiner, load_scan_views

    model, _, _ = load_refiner(tiny["ck"])
    views = load_scan_views(tiny["root"], "scan1", 2, use_images=True)
    raw = refine_all(model, views, True, "cpu")
    out = gate_adapted(views, raw)
    init = views.depth_init
    assert out.shape == raw.shape and ((out == raw) | (out == init)).all()
    assert torch.equal(gate_adapted(views, raw, gate=False), raw)
    stood = (out == raw) & (raw != init)
    reverted = (out == init) & (raw != init)
    assert reverted.any() and stood.any()  # the random refiner's corrections are judged pixel by pixel


def test_bench_adapt_scores_every_row_and_checks_the_target(tiny, tmp_path, capsys):
    """benchmarks/bench_adapt.py on a tiny scan for one step: every row scored, the target line printed."""
    bench = load_benchmark("bench_adapt")
    out = tmp_path / "bench.json"
    assert bench.main(["--checkpoint", str(tiny["ck"]), "--synth-root", str(tiny["root"]), "--cases", "nogap",
                       "--threads", "1", "--config", '{"max_steps": 1}', "--json", str(out)]) == 0
    pooled = json.loads(out.read_text())["nogap"]["pooled"]
    assert set(pooled) == set(bench.METHODS) and pooled["input"]["harm_pct"] == 0.0
    assert "target nogap" in capsys.readouterr().out


def test_passes_cap_the_steps_and_cosine_decays_the_rate(tiny):
    from deltaz.engine.adapt import AdaptConfig, adapt_scan, scan_confidence, step_limit
    from deltaz.engine.adapt.fit import _lr
    from deltaz.engine.evaluate import load_refiner, load_scan_views

    assert step_limit(AdaptConfig(max_passes=2.0, batch_size=2), 49) == 50  # 2 passes of 25 steps (49 views, 2 a step)
    assert step_limit(AdaptConfig(max_passes=1.5, batch_size=2), 2) == 2
    assert step_limit(AdaptConfig(max_passes=2.0, max_steps=10), 49) == 10
    assert step_limit(AdaptConfig(max_passes=None), 49) is None
    cosine = AdaptConfig(lr=1e-3, lr_schedule="cosine", minutes=1.0)
    rates = [_lr(cosine, 0.0, step, 10) for step in range(11)]
    assert rates[0] == pytest.approx(1e-3) and rates[5] == pytest.approx(5e-4) and rates[10] == pytest.approx(0.0)
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert _lr(cosine, 45.0, 0, None) == pytest.approx(5e-4 * (1 + np.cos(0.75 * np.pi)))  # time used: 3/4
    assert _lr(AdaptConfig(lr=1e-3), 45.0, 9, 10) == 1e-3

    model, _, _ = load_refiner(tiny["ck"])
    views = load_scan_views(tiny["root"], "scan1", 2, use_images=True)
    conf = scan_confidence(tiny["root"], "scan1", views, "mvs", "agreement")
    _, info = adapt_scan(model, views, conf, AdaptConfig(max_passes=2.0, lr_schedule="cosine", progress=False))
    assert info["steps"] == 4 and info["stopped_by"] == "max_passes"  # 3 views, 2 a step: 2 steps a pass


def test_anchor_to_the_unadapted_output_starts_at_zero(tiny):
    """anchor_to="unadapted": the anchor pulls towards the base refiner's own depths (weight 1), so at the first
    step (the copy is still the base) the term is exactly 0; towards the input it is not, since the refiner moves
    the input."""
    from deltaz.engine.adapt import AdaptConfig, adapt_scan, refine_all, scan_confidence, scan_inputs
    from deltaz.engine.evaluate import load_refiner, load_scan_views

    model, _, _ = load_refiner(tiny["ck"])
    views = load_scan_views(tiny["root"], "scan1", 2, use_images=True)
    conf = scan_confidence(tiny["root"], "scan1", views, "mvs", "agreement")
    first = {}
    for target in ("input", "unadapted"):
        _, info = adapt_scan(model, views, conf, AdaptConfig(max_steps=2, anchor_to=target, progress=False))
        first[target] = info["history"][0]["anchor"]
    assert first["unadapted"] == 0.0 and first["input"] > 0
    unadapted = refine_all(model, views, True, "cpu")
    x = scan_inputs(views, [1], conf, unadapted)
    assert torch.equal(x.depth_init, unadapted[[1]]) and torch.equal(scan_inputs(views, [1], conf).depth_init,
                                                                       views.depth_init[[1]])


def test_blend_mixes_the_two_corrections_and_its_checkpoint_round_trips(tiny, tmp_path):
    """blend A: refined = (1 − A)·unadapted + A·adapted; the checkpoint holds both networks and reads back the same;
    a malformed blend is refused naming the file; a blended checkpoint is not adapted again."""
    from deltaz.core.errors import ConfigError, DataError
    from deltaz.engine.adapt import AdaptConfig, adapt_scan, refine_all, scan_confidence
    from deltaz.engine.adapt.outputs import write_adapted_checkpoint
    from deltaz.engine.evaluate import load_refiner, load_scan_views
    from deltaz.engine.refine import load_model
    from deltaz.model.blend import BlendedRefiner

    model, _, _ = load_refiner(tiny["ck"])
    views = load_scan_views(tiny["root"], "scan1", 2, use_images=True)
    conf = scan_confidence(tiny["root"], "scan1", views, "mvs", "agreement")
    plain, _ = adapt_scan(model, views, conf, AdaptConfig(max_steps=3, lr=1e-2, progress=False))
    assert not isinstance(plain, BlendedRefiner)  # blend 1 (AdaptConfig(blend=1.0)): one network
    mixed, _ = adapt_scan(model, views, conf, AdaptConfig(max_steps=3, lr=1e-2, blend=0.25, progress=False))
    assert isinstance(mixed, BlendedRefiner) and mixed.alpha == 0.25
    before, adapted, out = (refine_all(m, views, True, "cpu") for m in (model, mixed.adapted, mixed))
    assert (adapted - before).abs().max() > 0.05  # the adaptation moved something
    assert torch.allclose(out, 0.75 * before + 0.25 * adapted, atol=1e-3)
    path = write_adapted_checkpoint(tmp_path / "blend.pt", mixed, ckpt.load_checkpoint(tiny["ck"]), {"steps": 3})
    loaded, _, _ = load_refiner(path)
    assert isinstance(loaded, BlendedRefiner) and torch.allclose(refine_all(loaded, views, True, "cpu"), out, atol=1e-4)
    assert isinstance(load_model(path, device="cpu"), BlendedRefiner)  # deltaz refine --checkpoint reads it too
    state = ckpt.load_checkpoint(path)
    state["blend"]["alpha"] = 1.5
    ckpt.save_checkpoint(tmp_path / "bad.pt", state)
    with pytest.raises(DataError, match="bad.pt.*blend"):
        load_refiner(tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="already adapted"):
        adapt_scan(loaded, views, conf, AdaptConfig(max_steps=1, progress=False))


def test_colour_scale_reaches_both_networks_of_a_blend():
    """--colour-scale on a blended checkpoint scales (and restores) the colour weight of both selection networks."""
    import math

    from deltaz.engine.refine import colour_scaled_parts
    from deltaz.model import build_model
    from deltaz.model.blend import BlendedRefiner

    torch.manual_seed(0)
    nets = [build_model("deltaz_select", in_channels=4, base_channel=4, depth=2) for _ in range(2)]
    blend = BlendedRefiner(nets[0], nets[1], 0.5)
    before = [p.colour_log_scale.item() for p in (blend.base, blend.adapted)]
    with colour_scaled_parts(blend, 3.0):
        inside = [p.colour_log_scale.item() for p in (blend.base, blend.adapted)]
    assert inside == pytest.approx([b + math.log(3.0) for b in before])
    assert [p.colour_log_scale.item() for p in (blend.base, blend.adapted)] == before


@pytest.mark.parametrize("field, value", [("max_passes", 0.0), ("lr_schedule", "step"), ("anchor_to", "gt"),
                                          ("blend", 1.5), ("blend", -0.1), ("gate_against", "truth")])
def test_bad_schedule_settings_are_refused(field, value):
    from deltaz.core.errors import ConfigError
    from deltaz.engine.adapt import AdaptConfig

    with pytest.raises(ConfigError, match=field):
        AdaptConfig(**{field: value})
