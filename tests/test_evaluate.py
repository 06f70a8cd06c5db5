"""``deltaz evaluate``: rows and files, split recovery, validation-only baseline tuning, CLI."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import deltaz.engine.evaluate as ev
from _tiny_scans import make_dataset, make_scan
from deltaz.ops.baselines import PARAM_GRIDS
from deltaz.ops.dead_zone import DEAD_ZONE
from deltaz.apps.cli import main as cli_main
from deltaz.engine.config import TrainConfig
from deltaz.core.errors import ConfigError, DataError
from deltaz.ops.metrics import depth_metrics
from deltaz.engine.report import HARM_COLUMNS, METRIC_COLUMNS
from deltaz.engine.train import train

REQUIRED_KEYS = ("method", "scan", *METRIC_COLUMNS, *HARM_COLUMNS)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """3 tiny scans (train 2 / val 1 by the data module's seeded split), a 4th held-out root, and
    DeltaZUnet, SelectUnet and MVSNetRefine checkpoints trained for 2 steps."""
    base = tmp_path_factory.mktemp("evaluate")
    root = make_dataset(base / "train_ready", n_scans=3, n_views=4, images=True, initial=True)
    for path in root.glob("scan*/initial/*.npy"):  # a block of holes in every initial depth
        initial = np.load(path)
        initial[10:14, 8:16] = 0
        np.save(path, initial)
    test_root = base / "test_ready"
    make_scan(test_root, "scan9", n_views=4, seed=9, images=True, initial=True)
    checkpoints = {}
    for model in ("deltaz_unet", "deltaz_select", "mvsnet_refine"):
        cfg = TrainConfig(
            data_root=str(root), batch_size=2, num_views=2, val_split=0.34, max_steps=2, base_channel=4,
            unet_depth=2, model=model, use_images=model != "deltaz_unet", device="cpu",
            checkpoint_dir=str(base / model / "ckpt"), log_dir=str(base / model / "logs"),
            progress=False, image_log_every=0,
        )
        checkpoints[model] = train(cfg)["last_checkpoint"]
    scans = ev.resolve_scans(root, "val", TrainConfig(data_root=str(root), val_split=0.34).to_dict())
    return {"root": root, "test_root": test_root, "ckpt": checkpoints["deltaz_unet"],
            "mvsnet": checkpoints["mvsnet_refine"], "select": checkpoints["deltaz_select"], "val": scans["val"],
            "train": scans["train"]}


def test_metrics_json_schema_rows_and_files(setup, tmp_path):
    out = tmp_path / "eval"
    rows = ev.evaluate(setup["ckpt"], setup["root"], split="val", out_dir=out, num_src_views=2,
                       compare_checkpoint=setup["mvsnet"], progress=False)
    data = json.loads((out / "metrics.json").read_text())
    assert data["rows"] == json.loads(json.dumps(rows).replace("NaN", "null"))
    methods = {"identity", "median", "bilateral", "joint_bilateral", "guided", "geometric_averaging",
               "mvsnet_refine", "deltaz", "deltaz+gate", "search", "search+deltaz"}
    assert {r["method"] for r in rows} == methods
    assert {r["scan"] for r in rows} == {"all", *setup["val"]}
    assert len(rows) == len(methods) * (1 + len(setup["val"]))
    for row in rows:
        assert all(key in row for key in REQUIRED_KEYS)
        for key in ("acc_1mm", "acc_2mm", "acc_4mm", "err_2mm", "err_4mm", "err_8mm", "delta_1_25", "consistency",
                    "consistency_valid"):
            assert 0.0 <= row[key] <= 100.0
        if row["method"] == "identity":  # its own pixels are the input's
            assert row["consistency_valid"] == pytest.approx(row["consistency"])
        assert row["mae_mm"] >= 0 and row["rmse_mm"] >= row["mae_mm"] - 1e-9
        assert math.isclose(row["acc_2mm"] + row["err_2mm"], 100.0, abs_tol=1e-6)
    # the chosen baseline parameters come from the grids, and are reported
    assert set(data["baseline_params"]) == {"median", "bilateral", "joint_bilateral", "guided", "geometric_averaging"}
    for name, info in data["baseline_params"].items():
        assert info["params"] in PARAM_GRIDS[name]
        assert info["tuned_on"] == setup["val"]
    md = (out / "metrics.md").read_text()
    assert "| method | scan | mae_mm |" in md and "Baseline parameters" in md and "kernel_size=" in md
    assert "| mae_good_mm | harm_pct |" in md
    identity = next(r for r in data["rows"] if r["method"] == "identity" and r["scan"] == "all")
    assert identity["harm_pct"] == 0.0 and 0.0 <= identity["mae_good_mm"] < 2.0
    assert all(0.0 <= r["harm_pct"] <= 100.0 for r in data["rows"])
    # figures, point clouds and a PLY
    assert data["figures"]
    assert all((out / p).is_file() and (out / p).read_bytes()[:4] == b"\x89PNG" for p in data["figures"])
    assert {r["method"] for r in data["pointclouds"]} >= {"identity", "deltaz"}
    assert all(r["overall_mm"] >= 0 for r in data["pointclouds"])
    assert data["ply"] and all((out / p).is_file() for p in data["ply"])


def test_identity_row_is_the_initial_depth(setup):
    rows = ev.evaluate(setup["ckpt"], setup["root"], split="val", baselines="none", num_src_views=2,
                       figures=False, pointclouds=False, progress=False, search=False)
    # the scans have images and sources: the refiner is also scored behind the photometric gate
    assert [r["method"] for r in rows if r["scan"] == "all"] == ["identity", "deltaz", "deltaz+gate"]
    views = [ev.load_scan_views(setup["root"], scan, 2) for scan in setup["val"]]
    init = torch.cat([v.depth_init.flatten() for v in views])
    gt = torch.cat([v.depth.flatten() for v in views])
    expected = depth_metrics(init, gt)
    identity = next(r for r in rows if r["method"] == "identity" and r["scan"] == "all")
    deltaz = next(r for r in rows if r["method"] == "deltaz" and r["scan"] == "all")
    # trained without fill_holes: the refiner keeps the input's holes, as in training
    assert identity["hole_pct"] > 0 and deltaz["hole_pct"] == pytest.approx(identity["hole_pct"])
    for key in ("mae_mm", "rmse_mm", "acc_1mm", "delta_1_25"):
        assert identity[key] == pytest.approx(expected[key])
    # consistency of the initial depth against the initial depths of its source views
    view = views[0]
    n_consistent, n_with_depth = ev.consistency_counts(view.depth_init, view)
    assert n_with_depth == int((view.depth_init > 0).sum())
    assert 0 < n_consistent <= n_with_depth
    # holes filled with a far depth: counted over every pixel of the map, or over the input's pixels only
    covered = view.depth_init > 0
    filled = torch.where(covered, view.depth_init, torch.full_like(view.depth_init, 10 * float(view.depth.max())))
    n_all = ev.consistency_counts(filled, view)
    n_cov = ev.consistency_counts(filled, view, covered=covered)
    assert n_all[1] == filled.numel() and n_cov[1] == n_with_depth
    assert n_all[0] / n_all[1] < n_cov[0] / n_cov[1]  # the filled pixels agree with nothing
    row = ev.MethodScores.of(filled, view).row("filled", view.scan)  # the row's two columns are those counts
    assert row["consistency"] == pytest.approx(100 * n_all[0] / n_all[1])
    assert row["consistency_valid"] == pytest.approx(100 * n_cov[0] / n_cov[1])
    # a map that drops input pixels is still scored on all of them: a dropped pixel counts as not consistent
    dropped = view.depth_init.clone()
    dropped[:, : dropped.shape[1] // 2] = 0
    assert ev.consistency_counts(dropped, view, covered=covered)[1] == n_with_depth


def test_evaluate_runs_the_refiner_once_for_the_deltaz_and_gated_rows(setup, monkeypatch):
    import deltaz.engine.evaluate.methods as methods

    real, calls = methods._refine_views, []
    monkeypatch.setattr(methods, "_refine_views", lambda *a, **k: calls.append(1) or real(*a, **k))
    counts = {}
    for sources in (0, 1):  # without sources there is no gated row
        calls.clear()
        rows = ev.evaluate(setup["ckpt"], setup["root"], split="val", baselines="none", num_src_views=sources,
                           search=False, figures=False, pointclouds=False, progress=False)
        counts[sources] = len(calls)
        assert ("deltaz+gate" in {r["method"] for r in rows}) == (sources == 1)
    assert counts[1] == counts[0] > 0


def test_the_gated_row_takes_each_pixel_from_the_input_or_the_refiner(setup):
    model, config, _ = ev.load_refiner(setup["ckpt"], "cpu")
    views = ev.load_scan_views(setup["root"], setup["val"][0], 2, use_images=True)
    refined = ev.apply_method(ev.model_method(model, "cpu"), views)
    gated = ev.apply_method(ev.gated_method(model, "cpu"), views)
    assert ((gated == refined) | (gated == views.depth_init)).all()
    without_images = ev.load_scan_views(setup["root"], setup["val"][0], 2)
    with pytest.raises(DataError, match="gate needs the scan's images"):
        ev.apply_method(ev.gated_method(model, "cpu"), without_images)
    # given the ungated row (remembered), the gate gates its very outputs: the refiner runs once for both rows
    calls = []

    def counted(views, idx):
        calls.append(tuple(idx))
        return ev.model_method(model, "cpu")(views, idx)

    ungated = ev.remembered(counted)
    assert torch.equal(ev.apply_method(ungated, views), refined)
    assert torch.equal(ev.apply_method(ev.gated_method(None, "cpu", refined=ungated), views), gated)
    assert len(calls) == len(set(calls)) > 0  # each batch once, for both rows
    no_gate = ev.evaluate(setup["ckpt"], setup["root"], split="val", baselines="none", num_src_views=0,
                          figures=False, pointclouds=False, progress=False)
    assert {r["method"] for r in no_gate} == {"identity", "deltaz"}  # no source views: no gate row


def test_the_search_rows_are_the_search_and_the_refiner_after_it(setup):
    from deltaz.model import refine
    from deltaz.ops.mvs import consensus_depth, planes_views, propagate_depth, subpixel_views

    model, config, _ = ev.load_refiner(setup["ckpt"], "cpu")
    views = ev.load_scan_views(setup["root"], setup["val"][0], 2, use_images=True)
    rows = ev.search_methods(model, "cpu")
    searched = ev.apply_method(rows["search"], views)
    every = range(len(views))
    batch = views.batch(every, images=True)
    agreed = consensus_depth(views.depth_init, batch.image[:, 0], batch.image[:, 1:], views.multiview(every),
                             fill_holes=True)
    assert torch.equal(ev.consensus_views(views), agreed)
    assert torch.equal(ev.consensus_views(views, batch_size=1), agreed)  # batches do not change it
    steps = (batch.image[:, 0], batch.image[:, 1:], views.multiview(every, agreed))
    expected = subpixel_views(planes_views(propagate_depth(agreed, *steps), *steps), *steps)
    assert torch.allclose(searched, expected)
    depth_range = views.depth_range.reshape(1, 2).expand(len(views), 2)
    with torch.no_grad():
        refined = refine(model, expected, image=None, depth_range=depth_range, keep_holes=True, dead_zone=DEAD_ZONE,
                         mirror_agreement=True, smooth=True)["depth_refined"]  # inference's dials
    refined = torch.where(torch.isfinite(refined) & (refined > 0), refined, torch.zeros_like(refined))
    assert torch.allclose(ev.apply_method(rows["search+deltaz"], views), refined, atol=1e-4)
    without_images = ev.load_scan_views(setup["root"], setup["val"][0], 2)
    with pytest.raises(DataError, match="search needs the scan's images"):
        ev.apply_method(rows["search"], without_images)
    # the rows' cache follows the views object, not the scan's name: another scan1 (another root) is searched anew
    shifted = dataclasses.replace(views, depth_init=torch.where(views.depth_init > 0, views.depth_init + 7.0,
                                                                views.depth_init))
    assert not torch.allclose(ev.apply_method(rows["search"], shifted), searched)


def test_the_mirror_agreement_reaches_the_gated_and_search_rows(setup):
    """A stand-in refiner whose correction depends on the column only (+10 mm on the left half, -10 on the right):
    with the mirror agreement every covered pixel keeps its input depth, in the gated and the search rows too."""

    class ByColumn(torch.nn.Module):
        in_channels = 1

        def forward(self, depth_init, image=None, depth_range=None):
            W = depth_init.shape[-1]
            side = torch.where(torch.arange(W) < W // 2, 10.0, -10.0)
            return side.expand(depth_init.shape[0], 1, *depth_init.shape[-2:]).clone()

    views = ev.load_scan_views(setup["root"], setup["val"][0], 2, use_images=True)
    covered = views.depth_init > 0
    for mirror in (False, True):
        rows = {"deltaz+gate": ev.gated_method(ByColumn(), "cpu", mirror_agreement=mirror, smooth=False),
                **ev.search_methods(ByColumn(), "cpu", mirror_agreement=mirror, smooth=False)}
        gated = ev.apply_method(rows["deltaz+gate"], views)
        searched, after = ev.apply_method(rows["search"], views), ev.apply_method(rows["search+deltaz"], views)
        kept = searched > 0
        assert torch.equal(gated[covered], views.depth_init[covered]) == mirror
        assert torch.equal(after[kept], searched[kept]) == mirror


def test_same_initial_depth_for_every_method_and_source(setup):
    """A view's initial depth is fixed per (scan, view): equal as a reference and as a source."""
    view = ev.load_scan_views(setup["root"], setup["val"][0], num_src_views=2)
    assert view.num_src == 2 and all(i not in srcs for i, srcs in enumerate(view.src_index))
    mv = view.multiview([0], view.depth_init)
    assert torch.equal(mv["depth_src"][0, 0], view.depth_init[view.src_index[0][0]])
    again = ev.load_scan_views(setup["root"], setup["val"][0], num_src_views=2)
    assert torch.equal(view.depth_init, again.depth_init)


def test_baselines_are_tuned_on_validation_scans_only(setup, tmp_path, monkeypatch):
    seen: list[str] = []
    real = ev.tuning.tune_baseline

    def recording(name, samples, grid=None):
        samples = list(samples)
        seen.extend(s["scene"] for s in samples)
        return real(name, samples, grid)

    monkeypatch.setattr(ev.tuning, "tune_baseline", recording)
    result = ev.run_evaluation(setup["ckpt"], setup["test_root"], split="test", out_dir=tmp_path,
                               baselines="median,geometric_averaging", num_src_views=2, figures=False,
                               pointclouds=False, progress=False)
    assert result["scans"] == ["scan9"]
    assert seen and set(seen) == set(setup["val"])
    assert not set(seen) & ({"scan9"} | set(setup["train"]))
    assert result["val_scans"] == setup["val"] and Path(result["tune_root"]) == setup["root"]
    assert {r["method"] for r in result["rows"]} == {"identity", "median", "geometric_averaging", "deltaz", "deltaz+gate",
                                                     "search", "search+deltaz"}


def test_split_resolution(setup):
    cfg = TrainConfig(data_root=str(setup["root"]), val_split=0.34).to_dict()
    scans = ev.resolve_scans(setup["root"], "all", cfg)
    assert scans["eval"] == ["scan1", "scan2", "scan3"]
    assert sorted(scans["train"] + scans["val"]) == ["scan1", "scan2", "scan3"] and len(scans["val"]) == 1
    assert ev.resolve_scans(setup["test_root"], "test", cfg)["eval"] == ["scan9"]
    assert ev.resolve_scans(setup["test_root"], "test", cfg)["note"] is None  # tuned on the training root's val
    assert scans["note"].startswith(f"the baselines are tuned on 1 of the evaluated scans ({scans['val'][0]})")
    # the checkpoint's root is gone: this root is split with its settings, and the note says so
    gone = TrainConfig(data_root=str(setup["root"] / "moved"), val_split=0.34).to_dict()
    assert "is missing" in ev.resolve_scans(setup["root"], "all", gone)["note"]
    with pytest.raises(DataError, match="--split test"):
        ev.resolve_scans(setup["root"], "test", cfg)  # every scan there was trained or validated on
    with pytest.raises(ConfigError, match="split"):
        ev.resolve_scans(setup["root"], "holdout", cfg)
    with pytest.raises(ConfigError, match="--baselines"):
        ev.evaluate(setup["ckpt"], setup["root"], baselines="median,sharpen", progress=False)


def test_cli_prints_the_table_and_writes_files(setup, tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli_main(["evaluate", "--checkpoint", str(Path(setup["ckpt"]).parent), "--data-root", str(setup["root"]),
                     "--split", "val", "--out", str(out), "--baselines", "median", "--num-src-views", "2",
                     "--no-figures", "--no-pointclouds", "--no-progress", "--device", "cpu"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "identity" in printed and "median" in printed and "deltaz" in printed and "metrics.md" in printed
    assert (out / "metrics.json").is_file() and (out / "metrics.md").is_file()
    settings = json.loads((out / "metrics.json").read_text())["settings"]
    assert settings["mirror_agreement"] is True and settings["smooth"] is True  # the defaults
    assert "with the mirror agreement, with the surface smoothing" in (out / "metrics.md").read_text()
    deltaz_row = {}
    for mirror in (False, True):  # the flags reach the rows (no dead zone: the 2-step model's moves are tiny)
        run_out = out / f"mirror{mirror}"
        assert cli_main(["evaluate", "--checkpoint", str(Path(setup["ckpt"]).parent), "--data-root", str(setup["root"]),
                         "--split", "val", "--out", str(run_out), "--baselines", "none", "--num-src-views", "0",
                         "--no-figures", "--no-pointclouds", "--no-progress", "--device", "cpu", "--dead-zone", "off",
                         "--mirror-agreement" if mirror else "--no-mirror-agreement"]) == 0
        metrics = json.loads((run_out / "metrics.json").read_text())
        assert metrics["settings"]["mirror_agreement"] is mirror
        assert ("- the checkpoint's rows: no dead zone, " + ("with" if mirror else "without") + " the mirror agreement"
                in (run_out / "metrics.md").read_text())
        deltaz_row[mirror] = next(r for r in metrics["rows"] if r["method"] == "deltaz" and r["scan"] == "all")
    assert deltaz_row[True]["mae_valid_mm"] != deltaz_row[False]["mae_valid_mm"]
    code = cli_main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--data-root", str(setup["root"]),
                     "--out", str(out)])
    assert code == 1 and "checkpoint not found" in capsys.readouterr().err


def test_selection_model_is_evaluated_like_the_unet(setup, tmp_path):
    """A deltaz_select checkpoint (with images) goes through the same evaluation: every row, finite scores."""
    rows = ev.evaluate(setup["select"], setup["root"], split="val", out_dir=tmp_path / "eval", num_src_views=2,
                       baselines="median", progress=False, figures=False, pointclouds=False)
    methods = {row["method"] for row in rows}
    assert {"identity", "median", "deltaz", "deltaz+gate"} <= methods
    deltaz = next(row for row in rows if row["method"] == "deltaz" and row["scan"] == "all")
    assert np.isfinite(deltaz["mae_valid_mm"]) and np.isfinite(deltaz["harm_pct"])


def test_colour_scale_scales_the_selection_refiners_rows_only(setup):
    """--colour-scale K reaches the refiner's rows (a larger colour weight keeps more of the input), leaves the
    input and the baselines alone, and is recorded in the settings."""
    def run(k):
        result = ev.run_evaluation(setup["select"], setup["root"], split="val", num_src_views=2, baselines="median",
                                   progress=False, figures=False, pointclouds=False, search=False, colour_scale=k,
                                   dead_zone=None)  # the 2-step model's corrections are tiny
        rows = {row["method"]: row for row in result["rows"] if row["scan"] == "all"}
        return rows, result["settings"]

    (plain, settings1), (bold, _), (careful, settings16) = run(1.0), run(0.01), run(100.0)
    assert settings1["colour_scale"] == 1.0 and settings16["colour_scale"] == 100.0
    for name in ("identity", "median"):
        assert careful[name]["mae_valid_mm"] == plain[name]["mae_valid_mm"]
    assert careful["deltaz"]["mae_valid_mm"] != bold["deltaz"]["mae_valid_mm"]
    assert careful["deltaz"]["harm_pct"] <= bold["deltaz"]["harm_pct"]


def test_colour_scale_is_refused_for_a_model_without_a_colour_weight_or_when_not_positive(setup, tmp_path, capsys):
    args = ["evaluate", "--data-root", str(setup["root"]), "--split", "val", "--out", str(tmp_path / "e"),
            "--baselines", "median", "--num-src-views", "2", "--no-figures", "--no-pointclouds", "--no-progress",
            "--device", "cpu"]
    assert cli_main([*args, "--checkpoint", str(setup["ckpt"]), "--colour-scale", "3"]) == 1
    assert "only a selection model" in capsys.readouterr().err
    assert cli_main([*args, "--checkpoint", str(setup["select"]), "--colour-scale", "0"]) == 1
    assert "--colour-scale): expected a positive number" in capsys.readouterr().err
