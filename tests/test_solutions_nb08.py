"""The references of notebook 08's exercises equal the package's functions."""

from __future__ import annotations

import numpy as np
import torch

from deltaz.course import exercises
from deltaz.course.solutions import nb08_extensions as nb08
from deltaz.ops import align, confidence


def test_fit_scale_shift_is_align_scale_shift_without_robustness():
    for (pred, sparse), _ in exercises.exercise("fit_scale_shift").cases():
        s, t = nb08.fit_scale_shift(pred, sparse)
        _, s_ref, t_ref = align.align_scale_shift(pred, sparse, robust=False)
        torch.testing.assert_close(s, s_ref, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(t, t_ref, rtol=1e-9, atol=1e-7)


def test_sparsification_curve_is_the_package_function():
    for (errors, conf, fractions), _ in exercises.exercise("sparsification_curve").cases():
        np.testing.assert_allclose(nb08.sparsification_curve(errors, conf, fractions),
                                   confidence.sparsification_curve(errors, conf, fractions), rtol=1e-12)


def test_ause_from_curves_is_the_package_ause():
    g = torch.Generator().manual_seed(0)
    errors = torch.rand(500, generator=g, dtype=torch.float64) * 5
    for conf in (-errors, torch.rand(500, generator=g, dtype=torch.float64), errors):
        result = confidence.sparsification(errors, conf)
        assert nb08.ause_from_curves(result.curve, result.oracle, result.fractions) == result.ause
        assert nb08.ause_from_curves(result.random, result.oracle, result.fractions) == result.ause_random
