"""The photometric gate (deltaz.ops.gate): a correction is kept only where the source views confirm it."""

from __future__ import annotations

import pytest
import torch

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.ops.gate import gate_correction, photometric_gate
from test_mvs import PlaneScene

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pair():
    """View 0 of the textured slanted plane with views 1–3 as sources: truth, images, cameras."""
    scene = PlaneScene()
    truth = scene.depth(0).float()[None]
    images = torch.stack([scene.image(v) for v in range(4)])
    multiview = MultiView(scene.K.float()[None], scene.E[0].float()[None], None,
                          scene.K.float().expand(1, 3, 3, 3), scene.E[1:].float()[None])
    return truth, images[0][None], images[1:][None], multiview


def _bump(truth: torch.Tensor, mm: float) -> torch.Tensor:
    out = truth.clone()
    out[:, 20:40, 25:55] += mm
    return out


def test_a_correction_the_sources_confirm_is_kept(pair):
    truth, ref, src, mv = pair
    wrong = _bump(truth, 25.0)  # the input is 25 mm off in a block; the refiner puts it back
    gated = gate_correction(wrong, truth, ref, src, mv)
    block = (slice(None), slice(22, 38), slice(27, 53))
    assert (gated[block] == truth[block]).float().mean() > 0.9


def test_a_correction_that_breaks_good_depth_is_refused(pair):
    truth, ref, src, mv = pair
    broken = _bump(truth, 25.0)  # the input was right; the refiner moves a block 25 mm
    gated = gate_correction(truth, broken, ref, src, mv)
    block = (slice(None), slice(22, 38), slice(27, 53))
    assert (gated[block] == truth[block]).float().mean() > 0.9
    assert torch.equal(gated, torch.where(photometric_gate(truth, broken, ref, src, mv), broken, truth))


def test_holes_of_the_input_keep_the_refined_value_and_unseen_pixels_the_input(pair):
    truth, ref, src, mv = pair
    init = truth.clone()
    init[:, :5] = 0  # a hole band: the refiner's fill stays
    refined = truth + 3.0
    far = MultiView(mv.K_ref, mv.E_ref, None, mv.K_src, mv.E_src.clone())
    far.E_src[..., 2, 3] -= 1e6  # every point lies behind every source: nothing is confirmed
    gated = gate_correction(init, refined, ref, src, far)
    assert torch.equal(gated[:, :5], refined[:, :5])
    assert torch.equal(gated[:, 5:], init[:, 5:])


def test_moves_larger_than_trust_rel_stand_unconfirmed(pair):
    truth, ref, src, mv = pair
    broken = _bump(truth, 25.0)  # refuted by the sources; 25 mm is ~4 % of the plane's depth
    block = (slice(None), slice(22, 38), slice(27, 53))
    rel = float((25.0 / truth[block]).min())
    kept = gate_correction(truth, broken, ref, src, mv, trust_rel=0.5 * rel)
    refused = gate_correction(truth, broken, ref, src, mv, trust_rel=2.0 * rel)
    assert torch.equal(kept[block], broken[block])
    assert torch.equal(refused, gate_correction(truth, broken, ref, src, mv))  # small moves are still judged
    with pytest.raises(DataError, match="trust_rel"):
        gate_correction(truth, broken, ref, src, mv, trust_rel=-0.1)


def test_margin_only_removes_corrections(pair):
    truth, ref, src, mv = pair
    wrong = _bump(truth, 25.0)
    loose = photometric_gate(wrong, truth, ref, src, mv, margin=0.0)
    strict = photometric_gate(wrong, truth, ref, src, mv, margin=0.05)
    assert strict.sum() < loose.sum() and not (strict & ~loose).any()


@pytest.mark.parametrize("change, match", [("shape", "same"), ("margin", "margin")])
def test_bad_inputs_raise_one_clear_error(pair, change, match):
    truth, ref, src, mv = pair
    refined = truth[:, :-1] if change == "shape" else truth
    with pytest.raises(DataError, match=match):
        photometric_gate(truth, refined, ref, src, mv, margin=-1.0 if change == "margin" else 0.0)
