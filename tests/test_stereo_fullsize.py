"""benchmarks/stereo_fullsize.py: its scores (the full run needs the Motorcycle pair and a checkpoint)."""

import numpy as np
import pytest

from _benchmarks import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("stereo_fullsize")


def test_scores_split_the_halves_and_count_good_pixels_and_harm(bench):
    gt = np.full((4, 8), 1000.0)
    gt[0, 0] = np.nan  # no ground truth: not covered
    sgbm = gt + np.array([0.0, 0, 0, 0, 2, 2, 20, 20])  # right half: two good pixels (2 mm), two wrong ones
    sgbm[1, 1] = np.nan  # no disparity: not covered
    refined = sgbm.copy()
    refined[:, 4] += 6.0  # a good pixel made 6 mm worse: harm
    refined[:, 6] -= 20.0  # a wrong one fixed
    row = bench.scores(refined, sgbm, gt)
    assert row["left_mae_mm"] == 0.0
    assert row["right_mae_mm"] == pytest.approx((8 + 2 + 0 + 20) / 4)
    assert row["right_mae_good_mm"] == pytest.approx((8 + 2) / 2)
    assert row["right_harm_pct"] == pytest.approx(25.0)
    assert bench.scores(sgbm, sgbm, gt)["right_harm_pct"] == 0.0


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_a_colour_scale_that_is_not_positive_is_refused_before_any_work(bench, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--colour-scale", value])
    assert exit_info.value.code == 2
    assert "--colour-scale: expected a positive number" in capsys.readouterr().err
