"""The references of 07_evaluation's exercises equal the package's metrics (deltaz.ops.metrics)."""

from __future__ import annotations

import math

from deltaz.course import exercises
from deltaz.course.solutions import nb07_evaluation
from deltaz.ops.metrics import depth_metrics, harm_metrics


def _cases():
    return [args for args, _ in exercises.exercise("mae_covered").cases()]


def test_mae_covered_is_the_tables_mae_valid():
    for depth, init, gt in _cases():
        assert math.isclose(nb07_evaluation.mae_covered(depth, init, gt),
                            depth_metrics(depth, gt, mask=init > 0)["mae_mm"], rel_tol=1e-9)


def test_harm_pct_and_mae_good_are_harm_metrics():
    for depth, init, gt in _cases():
        expected = harm_metrics(depth, init, gt)
        assert expected["harm_pct"] > 0  # the cases do harm some pixels
        assert math.isclose(nb07_evaluation.harm_pct(depth, init, gt), expected["harm_pct"], rel_tol=1e-9)
        assert math.isclose(nb07_evaluation.mae_good(depth, init, gt), expected["mae_good_mm"], rel_tol=1e-9)
