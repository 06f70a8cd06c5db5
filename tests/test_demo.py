"""``deltaz demo`` end to end on tiny settings: files, schema, reuse on a second run, quality targets."""

from __future__ import annotations

import json
import os

import pytest

from deltaz.apps.cli import main as cli_main
from deltaz.apps.demo import DemoSettings, quality_targets, split_demo_scans
from deltaz.core.errors import ConfigError
from deltaz.engine.report import HARM_COLUMNS, METRIC_COLUMNS


pytestmark = pytest.mark.usefixtures("one_thread")


TINY = ["--minutes", "0.1", "--max-steps", "2", "--scans", "3", "--test-scans", "1", "--val-scans", "1",
        "--views", "4", "--image-size", "32x40", "--resolution", "32x40", "--base-channel", "4",
        "--unet-depth", "2", "--no-progress", "--device", "cpu"]


def test_demo_writes_report_and_metrics_then_reuses(tmp_path, capsys):
    out, data = tmp_path / "run", tmp_path / "data"
    args = ["demo", "--out", str(out), "--data", str(data), *TINY]
    assert cli_main(args) == 0
    first = capsys.readouterr().out
    assert "report:" in first and "wall times:" in first
    # the plane sweep ran on every scan (training mixes it in, evaluation scores it) and is cached there
    assert "[3/6] sweep: plane-sweep stereo" in first
    assert all((root / scan / "planesweep" / "settings.json").is_file()
               for root in (data / "train_ready", data / "test_ready") for scan in os.listdir(root))

    report = (out / "report.md").read_text()
    for text in ("# DeltaZ demo report", "| method | scan | mae_mm", "Quality targets", "## Machine", "torch",
                 "wall time", "tensorboard --logdir"):
        assert text in report
    metrics = json.loads((out / "metrics.json").read_text())
    methods = {r["method"] for r in metrics["rows"]}
    assert methods == {"identity", "median", "bilateral", "joint_bilateral", "guided", "geometric_averaging",
                       "mvsnet_refine", "deltaz", "deltaz+gate", "search", "search+deltaz"}
    assert all(all(k in r for k in ("method", "scan", *METRIC_COLUMNS, *HARM_COLUMNS)) for r in metrics["rows"])
    assert "harm_pct <= 5 %" in report and "mae_good_mm no higher than the input's" in report
    assert "image augment 1.0, image dropout 0.25," in report  # the recipe's image settings, in its Settings
    split = json.loads((data / "split.json").read_text())
    assert metrics["scans"] == split["test"] and len(split["test"]) == 1
    # the held-out scan is in neither training nor validation, and tuning used the validation scan only
    assert not set(metrics["scans"]) & set(metrics["train_scans"] + metrics["val_scans"])
    assert len(metrics["val_scans"]) == 1 and all(p["tuned_on"] == metrics["val_scans"]
                                                   for p in metrics["baseline_params"].values())
    checkpoint = out / "checkpoints"
    assert (checkpoint / "last.pt").is_file() and list((out / "logs").glob("events.out.tfevents.*"))
    baseline_net = out / "mvsnet_refine"  # the learned baseline: its own run folder, same pipeline
    assert (baseline_net / "checkpoints" / "last.pt").is_file() and (baseline_net / "train_summary.json").is_file()
    assert json.loads((baseline_net / "train_summary.json").read_text())["config"]["model"] == "mvsnet_refine"
    assert "mvsnet_refine" in report and "baseline network" in report
    assert all((out / p).is_file() for p in metrics["figures"])
    mtime = (checkpoint / "last.pt").stat().st_mtime_ns

    assert cli_main(args) == 0
    second = capsys.readouterr().out
    assert "synth: reusing" in second and "parse: reusing" in second and "train: reusing" in second
    assert "train mvsnet_refine (baseline): reusing" in second
    assert (checkpoint / "last.pt").stat().st_mtime_ns == mtime
    assert "| train | cached |" in (out / "report.md").read_text()
    assert "| sweep | cached |" in (out / "report.md").read_text()
    assert "evaluation: `planesweep_raw`" in (out / "report.md").read_text()
    assert "search+deltaz with the mirror agreement" in (out / "report.md").read_text()  # the default
    assert json.loads((out / "metrics.json").read_text())["settings"]["mirror_agreement"]
    assert not json.loads((out / "metrics.json").read_text())["settings"]["weighted_median"]

    # adaptation on the held-out scan: one more row; without the mirror agreement, said in the report; with the
    # weighted median, recorded in metrics.json
    assert cli_main([*args, "--adapt-minutes", "0.01", "--no-mirror-agreement", "--weighted-median"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "deltaz+adapt" in {r["method"] for r in metrics["rows"]} and "deltaz+adapt" in (out / "report.md").read_text()
    assert not metrics["settings"]["mirror_agreement"] and metrics["settings"]["weighted_median"]
    assert "without the mirror agreement" in (out / "report.md").read_text()
    assert "weighted median of the selection head's candidates" in (out / "report.md").read_text()


def test_a_finished_run_is_reused_only_with_the_same_split(tmp_path):
    """Another split (or rendering) of the scans retrains: an old checkpoint may have trained on the new held-out
    scans, and its config alone (the validation share, the seed) cannot tell."""
    from deltaz.apps.demo import _finished_run
    from deltaz.apps.demo_data import data_stamp
    from deltaz.core.cache import jsonable

    settings = DemoSettings(scans=12, test_scans=3, val_scans=2, seed=0)
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"x")
    config = {"lr": 0.001, "val_split": 2 / 9}
    summary = tmp_path / "train_summary.json"
    summary.write_text(json.dumps({"checkpoint": str(ckpt), "config": config, "data": jsonable(data_stamp(settings))}))
    assert _finished_run(summary, config, data_stamp(settings)) is not None
    other = DemoSettings(scans=13, test_scans=4, val_scans=2, seed=0)  # the same val_split, 2 / 9
    assert split_demo_scans(other)["test"] != split_demo_scans(settings)["test"]
    assert _finished_run(summary, config, data_stamp(other)) is None
    fewer_views = DemoSettings(scans=12, test_scans=3, val_scans=2, views=9)
    assert _finished_run(summary, config, data_stamp(fewer_views)) is None
    assert _finished_run(summary, {**config, "lr": 0.002}, data_stamp(settings)) is None


def test_split_is_seeded_and_disjoint():
    settings = DemoSettings(scans=12, test_scans=3, val_scans=2, seed=0)
    groups = split_demo_scans(settings)
    assert len(groups["test"]) == 3 and len(groups["train_val"]) == 9
    assert not set(groups["test"]) & set(groups["train_val"])
    assert split_demo_scans(settings) == groups
    assert split_demo_scans(DemoSettings(scans=12, test_scans=3, seed=1))["test"] != groups["test"]
    with pytest.raises(ConfigError, match="--scans"):
        DemoSettings(scans=3, test_scans=2, val_scans=1).validate()


def test_loader_workers_and_amp_reach_the_training_config(tmp_path):
    from deltaz.apps.demo import train_config

    from deltaz.engine.config import demo_train_config

    settings = DemoSettings(num_workers=3, train=demo_train_config(amp=True))  # the training recipe is a TrainConfig
    config = train_config(settings, tmp_path / "data", tmp_path / "run", "cpu")
    assert config.num_workers == 3 and config.amp is True
    assert train_config(DemoSettings(), tmp_path, tmp_path, "cpu").num_workers == 0
    baseline = train_config(DemoSettings(), tmp_path, tmp_path / "run", "cpu", "mvsnet_refine")
    assert baseline.model == "mvsnet_refine" and baseline.base_channel == 32
    assert baseline.max_minutes == DemoSettings().minutes  # the same budget as the refiner by default
    assert config.whole_cycles and not baseline.whole_cycles  # ... which the baseline uses whole
    # the refiner stops after one learning-rate cycle however fast the machine; the baseline is not capped
    assert config.num_epochs == config.scheduler_t0 == 10 and baseline.num_epochs == demo_train_config().num_epochs
    assert train_config(DemoSettings(cycles=3), tmp_path, tmp_path, "cpu").num_epochs == 30
    with pytest.raises(ConfigError, match="--cycles"):
        DemoSettings(cycles=0).validate()
    shorter = train_config(DemoSettings(compare_minutes=1.5), tmp_path, tmp_path, "cpu", "mvsnet_refine")
    assert shorter.max_minutes == 1.5
    assert baseline.checkpoint_dir == str(tmp_path / "run" / "mvsnet_refine" / "checkpoints")
    select = DemoSettings(train=demo_train_config(model="deltaz_select"))
    assert train_config(select, tmp_path, tmp_path / "run", "cpu").model == "deltaz_select"
    assert train_config(select, tmp_path, tmp_path / "run", "cpu").checkpoint_dir == str(tmp_path / "run" / "checkpoints")
    assert train_config(select, tmp_path, tmp_path / "run", "cpu", "mvsnet_refine").model == "mvsnet_refine"
    with pytest.raises(ConfigError, match="--compare-minutes"):
        DemoSettings(compare_minutes=-1).validate()
    with pytest.raises(ConfigError, match="--num-workers"):
        DemoSettings(num_workers=-1).validate()
    with pytest.raises(ConfigError, match="--adapt-minutes"):
        DemoSettings(adapt_minutes=-1).validate()


def test_quality_targets():
    def row(method, mae, consistency):
        return {"method": method, "scan": "all", "mae_mm": mae, "consistency": consistency}

    rows = [row("identity", 10.0, 50.0), row("median", 6.0, 55.0), row("guided", 5.0, 52.0),
            row("geometric_averaging", 8.0, 60.0), row("deltaz", 3.9, 70.0),
            {**row("deltaz", 99.0, 0.0), "scan": "scan1"}]
    targets = quality_targets(rows)
    assert [t["met"] for t in targets] == [True, True, True, True]
    rows[4] = row("deltaz", 4.5, 40.0)  # not 20 % below guided (5.0), less consistent than the input
    assert [t["met"] for t in quality_targets(rows)] == [True, False, True, False]
    # with the do-no-harm figures: harm_pct <= 5 %, mae_good_mm no higher than the input's
    rows[0].update(mae_good_mm=0.9, harm_pct=0.0)
    rows[4].update(mae_good_mm=0.8, harm_pct=4.0)
    assert [t["met"] for t in quality_targets(rows)][4:] == [True, True]
    rows[4].update(mae_good_mm=1.2, harm_pct=6.0)
    assert [t["met"] for t in quality_targets(rows)][4:] == [False, False]
    # the gated row gets the same two do-no-harm targets, measured on its own figures
    rows.append({**row("deltaz+gate", 4.4, 45.0), "mae_good_mm": 0.9, "harm_pct": 1.0})
    gated = [t for t in quality_targets(rows) if t["target"].startswith("deltaz+gate")]
    assert [t["met"] for t in gated] == [True, True] and "1.0 %" in gated[0]["value"]
    # the refiner after the multi-view search: below the search alone, 20 % below the best filter, no harm
    rows.append({**row("search", 4.2, 45.0), "mae_good_mm": 1.5, "harm_pct": 3.0})
    rows.append({**row("search+deltaz", 3.9, 45.0), "mae_good_mm": 0.9, "harm_pct": 6.0})
    searched = [t for t in quality_targets(rows) if t["target"].startswith("search+deltaz")]
    assert [t["met"] for t in searched] == [True, True, False, True]
    assert "3.90 vs 0.8 x 5.00 (guided)" in searched[1]["value"]
    # consistency on the same pixels when the rows have it: the refiner filled holes (40 % over its own pixels,
    # the input 50 %) but agrees better where the input has depth
    rows[0]["consistency_valid"], rows[4]["consistency_valid"] = 50.0, 55.0
    consistency = next(t for t in quality_targets(rows) if t["target"].startswith("refined consistency"))
    assert consistency["met"] and "55.0 % vs 50.0 %" in consistency["value"]
    assert "40.0 % vs 50.0 %" in consistency["value"]  # each row's own pixels, beside
    rows[4]["consistency_valid"] = 45.0
    assert not next(t for t in quality_targets(rows) if t["target"].startswith("refined consistency"))["met"]


def test_model_flag_reaches_the_recipe():
    import argparse

    from deltaz.apps.demo import add_arguments, settings_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert settings_from_args(parser.parse_args([])).train.model == "deltaz_select"
    assert settings_from_args(parser.parse_args(["--model", "deltaz_unet"])).train.model == "deltaz_unet"
    assert settings_from_args(parser.parse_args([])).train.image_dropout == 0.25
    assert settings_from_args(parser.parse_args(["--image-dropout", "0"])).train.image_dropout == 0.0
    assert settings_from_args(parser.parse_args([])).mirror_agreement
    assert not settings_from_args(parser.parse_args(["--no-mirror-agreement"])).mirror_agreement
    assert not settings_from_args(parser.parse_args([])).weighted_median
    assert settings_from_args(parser.parse_args(["--weighted-median"])).weighted_median
    assert settings_from_args(parser.parse_args([])).cycles == 1
    assert settings_from_args(parser.parse_args(["--cycles", "2"])).cycles == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["--model", "mvsnet_refine"])  # the baseline is trained beside the refiner, not instead
