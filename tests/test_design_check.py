"""benchmarks/design_check.py: the design data's measures in one table, and nothing held out in it."""

from __future__ import annotations

import json
import math

import pytest

from _benchmarks import load_benchmark


@pytest.fixture(scope="module")
def script():
    return load_benchmark("design_check")


def _finite(cell):
    return len(cell) == 3 and all(math.isfinite(x) for x in cell)


def test_dtu_part_scores_the_left_half_against_the_median_filter(script, still_checkpoint, dtu_sample):
    args = script.parse_args(["--draws", "1", "--sample", str(dtu_sample)])
    measures, skipped = script.check(str(still_checkpoint), ("dtu",), args)
    assert skipped == [] and set(measures) == {"DTU map left, mvs: deltaz (median)",
                                               "DTU map left, noise: deltaz (median)"}
    gt = script.real_dtu_map.load_depth(dtu_sample)
    refiner, _ = script.bench.load_refiner_or_none(str(still_checkpoint), "cpu")
    left = script.real_dtu_map.run(refiner, gt, "noise", 1)["left"]
    assert measures["DTU map left, noise: deltaz (median)"] == {"ref": left["median"], "value": left["deltaz"]}


def test_main_prints_motorcycle_left_rows_only_and_writes_json(script, still_checkpoint, tmp_path, capsys):
    out = tmp_path / "design.json"
    missing = tmp_path / "no_data"
    assert script.main(["--checkpoint", str(still_checkpoint), "--parts", "motorcycle", "validation",
                        "--sim-seeds", "1", "--data-root", str(missing), "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"skipped validation: {missing}: no train-ready folder" in captured.err
    rows = [line for line in captured.out.splitlines() if line.startswith("| Motorcycle left")]
    assert len(rows) == len(script.MOTO_ROWS)
    assert "right" not in captured.out.lower()  # no right-half row, no held-out target
    report = json.loads(out.read_text())
    measures = report["measures"][str(still_checkpoint)]
    assert len(measures) == len(script.MOTO_ROWS)
    assert all(_finite(m["ref"]) and _finite(m["value"]) for m in measures.values())
    sgbm = measures["Motorcycle left, sgbm: deltaz (identity)"]
    assert sgbm["ref"][2] == 0.0  # the input's harm against itself
    assert sgbm["value"][0] <= sgbm["ref"][0] + 0.5  # Δz = 0: only the smoothing moves SGBM's depth


def test_bad_options_get_one_line(script, capsys):
    for argv, said in ((["--draws", "0"], "--draws must be >= 1"), (["--sim-seeds", "0"], "--sim-seeds must be >= 1"),
                       (["--parts", "aloe"], "invalid choice: 'aloe'")):
        with pytest.raises(SystemExit):
            script.parse_args(argv)
        assert said in capsys.readouterr().err
    assert script.main(["--checkpoint", "/nonexistent/ck.pt", "--parts", "dtu"]) == 2
    assert "design_check: error:" in capsys.readouterr().err
