"""Multi-view consensus (deltaz.ops.mvs.consensus): a pixel no source agrees with takes the sources' depth."""

from __future__ import annotations

import pytest
import torch

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.ops.mvs import consensus_depth, splat_sources
from deltaz.ops.mvs.consensus import _most_agreed
from test_propagate import BLOCK
from test_propagate import pair as search_pair  # noqa: F401 (a fixture)
from test_gate import pair as gate_pair  # noqa: F401 (a fixture the one above needs)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pair(search_pair):
    return search_pair


def test_the_sources_splatted_into_the_reference_give_its_true_depth(pair):
    truth, _, _, mv = pair
    splatted = splat_sources(mv, *truth.shape[-2:])
    assert splatted.shape == (1, 3, *truth.shape[-2:])
    reached = splatted > 0
    assert reached.float().mean() > 0.5  # the sources overlap the reference on most of it
    # each source pixel lands on its nearest reference pixel: off by at most half a pixel of the plane's slope
    assert ((splatted - truth[:, None]).abs()[reached] < 1.0).float().mean() > 0.99


def test_a_block_no_source_agrees_with_takes_their_depth(pair):
    truth, ref, src, mv = pair
    wrong = truth.clone()
    wrong[BLOCK] -= 40.0
    out = consensus_depth(wrong, ref, src, mv)
    assert (out[BLOCK] - truth[BLOCK]).abs().max() < 1.0
    outside = torch.ones_like(truth, dtype=torch.bool)
    outside[BLOCK] = False
    assert torch.equal(out[outside], wrong[outside])  # right depth agrees with the sources: untouched
    geometry_only = consensus_depth(wrong, None, None, mv)
    assert (geometry_only[BLOCK] - truth[BLOCK]).abs().max() < 1.0


def test_the_photometry_refuses_a_candidate_that_matches_worse(pair):
    truth, ref, src, mv = pair
    wrong = truth.clone()
    wrong[BLOCK] -= 40.0
    lying = MultiView(mv.K_ref, mv.E_ref, mv.depth_src + 60.0, mv.K_src, mv.E_src)  # the sources' depths are off
    geometry_only = consensus_depth(wrong, None, None, lying)
    with_images = consensus_depth(wrong, ref, src, lying)
    assert (geometry_only != wrong).float().mean() > 0.5  # nothing agrees with anything: the splats win
    assert (with_images != wrong).float().mean() < 0.5 * (geometry_only != wrong).float().mean()


def test_holes_stay_unless_filled_where_two_sources_agree(pair):
    truth, ref, src, mv = pair
    holed = truth.clone()
    holed[:, 30:40, 30:40] = 0
    kept = consensus_depth(holed, ref, src, mv)
    assert torch.equal(kept[:, 30:40, 30:40], holed[:, 30:40, 30:40])
    filled = consensus_depth(holed, ref, src, mv, fill_holes=True)
    hole = filled[:, 30:40, 30:40]
    assert (hole > 0).float().mean() > 0.9  # rounding leaves a few pixels that fewer than two splats reach
    assert (hole - truth[:, 30:40, 30:40]).abs()[hole > 0].max() < 1.0


def test_a_hole_needs_two_sources_that_agree(pair):
    truth, ref, src, mv = pair
    holed = truth.clone()
    holed[:, 30:40, 30:40] = 0
    one = mv.depth_src.clone()
    one[:, 1:] = 0  # only the first source has depths
    filled = consensus_depth(holed, ref, src, MultiView(mv.K_ref, mv.E_ref, one, mv.K_src, mv.E_src), fill_holes=True)
    assert torch.equal(filled[:, 30:40, 30:40], holed[:, 30:40, 30:40])


def test_the_most_agreed_depth_is_the_one_most_sources_are_within_rel_of():
    """Against a count by hand: per pixel, the splatted depth with the most others within 1 % of it (itself
    included; the first source wins a tie) and that count; 0 where no source reaches the pixel."""
    g = torch.Generator().manual_seed(0)
    splatted = 600.0 + 4.0 * torch.randint(0, 4, (2, 5, 6, 7), generator=g).float()  # 600, 604, 608, 612 mm
    splatted[torch.rand(splatted.shape, generator=g) < 0.3] = 0
    splatted[0, :, 0, 0] = 0  # no source reaches this pixel
    depth, support = _most_agreed(splatted, 0.01)
    for b, y, x in zip(*[t.flatten() for t in torch.meshgrid(torch.arange(2), torch.arange(6), torch.arange(7),
                                                                indexing="ij")]):
        seen = [d for d in splatted[b, :, y, x].tolist() if d > 0]
        counts = [sum(abs(o - d) < 0.01 * d for o in seen) for d in seen]
        want = (seen[counts.index(max(counts))], max(counts)) if seen else (0.0, 0)
        assert (depth[b, y, x].item(), support[b, y, x].item()) == want
    assert support[0, 0, 0] == 0 and support.max() >= 3


def test_bad_arguments_are_one_data_error(pair):
    truth, ref, src, mv = pair
    with pytest.raises(DataError, match="depth"):
        consensus_depth(truth[0], ref, src, mv)
    with pytest.raises(DataError, match="rel"):
        consensus_depth(truth, ref, src, mv, rel=0)
    with pytest.raises(DataError, match="both"):
        consensus_depth(truth, ref, None, mv)
    with pytest.raises(DataError):
        consensus_depth(truth, ref, src, MultiView(mv.K_ref, mv.E_ref, None, mv.K_src, mv.E_src))
    with pytest.raises(DataError, match="size"):
        consensus_depth(truth, ref[..., ::2, ::2], src, mv)
    with pytest.raises(DataError, match="source"):
        consensus_depth(truth, None, None, MultiView(mv.K_ref, mv.E_ref, mv.depth_src[:, :0], mv.K_src[:, :0],
                                                     mv.E_src[:, :0]))
