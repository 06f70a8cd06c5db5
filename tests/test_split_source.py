"""Synthetic scans are marked as such, so ``split="auto"`` applies MVSNet's lists only to real DTU."""

from __future__ import annotations

import json
import shutil

import pytest

from deltaz.apps.cli import main as cli_main
from deltaz.data.splits import resolve_split, split_scans
from deltaz.io.dtu.layout import is_complete_scan, list_scans, read_meta
from deltaz.io.dtu.parse import parse_dtu
from deltaz.io.synthetic import generate_dataset


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """Two tiny synthetic scans in MVSNet's layout and their parse at 32x40."""
    base = tmp_path_factory.mktemp("split_source")
    raw = generate_dataset(base / "raw", n_scans=2, n_views=3, n_lights=1, width=40, height=32,
                           progress=False, style="classic", workers=1)
    summary = parse_dtu(raw, base / "scans", resolution=(32, 40), progress=False)
    assert summary.ok, str(summary)
    return raw, base / "scans"


def test_a_synthetic_scan_parses_as_synthetic(synth):
    _, scans = synth
    assert list_scans(scans) == ["scan1", "scan2"]
    meta = read_meta(scans / "scan1")
    assert meta["source"] == "synthetic" and meta["version"] == 2


def test_a_folder_without_the_generator_marker_stays_real_dtu(synth, tmp_path):
    raw, _ = synth
    copy = tmp_path / "dtu_training"
    shutil.copytree(raw, copy, ignore=shutil.ignore_patterns("synth.json"))
    assert parse_dtu(copy, tmp_path / "scans", scans=[1], resolution=(32, 40), progress=False).ok
    assert read_meta(tmp_path / "scans" / "scan1")["source"] == "dtu"


def test_a_version_1_parse_of_synthetic_scans_is_redone(synth, tmp_path):
    raw, scans = synth
    old = tmp_path / "scans"
    shutil.copytree(scans, old)
    meta_path = old / "scan1" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "source": "dtu", "version": 1}))
    assert not is_complete_scan(old / "scan1") and list_scans(old) == ["scan2"]
    summary = parse_dtu(raw, old, resolution=(32, 40), progress=False)
    assert summary.written == ["scan1"] and summary.skipped == ["scan2"]
    assert read_meta(old / "scan1")["source"] == "synthetic"


def test_auto_split_of_synthetic_scans_is_random():
    scans = [f"scan{i}" for i in range(1, 9)]
    mode, reason = resolve_split("auto", ["synthetic"] * 8)
    assert mode == "random" and "synthetic" in reason
    assert split_scans(scans, 0.25, seed=0, split="auto", sources=["synthetic"] * 8) == \
        split_scans(scans, 0.25, seed=0, split="random")
    train, val = split_scans(scans, 0.25, split="auto", sources=["synthetic"] * 8)
    assert len(train) == 6 and len(val) == 2  # all 8 scans used (MVSNet's lists would keep 4 + 2)


def test_the_mvsnet_reason_says_when_val_split_has_no_effect():
    mode, reason = resolve_split("auto", ["dtu"] * 3, val_split=0.3)
    assert mode == "mvsnet" and "every scan is real DTU" in reason and "--val-split 0.3 has no effect" in reason
    assert "no effect" not in resolve_split("auto", ["dtu"])[1]


def test_train_on_two_synthetic_scans_with_default_split(synth, tmp_path, capsys):
    _, scans = synth
    assert split_scans(["scan1", "scan2"], 0.1, sources=["synthetic"] * 2)[1] != []  # 1 train, 1 val
    args = ["train", "--data-root", str(scans), "--num-epochs", "1", "--max-steps", "2", "--batch-size", "2",
            "--base-channel", "4", "--unet-depth", "2", "--checkpoint-dir", str(tmp_path / "ck"),
            "--log-dir", str(tmp_path / "logs"), "--no-progress"]
    assert cli_main(args) == 0, capsys.readouterr().err
    assert "validation MAE: initial" in capsys.readouterr().out
