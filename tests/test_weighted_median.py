"""The selection head's weighted median (deltaz.model.selection): what it picks, and the option that turns it on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deltaz.engine.checkpoint import save_checkpoint
from deltaz.engine.evaluate import methods
from deltaz.engine.refine import refine_depth
from deltaz.model import build_model, median_selection, model_config, refine
from deltaz.model.selection import weighted_median, window_values


def _brute_force(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The definition, one pixel at a time: the smallest value whose cumulative weight (ascending) reaches 0.5."""
    B, K, H, W = values.shape
    out = torch.empty(B, 1, H, W)
    for b in range(B):
        for y in range(H):
            for x in range(W):
                v, w = values[b, :, y, x], weights[b, :, y, x]
                order = v.argsort()
                k = int((w[order].cumsum(0) < 0.5).sum().clamp(max=K - 1))
                out[b, 0, y, x] = v[order][k]
    return out


@pytest.mark.parametrize("sharpness", [0.5, 4.0, 12.0])  # weights from spread out to one dominant candidate
def test_it_is_the_weighted_median_of_the_candidates(sharpness):
    g = torch.Generator().manual_seed(int(sharpness))
    values = torch.randn(2, 9, 5, 6, generator=g)
    weights = torch.softmax(sharpness * torch.randn(2, 9, 5, 6, generator=g), dim=1)
    assert torch.equal(weighted_median(values, weights), _brute_force(values, weights))


def test_at_an_edge_the_median_copies_one_surface_the_mean_lands_between():
    values = torch.tensor([600.0, 600.0, 700.0, 700.0, 700.0]).view(1, 5, 1, 1)
    weights = torch.tensor([0.3, 0.25, 0.15, 0.15, 0.15]).view(1, 5, 1, 1)
    assert float(weighted_median(values, weights)) == 600.0  # 0.55 of the weight on the near surface
    assert float((weights * values).sum()) == pytest.approx(645.0)  # a depth no surface has


def _selection_model(seed: int = 0) -> torch.nn.Module:
    """A small selection model with every weight given a value (untrained it is the identity)."""
    torch.manual_seed(seed)
    model = build_model("deltaz_select", in_channels=1, base_channel=4, depth=2, depth_scale_mm=20.0, radius=1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
        model.head.weight[1].zero_()  # gain 1 + 0: the correction is a copy of a candidate's depth...
        model.head.bias[1].fill_(1.0)
        model.head.weight[0].zero_()  # ...with no free residual
        model.head.bias[0].zero_()
    return model.eval()


def _depth(seed: int = 1) -> torch.Tensor:
    depth = torch.full((1, 12, 16), 600.0)
    depth[:, :, 8:] = 640.0  # an edge
    return depth + torch.randn((1, 12, 16), generator=torch.Generator().manual_seed(seed))


def test_refine_copies_a_candidate_with_it_and_restores_the_mean_after():
    model, depth = _selection_model(), _depth()
    with torch.no_grad():
        median = refine(model, depth, weighted_median=True)["depth_refined"]
        mean = refine(model, depth)["depth_refined"]
    assert model.median is False  # restored
    candidates = window_values(depth[:, None], 1)[:, 0]  # (1, 9, H, W)
    nearest = (candidates - median[:, None]).abs().min(dim=1).values
    assert float(nearest.max()) < 1e-3  # every refined depth is one of its window's input depths
    assert float((candidates - mean[:, None]).abs().min(dim=1).values.max()) > 0.1  # the mean is not
    plain = build_model("deltaz_unet", in_channels=1, base_channel=4, depth=2, depth_scale_mm=20.0).eval()
    with torch.no_grad():  # a model without the selection head ignores it
        assert torch.equal(refine(plain, depth, weighted_median=True)["delta_z"], refine(plain, depth)["delta_z"])


def test_training_keeps_the_mean_and_the_option_reaches_every_inference_path(tmp_path):
    model, depth, depth_range = _selection_model(), _depth(), torch.tensor([[550.0, 700.0]])
    with torch.no_grad():
        median = refine(model, depth, depth_range=depth_range, weighted_median=True)["depth_refined"]
        mean = refine(model, depth, depth_range=depth_range)["depth_refined"]
        model.train()  # training mode never takes the median, even inside the block
        with median_selection(model):
            assert torch.equal(refine(model, depth, depth_range=depth_range)["depth_refined"], mean)
        model.eval()
    assert not torch.allclose(median, mean)

    class Views:
        depth_init = depth
        depth_range = torch.tensor([550.0, 700.0])
        image = None

    row = methods.model_method(model, "cpu", dead_zone=None, mirror_agreement=False, smooth=False)
    assert torch.allclose(row(Views(), [0]), mean)  # deltaz evaluate's rows: the mean unless asked
    with median_selection(model):  # what run_evaluation(weighted_median=True) wraps its rows in
        assert torch.allclose(row(Views(), [0]), median)
    assert model.median is False
    checkpoint = tmp_path / "select.pt"
    save_checkpoint(checkpoint, {"model": model.state_dict(), "model_config": model_config(model), "config": {}})
    kw = dict(checkpoint=checkpoint, device="cpu", depth_range_mm=(550.0, 700.0), dead_zone=None,
              mirror_agreement=False, smooth=False)
    assert np.allclose(refine_depth(depth[0].numpy(), weighted_median=True, **kw), median[0].numpy(), atol=1e-4)
    assert np.allclose(refine_depth(depth[0].numpy(), **kw), mean[0].numpy(), atol=1e-4)  # deltaz refine, refine_depth


def test_the_flags_parse_off_by_default():
    import argparse

    from deltaz.apps import refine_cli
    from deltaz.engine.evaluate import cli as evaluate_cli

    for module, required in ((refine_cli, ["--depth", "d.npy", "--out", "o.npy"]), (evaluate_cli, ["--data-root", "x"])):
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        args = [*required, "--checkpoint", "c.pt"]
        assert parser.parse_args(args).weighted_median is False
        assert parser.parse_args([*args, "--weighted-median"]).weighted_median is True


def test_metrics_md_says_when_the_rows_took_it():
    from deltaz.engine.report import _inference_line

    settings = {"dead_zone": [0.002, 0.01], "mirror_agreement": True, "colour_scale": 1.0}
    assert "weighted median" not in _inference_line(settings)
    assert "the weighted median of the selection head's candidates" in _inference_line({**settings,
                                                                                         "weighted_median": True})
