"""The references of notebook 03's exercises are the package's initial-depth effects, and its course helpers
(deltaz.course.initial_depth) run one effect alone with the preset's parameters."""

from __future__ import annotations

import pytest
import torch

from deltaz.core.errors import ConfigError
from deltaz.course import exercises
from deltaz.course import initial_depth as idm
from deltaz.course.solutions import nb03_initial_depth as nb03
from deltaz.ops import corrupt


def _cases(name):
    return exercises.exercise(name).cases()


def test_quantize_depth_is_the_package_quantize():
    for args, kwargs in _cases("quantize_depth"):
        torch.testing.assert_close(nb03.quantize_depth(*args, **kwargs), corrupt.quantize(*args, **kwargs),
                                   rtol=0, atol=0)


def test_noisy_depth_is_the_package_depth_noise_with_a_seeded_generator():
    for (depth, seed), kwargs in _cases("noisy_depth"):
        want = corrupt.depth_noise(depth, torch.Generator().manual_seed(seed), **kwargs)
        torch.testing.assert_close(nb03.noisy_depth(depth, seed, **kwargs), want, rtol=0, atol=0)


def test_behind_edge_is_where_fatten_edges_moves_pixels_when_it_always_fattens():
    for args, kwargs in _cases("behind_edge"):
        depth = args[0]
        width, jump = (args[1:] + (None, None))[:2]
        width = kwargs.get("width_px", width if width is not None else 2)
        jump = kwargs.get("jump_mm", jump if jump is not None else 10.0)
        fattened = corrupt.fatten_edges(depth, torch.Generator().manual_seed(0), fatten_width_px=width,
                                        jump_mm=jump, fatten_prob=1.0)
        mask = nb03.behind_edge(depth, width, jump)
        assert mask.any() and not mask.all()
        assert torch.equal(fattened != depth, mask)


def test_the_cases_exercise_the_edges_and_holes():
    for args, kwargs in _cases("behind_edge"):
        depth = args[0]
        assert (depth == 0).any()
        assert not torch.equal(nb03.behind_edge(*args, **kwargs), nb03._wrong_behind_edge(*args, **kwargs))


def test_apply_effect_runs_one_effect_with_the_preset_parameters():
    depth = exercises.exercise("quantize_depth").cases()[0][0][0]
    torch.testing.assert_close(idm.apply_effect(depth, "quantize", depth_range_mm=(425.0, 935.0)),
                               corrupt.quantize(depth, step_mm=2.65, depth_min_mm=425.0), rtol=0, atol=0)
    want = corrupt.depth_noise(depth, torch.Generator().manual_seed(5), **idm.effect_params("depth_noise"))
    torch.testing.assert_close(idm.apply_effect(depth, "depth_noise", seed=5), want, rtol=0, atol=0)
    assert idm.effect_preset("mde_distortion") == "mde" and idm.effect_preset("outliers") == "mvs"
    assert idm.effect_preset("shift_edges") == "edges" and idm.effect_params("shift_edges")["shift_width_px"] == 2
    assert idm.effect_params("quantize") == {"step_mm": 2.65}
    with pytest.raises(ConfigError, match="effect"):
        idm.effect_preset("blur")


def test_error_helpers_use_pixels_valid_in_both():
    gt = torch.tensor([[600.0, 0.0], [610.0, 620.0]])
    init = torch.tensor([[601.0, 605.0], [0.0, 618.0]])
    torch.testing.assert_close(idm.signed_error(init, gt), torch.tensor([1.0, -2.0]))
    layers = idm.error_layers(gt, init)
    assert torch.isnan(layers[idm.ERROR][0, 1]) and torch.isnan(layers[idm.ERROR][1, 0])
    assert idm.local_contrast(torch.ones(3, 8, 8)).abs().max() < 1e-6
