"""Multi-view candidate search (deltaz.ops.mvs.propagate): a neighbour's depth replaces a pixel's where the
source views match it better."""

from __future__ import annotations

import pytest
import torch

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.ops.mvs import PROPAGATE_DEFAULTS, propagate_depth
from test_gate import pair as gate_pair  # noqa: F401 (a fixture)
from test_mvs import PlaneScene

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def pair(gate_pair):
    """The photometric gate's scene (view 0 of the textured slanted plane, views 1–3 as sources) with the sources'
    true depths, which the search's visibility test and geometric guard read: truth, images, cameras."""
    truth, ref, src, mv = gate_pair
    depth_src = torch.stack([PlaneScene().depth(v).float() for v in range(1, 4)])[None]
    return truth, ref, src, MultiView(mv.K_ref, mv.E_ref, depth_src, mv.K_src, mv.E_src)


BLOCK = (slice(None), slice(30, 34), slice(40, 44))  # 4×4: each pixel has a right neighbour within radius 3


def test_a_wrong_block_takes_its_neighbours_depth(pair):
    truth, ref, src, mv = pair
    wrong = truth.clone()
    wrong[BLOCK] -= 40.0  # a stretch of a sweep's winner-take-all at a wrong depth
    out = propagate_depth(wrong, ref, src, mv, radius=3, stride=1, margin=0.0, agree=False)
    before = (wrong[BLOCK] - truth[BLOCK]).abs().mean()
    after = (out[BLOCK] - truth[BLOCK]).abs().mean()
    assert after < 0.05 * before  # within the slope's 1 mm per px of the truth (margin 0: moves right depth too)
    default = propagate_depth(wrong, ref, src, mv, radius=3, stride=1)  # margin 0.05: the clearest half at least
    assert ((default[BLOCK] - truth[BLOCK]).abs() < 2).float().mean() >= 0.5
    outside = torch.ones_like(truth, dtype=torch.bool)
    outside[BLOCK] = False
    moved = (default - wrong).abs() > 0
    assert moved[outside].float().mean() < 0.02  # right depth elsewhere is (nearly all) left alone


def test_right_depth_on_a_slanted_plane_stays(pair):
    truth, ref, src, mv = pair
    out = propagate_depth(truth, ref, src, mv)  # a neighbour's depth is off here by the slope: it must lose
    assert ((out - truth).abs() > 0).float().mean() < 0.02


def test_the_geometry_refuses_a_switch_the_photometry_alone_would_make(pair):
    truth, ref, src, mv = pair
    photometric_only = propagate_depth(truth, ref, src, mv, margin=0.0, agree=False)
    assert (photometric_only != truth).float().mean() > 0.3  # tiny photometric wins on right depth
    # the sources agree with the right depth (all 3 at 95 % of the pixels): a switch can rarely raise that count
    assert (propagate_depth(truth, ref, src, mv, margin=0.0) != truth).float().mean() < 0.005
    wrong = truth.clone()
    wrong[BLOCK] -= 40.0  # none agrees with the block, all with its neighbours' depth: the switch raises the count
    fixed = propagate_depth(wrong, ref, src, mv, radius=3, stride=1, margin=0.0)
    assert (fixed[BLOCK] - truth[BLOCK]).abs().mean() < 2.0


def test_holes_stay_holes_and_unseen_pixels_keep_their_depth(pair):
    truth, ref, src, mv = pair
    wrong = truth.clone()
    wrong[BLOCK] -= 40.0
    wrong[:, :5] = 0
    out = propagate_depth(wrong, ref, src, mv, radius=3, stride=1)
    assert torch.equal(out[:, :5], wrong[:, :5])
    far = MultiView(mv.K_ref, mv.E_ref, mv.depth_src, mv.K_src, mv.E_src.clone())
    far.E_src[..., 2, 3] -= 1e6  # every point lies behind every source: no pixel has a photometric error
    assert torch.equal(propagate_depth(wrong, ref, src, far), wrong)


def test_a_larger_margin_only_removes_changes(pair):
    truth, ref, src, mv = pair
    wrong = truth.clone()
    wrong[BLOCK] -= 40.0
    loose = propagate_depth(wrong, ref, src, mv, radius=3, stride=1, margin=0.0)
    strict = propagate_depth(wrong, ref, src, mv, radius=3, stride=1, margin=0.2)
    changed_strict = strict != wrong
    assert changed_strict.sum() <= (loose != wrong).sum()
    assert torch.equal(strict[changed_strict], loose[changed_strict])
    assert set(PROPAGATE_DEFAULTS) == {"radius", "stride", "margin", "agree"}


@pytest.mark.parametrize("kwargs, match", [
    ({"radius": -1}, "radius"), ({"stride": 0}, "stride"), ({"margin": -0.1}, "margin"),
    ({"margin": float("nan")}, "margin"),
])
def test_bad_options_raise_one_clear_error(pair, kwargs, match):
    truth, ref, src, mv = pair
    with pytest.raises(DataError, match=match):
        propagate_depth(truth, ref, src, mv, **kwargs)


def test_a_depth_of_another_size_than_the_image_is_refused(pair):
    truth, ref, src, mv = pair
    with pytest.raises(DataError, match="one size"):
        propagate_depth(truth[:, :-1], ref, src, mv)


def test_the_guard_needs_the_sources_depths(pair):
    truth, ref, src, mv = pair
    cameras_only = MultiView(mv.K_ref, mv.E_ref, None, mv.K_src, mv.E_src)
    with pytest.raises(DataError, match="depth_src"):
        propagate_depth(truth, ref, src, cameras_only)
    assert propagate_depth(truth, ref, src, cameras_only, agree=False).shape == truth.shape


def test_a_switch_no_source_backs_is_refused_even_for_a_pixel_none_backs(pair):
    """The sources' depths 50 % too far agree with no depth of the reference: no switch can raise the count of
    sources that agree, so the wrong block stays (the photometry alone would fix it)."""
    truth, ref, src, mv = pair
    wrong = truth.clone()
    wrong[BLOCK] -= 40.0
    far = MultiView(mv.K_ref, mv.E_ref, mv.depth_src * 1.5, mv.K_src, mv.E_src)  # every point seen, none agreed
    assert torch.equal(propagate_depth(wrong, ref, src, far, margin=0.0), wrong)
    photometric_only = propagate_depth(wrong, ref, src, far, margin=0.0, agree=False)
    assert (photometric_only[BLOCK] - truth[BLOCK]).abs().mean() < 2.0
