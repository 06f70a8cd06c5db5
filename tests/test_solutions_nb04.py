"""The reference solutions of 04_multiview_stereo compute what deltaz.ops.mvs computes, and the lesson's
helpers (deltaz.course.mvs_lesson) measure what they say."""

from __future__ import annotations

import math

import pytest
import torch

from deltaz.core import geometry
from deltaz.course import mvs_lesson
from deltaz.course.solutions import nb04_mvs
from deltaz.ops import mvs
from deltaz.ops.mvs import sweep as sweep_module

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("low, high, planes", [(425.0, 931.15, 48), (500.0, 800.0, 5), (1.0, 100.0, 12)])
def test_inverse_depth_planes_is_plane_depths_with_inverse_spacing(low, high, planes):
    torch.testing.assert_close(nb04_mvs.inverse_depth_planes(low, high, planes),
                               mvs.plane_depths(low, high, planes, spacing="inverse"))


@pytest.mark.parametrize("window", [3, 7])
def test_zncc_is_one_minus_the_sweep_cost_in_a_window(window):
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(1, 1, 24, 30, generator=g)
    other = 0.7 * ref + 0.3 * torch.rand(1, 1, 24, 30, generator=g) + 0.1
    other[..., 5:15, 5:15] = 0.5  # a flat region: the variance floor decides
    mean, var = sweep_module.reference_stats(ref, window)  # the package's: mean and floored variance
    cost = sweep_module.zncc_cost(ref, mean, var, other.view(1, 1, 24, 30), window)[0, 0]
    r = window // 2
    for v, u in [(12, 15), (r, r), (10, 10), (20, 25), (6, 13)]:
        a = ref[0, 0, v - r:v + r + 1, u - r:u + r + 1]
        b = other[0, 0, v - r:v + r + 1, u - r:u + r + 1]
        assert float(nb04_mvs.zncc(b, a, sweep_module._VAR_EPS)) == pytest.approx(1 - float(cost[v, u]), abs=1e-4)


def _scene(H=40, W=48, views=3):
    """A textured fronto-parallel-ish slanted plane seen by ``views`` cameras (images, K, E, depth)."""
    K = torch.tensor([[60.0, 0, (W - 1) / 2], [0, 60.0, (H - 1) / 2], [0, 0, 1]])
    Es, images, depths = [], [], []
    for i in range(views):
        E = torch.eye(3, 4)
        E[0, 3] = -30.0 * i
        Es.append(E)
    normal = torch.nn.functional.normalize(torch.tensor([0.2, -0.1, -1.0]), dim=0)
    offset = float(normal @ torch.tensor([0.0, 0.0, 600.0]))
    for E in Es:
        rays, _ = geometry.get_ray_dirs_mask(K, H, W)
        centre = geometry.camera_center(E)
        depth = (offset - normal @ centre) / (rays @ normal)
        points = geometry.camera_to_world(geometry.backproject_depth(depth, K), E)
        gray = 0.5 + 0.2 * torch.sin(points[..., 0] / 4) * torch.cos(points[..., 1] / 5)
        images.append(gray.expand(3, H, W))
        depths.append(depth)
    return torch.stack(images), K.expand(views, 3, 3), torch.stack(Es), torch.stack(depths)


def test_winner_take_all_is_the_sweeps_winner():
    images, K, E, depth = _scene()
    result = mvs.plane_sweep(images[0], K[0], E[0], images[1:], K[1:], E[1:], 520.0, 700.0, 24,
                             min_confidence=0.0, min_sources=0, return_cost=True)
    mine = nb04_mvs.winner_take_all(result.cost, result.plane_depths)
    torch.testing.assert_close(mine, result.depth, atol=1e-3, rtol=0)
    quantised = nb04_mvs._wrong_winner_take_all(result.cost, result.plane_depths)
    inner = depth[0, 6:-6, 6:-6]
    err = {name: float((d[6:-6, 6:-6] - inner).abs().median()) for name, d in [("refined", mine), ("wta", quantised)]}
    assert err["refined"] < err["wta"], err


def test_lesson_helpers_measure_what_they_say():
    depth = torch.full((10, 12), 600.0)
    depth[3:6, 4:8] = 500.0  # a box 100 mm in front
    depth[:, 0] = 0.0  # no depth: never an edge
    edges = mvs_lesson.depth_edges(depth, jump_mm=10.0)
    assert edges[3, 4] and edges[2, 4] and not edges[0, 10] and not edges[:, 0].any() and not edges[4, 5]
    distance = mvs_lesson.distance_to(edges, max_px=5)
    assert distance[3, 4] == 0 and distance[8, 5] == 2 and distance[9, 11] == 4  # chessboard: to (5, 8) or (6, 7)
    assert mvs_lesson.distance_to(edges, max_px=3)[9, 11] == 3  # capped
    gap = mvs_lesson.occluded_side(depth, radius=1)
    assert gap[2, 5] == 100.0 and gap[4, 5] == 0.0 and gap[9, 11] == 0.0
    image = torch.rand(3, 10, 12)
    image[:, :, 6:] = 0.3
    contrast = mvs_lesson.local_contrast(image, window=3)
    assert float(contrast[5, 9]) < 1e-3 and float(contrast[5, 2]) > 0.02


def test_paint_flat_paints_the_same_surface_in_every_view():
    images, K, E, depth = _scene()
    views = {"image": images.clone(), "depth": depth, "intrinsics": K, "extrinsics": E}
    centre = geometry.camera_to_world(geometry.backproject_depth(depth[0], K[0]), E[0])[20, 24]
    painted = mvs_lesson.paint_flat(views, centre, radius_mm=40.0, grey=0.25)
    assert torch.equal(views["image"], images), "the input is not modified"
    for v in range(3):
        mask = painted["painted"][v]
        assert 0 < mask.float().mean() < 0.5
        assert (painted["image"][v][:, mask] == 0.25).all()
        assert torch.equal(painted["image"][v][:, ~mask], images[v][:, ~mask])
    # the painted pixels of view 0 land on painted pixels of view 1 (a 3-D patch, not an image patch)
    uv, _, valid = geometry.reproject(depth[0], K[0], E[0], K[1], E[1])
    hit = geometry.sample_pixels(painted["painted"][1][None, None].float(), uv[None], mode="nearest")[0, 0]
    inner = painted["painted"][0] & valid & (mvs_lesson.distance_to(~painted["painted"][0], 4) >= 2)
    assert inner.any() and (hit[inner] == 1).all()
    assert not math.isnan(float(mvs_lesson.luminance(images[0]).mean()))
