"""benchmarks/real_dtu_map.py: the real DTU depth map with simulated errors, median filter against the refiner."""

from __future__ import annotations

import json

import pytest

from _benchmarks import load_benchmark


@pytest.fixture(scope="module")
def script():
    return load_benchmark("real_dtu_map")


def test_rows_per_half_the_median_tuned_on_the_left_and_the_smoothing_alone(script, still_checkpoint, dtu_sample):
    gt = script.load_depth(dtu_sample)
    refiner, _ = script.bench.load_refiner_or_none(str(still_checkpoint), "cpu")
    table = script.run(refiner, gt, "noise", draws=2)
    assert set(table) == {"left", "right"} and all(set(rows) == set(script.ROWS) for rows in table.values())
    for rows in table.values():
        assert rows["deltaz (no smoothing)"] == pytest.approx(rows["identity"])  # Δz = 0: the input itself
        assert rows["deltaz (no smoothing)"][2] == 0.0
        assert rows["deltaz"][0] < 0.9 * rows["identity"][0]  # 2 mm noise on real surfaces: the smoothing averages it
        assert rows["median"][0] < rows["identity"][0]


def test_main_prints_the_bar_and_writes_json(script, still_checkpoint, dtu_sample, tmp_path, capsys):
    out = tmp_path / "dtu.json"
    assert script.main(["--checkpoint", str(still_checkpoint), "--sample", str(dtu_sample), "--presets", "mvs",
                        "--draws", "1", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "right half: deltaz <= 0.90 x the median filter" in printed and "=== mvs errors" in printed
    report = json.loads(out.read_text())
    assert set(report["tables"]) == {"mvs"} and report["draws"] == 1


def test_bad_options_and_a_missing_map_get_one_line(script, tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        script.parse_args(["--presets", "nope"])
    assert "--presets: expected presets among" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.parse_args(["--draws", "0"])
    assert "--draws must be >= 1" in capsys.readouterr().err
    assert script.main(["--sample", str(tmp_path)]) == 2
    assert "depth_map_0000.pfm: no such file" in capsys.readouterr().err
    monkeypatch.delenv("DELTAZ_DTU_SAMPLE", raising=False)
    assert script.main([]) == 2
    assert "set DELTAZ_DTU_SAMPLE or pass --sample" in capsys.readouterr().err
