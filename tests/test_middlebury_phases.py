"""benchmarks/middlebury_phases.py: the benchmark's rows summarised over phases of the grid (pure parts)."""

from __future__ import annotations

import pytest

from _benchmarks import load_benchmark


@pytest.fixture(scope="module")
def phases_module():
    return load_benchmark("middlebury_phases")


def _row(method, covered, good=1.0, harm=0.0, holes=50.0):
    return {"method": method, "mae_valid_mm": covered, "mae_good_mm": good, "harm_pct": harm, "mae_mm": holes}


def _phase(identity, subpixel, refined, met, median=None):
    rows = {m: _row(m, v) for m, v in (("identity", identity), ("subpixel", subpixel), ("subpixel+deltaz", refined))}
    if median is not None:
        rows.update({"median": _row("median", median[0]), "median (holes)": _row("median (holes)", median[1])})
    return {"sgbm": {"rows": rows, "targets": {"subpixel+deltaz": met}}}


def test_summary_gives_mean_sd_targets_met_and_paired_differences(phases_module):
    phases = [_phase(15.0, 13.0, 12.5, [True, True, False, True, True]),
              _phase(16.0, 14.0, 14.5, [False, False, False, True, True]),
              _phase(14.0, 13.0, 12.0, [True, True, False, True, False])]
    result = phases_module.summary(phases, "sgbm")
    assert result["n"] == 3
    assert result["columns"]["identity"]["mae_valid_mm"] == [15.0, 16.0, 14.0]
    assert result["targets_met"]["subpixel+deltaz"] == [2, 2, 0, 3, 2]
    paired = result["paired"]["subpixel+deltaz"]
    assert paired["base"] == "subpixel" and paired["diff_mm"] == pytest.approx([-0.5, 0.5, -1.0])
    assert paired["lower"] == 2
    assert set(result["paired"]) == {"subpixel+deltaz"}  # rows the run lacks are left out
    assert result["to_median"] == {}  # no median filter rows, no ratio
    assert phases_module._mean_sd([1.0, 2.0, 3.0]) == "2.00 ± 1.00" and phases_module._mean_sd([4.0]) == "4.00 ± 0.00"


def test_ratio_to_the_better_median_tuning_per_phase(phases_module):
    phases = [_phase(30.0, 20.0, 18.0, [True], median=(20.0, 24.0)),
              _phase(30.0, 20.0, 22.5, [False], median=(26.0, 25.0))]
    ratio = phases_module.summary(phases, "sgbm")["to_median"]
    assert ratio["subpixel+deltaz"] == pytest.approx([0.9, 0.9])  # 18/20, then 22.5/25 (the holes-tuned one)


def test_phase_crops_share_one_size_and_phase_zero_of_one_is_the_benchmark_grid(phases_module):
    crops = [phases_module.phase_crop(dy, dx, 4) for dy in range(4) for dx in range(4)]
    assert {(top + bottom, left + right) for top, left, bottom, right in crops} == {(3, 3)}
    assert crops[0] == (0, 0, 3, 3) and crops[-1] == (3, 3, 0, 0) and crops[6] == (1, 2, 2, 1)
    assert phases_module.phase_crop(0, 0, 1) == (0, 0, 0, 0)


@pytest.mark.parametrize("argv, word", [(["--phases", "0"], "--phases"), (["--phases", "9"], "--phases"),
                                        (["--inputs", "bogus"], "--inputs"), (["--scene", "bogus"], "--scene"),
                                        (["--aloe-dir", "somewhere"], "--aloe-dir")])
def test_bad_options_are_refused_in_one_line(phases_module, argv, word, capsys):
    with pytest.raises(SystemExit) as exit_info:
        phases_module.parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert word in err[-1] and "Traceback" not in "".join(err)


def test_a_missing_checkpoint_is_one_line(phases_module, tmp_path, capsys):
    assert phases_module.main(["--checkpoint", str(tmp_path / "none.pt"), "--phases", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("middlebury_phases: error:") and "none.pt" in err[0]


def test_a_missing_aloe_pair_is_one_line(phases_module, tmp_path, capsys):
    assert phases_module.main(["--scene", "aloe", "--aloe-dir", str(tmp_path), "--phases", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("middlebury_phases: error:") and "aloeL.jpg: missing" in err[0]
    bench = load_benchmark("real_middlebury")
    assert bench.main(["--scene", "aloe", "--aloe-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("real_middlebury: error:") and "make aloe-data" in err[0]


def test_print_summary_names_every_row_target_and_pair(phases_module, capsys):
    phases = [_phase(15.0, 13.0, 12.5, [True, True, False, True, True], median=(20.0, 21.0)),
              _phase(16.0, 14.0, 14.5, [False, False, False, True, True], median=(18.0, 17.0))]
    phases_module.print_summary("sgbm", phases_module.summary(phases, "sgbm"), phases_module.TARGET_NAMES["real"])
    out = capsys.readouterr().out
    assert "2 phases" in out and "15.50 ± 0.71" in out  # the input's covered MAE over the phases
    assert "subpixel+deltaz: <=0.85x input 1; below classical 1; good pixels 0; holes counted 2; harm 2" in out
    assert "subpixel+deltaz - subpixel: 0.00 ± 0.71, lower on 1 of 2" in out
    assert "subpixel+deltaz: 0.739 (min 0.625, max 0.853)" in out  # 12.5 / 20, 14.5 / 17
