"""Segment planes for calibrated views (deltaz.ops.mvs.planes_calibrated): a stretch too near for its colour segment's
plane goes back to the plane unless the source views say no."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from deltaz.core.batch import MultiView
from deltaz.core.errors import DataError
from deltaz.ops.mvs import VIEWS_PLANES_DEFAULTS, planes_views
from deltaz.ops.metrics import multiview_consistency
from deltaz.ops.mvs.consensus import splat_sources
from test_gate import pair as gate_pair  # noqa: F401 (a fixture)
from test_mvs import PlaneScene

pytestmark = pytest.mark.usefixtures("one_thread")

BLOCK = (slice(None), slice(24, 34), slice(30, 44))  # 10×14 px inside the 64×80 view


@pytest.fixture(scope="module")
def views(gate_pair):
    """The photometric gate's scene (view 0 of a textured slanted plane, views 1–3 the sources) with the sources'
    true depths for the visibility test: truth, images, cameras."""
    truth, ref, src, mv = gate_pair
    depth_src = torch.stack([PlaneScene().depth(v).float() for v in range(1, 4)])[None]
    return truth, ref, src, MultiView(mv.K_ref, mv.E_ref, depth_src, mv.K_src, mv.E_src)


def test_a_too_near_stretch_goes_back_to_its_plane_and_nothing_else_moves(views):
    truth, ref, src, mv = views
    wrong = truth.clone()
    wrong[BLOCK] *= 0.85  # 15 % too near: more than the 12 % jump
    out = planes_views(wrong, ref, src, mv)
    assert (out[BLOCK] - truth[BLOCK]).abs().mean() < 0.01 * (wrong[BLOCK] - truth[BLOCK]).abs().mean()
    outside = torch.ones_like(truth, dtype=torch.bool)
    outside[BLOCK] = False
    assert torch.equal(out[outside], wrong[outside])


def test_a_plane_more_than_reach_times_as_far_is_no_candidate(views):
    """A stretch at 40 % of its depth (its plane 2.5 × as far): the default reach of 2 leaves it, a reach of 3
    (or none, or a numpy 3) takes it back to the plane."""
    truth, ref, src, mv = views
    wrong = truth.clone()
    wrong[BLOCK] *= 0.4
    assert torch.equal(planes_views(wrong, ref, src, mv), wrong)
    moved = planes_views(wrong, ref, src, mv, reach=3.0)
    assert (moved[BLOCK] - truth[BLOCK]).abs().mean() < 0.01 * (wrong[BLOCK] - truth[BLOCK]).abs().mean()
    assert torch.equal(planes_views(wrong, ref, src, mv, reach=None), moved)
    assert torch.equal(planes_views(wrong, ref, src, mv, reach=np.float64(3)), moved)


def test_right_depth_and_holes_stay(views):
    truth, ref, src, mv = views
    assert torch.equal(planes_views(truth, ref, src, mv), truth)
    holed = truth.clone()
    holed[:, :6] = 0
    holed[BLOCK] *= 0.85
    out = planes_views(holed, ref, src, mv)
    assert torch.equal(out[:, :6], holed[:, :6])
    empty = torch.zeros_like(truth)
    assert torch.equal(planes_views(empty, ref, src, mv), empty)


def test_the_sources_veto_a_plane_that_matches_them_worse(views):
    """The surface is right only in the block, 20 % too far elsewhere: the block is far nearer than its segments'
    planes, but the sources match it better where it is, so it stays; without the veto it would move."""
    truth, ref, src, mv = views
    far = truth * 1.2
    far[BLOCK] = truth[BLOCK]
    no_visibility = MultiView(mv.K_ref, mv.E_ref, None, mv.K_src, mv.E_src)  # the far points must count as seen
    kept = planes_views(far, ref, src, no_visibility)
    assert (kept[BLOCK] == far[BLOCK]).float().mean() > 0.95
    moved = planes_views(far, ref, src, no_visibility, margin=1e9)
    assert (moved[BLOCK] != far[BLOCK]).float().mean() > 0.95


def test_a_plane_no_source_sees_is_refused(views):
    """The same map with the sources' true depths deciding visibility: the plane 20 % behind the surface is hidden
    from every source (the block, at the surface, is seen), so even without a photometric margin the block stays."""
    truth, ref, src, mv = views
    far = truth * 1.2
    far[BLOCK] = truth[BLOCK]
    kept = planes_views(far, ref, src, mv, margin=1e9)
    assert (kept[BLOCK] == far[BLOCK]).float().mean() > 0.95


@pytest.mark.parametrize("kwargs, word", [
    ({"jump": 0.0}, "jump"), ({"vote": 1.5}, "vote"), ({"vote": 0.0}, "vote"), ({"margin": -1.0}, "margin"),
    ({"scales": ()}, "scales"), ({"sigmas": 0.5}, "sigmas"), ({"fit": 0}, "fit"), ({"inliers": 0}, "inliers"),
    ({"rounds": 0}, "rounds"), ({"window": 5}, "unknown option"), ({"backed": 0.0}, "backed"),
    ({"backed": 2}, "backed"), ({"backed": True}, "backed"), ({"backed": "all"}, "backed"),
    ({"reach": 1.0}, "reach"), ({"reach": 0.5}, "reach"), ({"reach": True}, "reach"), ({"reach": "far"}, "reach"),
])
def test_impossible_options_are_refused_in_one_line(views, kwargs, word):
    truth, ref, src, mv = views
    with pytest.raises(DataError, match=f"planes_views.*{word}") as error:
        planes_views(truth, ref, src, mv, **kwargs)
    assert "\n" not in str(error.value)
    if word != "unknown option":  # the option named among those to check, not only in the list of what is expected
        assert re.search(rf"check (\w+, )*{word}(,|$)", str(error.value)), str(error.value)


def test_bad_shapes_are_refused(views):
    truth, ref, src, mv = views
    with pytest.raises(DataError, match="one size"):
        planes_views(truth[:, :10], ref, src, mv)
    with pytest.raises(DataError, match="image_src"):
        planes_views(truth, ref, src[0], mv)


def test_a_batch_is_its_views_one_by_one_and_float64_comes_back_float32(views):
    truth, ref, src, mv = views
    wrong = truth.clone()
    wrong[BLOCK] *= 0.85
    pair = torch.cat([wrong, torch.zeros_like(truth)])  # a view with a too-near block and an all-hole view
    two = MultiView(*(t.expand(2, *t.shape[1:]) for t in (mv.K_ref, mv.E_ref, mv.depth_src, mv.K_src, mv.E_src)))
    out = planes_views(pair, ref.expand(2, -1, -1, -1), src.expand(2, -1, -1, -1, -1), two)
    assert torch.equal(out[:1], planes_views(wrong, ref, src, mv))
    assert torch.equal(out[1:], torch.zeros_like(truth))
    doubled = planes_views(wrong.double(), ref, src, mv)
    assert doubled.dtype == torch.float32 and torch.allclose(doubled, out[:1])
    assert VIEWS_PLANES_DEFAULTS["sigmas"] == (0.5,)  # the 4 segmentations the defaults were measured with


def test_a_pixel_its_sources_back_needs_a_plane_that_matches_them_better(views):
    """A near square in front of a plane 50 % farther, the images one grey (every depth matches equally well): the
    square's depth agrees with all three sources' depths (but on its rim, where splatting leaves gaps), so the far
    plane around it (seen behind it from the sources) does not take it; without ``backed`` it does, and a numpy
    ``backed`` or the dict form of the cameras changes nothing."""
    truth, ref, src, mv = views
    square = (slice(None), slice(28, 34), slice(36, 42))
    far = truth * 1.5
    far[square] = truth[square]
    far_scene = PlaneScene()
    far_scene.offset *= 1.5  # the plane 1.5 × as far from the reference camera (at the origin)
    depth_src = []
    for v in range(3):  # the square seen from each source: the reference's points splatted there, z-buffered
        as_seen = MultiView(mv.K_src[:, v], mv.E_src[:, v], far[:, None], mv.K_ref[:, None], mv.E_ref[:, None])
        near = splat_sources(as_seen, *truth.shape[-2:])[0, 0]
        plane = far_scene.depth(v + 1).float()
        depth_src.append(torch.where((near > 0) & (near < 0.9 * plane), near, plane))
    two_layers = MultiView(mv.K_ref, mv.E_ref, torch.stack(depth_src)[None], mv.K_src, mv.E_src)
    grey_ref, grey_src = torch.full_like(ref, 0.5), torch.full_like(src, 0.5)
    backed = multiview_consistency(far, two_layers).n_consistent[square] == 3  # the square's rim: splatting's gaps
    assert backed.float().mean() > 0.6
    kept = planes_views(far, grey_ref, grey_src, two_layers)
    assert torch.equal(kept[square][backed], far[square][backed])
    as_dict = {k: getattr(two_layers, k) for k in ("K_ref", "E_ref", "depth_src", "K_src", "E_src")}
    assert torch.equal(planes_views(far, grey_ref, grey_src, as_dict, backed=np.float32(0.75)), kept)
    moved = planes_views(far, grey_ref, grey_src, two_layers, backed=None)
    assert (moved[square] > 1.3 * truth[square]).all(), "the plane is seen behind the square"
