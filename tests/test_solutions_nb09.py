"""The references of notebook 09's exercises equal what deltaz.ops.selfsup computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deltaz.core.batch import MultiView
from deltaz.core.geometry import reproject, sample_pixels
from deltaz.course import exercises
from deltaz.course.solutions import nb09_self_supervision as nb09
from deltaz.ops import selfsup
from tests._tiny_scans import _look_at, _render_depth

pytestmark = pytest.mark.usefixtures("one_thread")


def _scene(n_views: int = 4, h: int = 24, w: int = 32):
    """A sphere on a plane seen by ``n_views`` cameras with random images; view 0 is the reference.

    Returns ``depth (N, h, w)`` mm, ``image (N, 3, h, w)``, ``K (N, 3, 3)``, ``E (N, 3, 4)``; the images need
    not be photo-consistent: the tests compare two ways of computing the same thing."""
    K = np.array([[90.4 * w / 40, 0, 20.7 * w / 40], [0, 90.1 * h / 32, 16.6 * h / 32], [0, 0, 1]])
    plane_n = np.array([0.1, -0.1, 1.0]) / np.linalg.norm([0.1, -0.1, 1.0])
    depths, Es = [], []
    for i in range(n_views):
        angle = np.deg2rad(-12 + 24 * i / max(n_views - 1, 1))
        E = _look_at(np.array([600 * np.sin(angle), 15.0 * i, -600 * np.cos(angle)]), np.zeros(3))
        depths.append(_render_depth(K, E, h, w, np.array([5.0, -8.0, -10.0]), 30.0, -plane_n, -20.0))
        Es.append(E)
    depth = torch.tensor(np.stack(depths))
    depth[:, :3, :3] = 0.0  # holes
    image = torch.rand(n_views, 3, h, w, generator=torch.Generator().manual_seed(0))
    return {"depth": depth, "image": image, "K": torch.tensor(np.stack([K] * n_views), dtype=torch.float32),
            "E": torch.tensor(np.stack(Es), dtype=torch.float32)}


def _multiview(scene, sources, depth_src=None) -> MultiView:
    return MultiView(scene["K"][:1], scene["E"][:1], None if depth_src is None else depth_src[None],
                     scene["K"][sources][None], scene["E"][sources][None])


def test_source_mask_is_the_photometric_terms_mask_of_one_source():
    scene = _scene()
    depth_ref = scene["depth"][:1] * 1.01  # not exactly the truth: some points hide behind the source surface
    depth_src = scene["depth"][1:2].clone()
    depth_src[:, 10:14] *= 0.9  # an occluder in front of some of the points
    for src_depth in (None, depth_src):
        _, keep = selfsup.photometric_loss_map(depth_ref, scene["image"][:1], scene["image"][None, 1:2],
                                               _multiview(scene, [1], src_depth))
        uv, z_src, _ = reproject(depth_ref, scene["K"][:1], scene["E"][:1], scene["K"][1:2], scene["E"][1:2])
        at_uv = (torch.zeros_like(z_src) if src_depth is None
                 else sample_pixels(src_depth[:, None], uv, mode="nearest")[:, 0])
        mask = nb09.source_mask(uv, z_src, at_uv, tuple(scene["depth"].shape[-2:]))
        assert torch.equal(keep, mask & (depth_ref > 0))
        assert 0 < int(keep.sum()) < keep.numel()
    hidden = nb09.source_mask(uv, z_src, at_uv, tuple(scene["depth"].shape[-2:]))
    assert not torch.equal(hidden, nb09.source_mask(uv, z_src, torch.zeros_like(at_uv), tuple(at_uv.shape[-2:])))


def test_min_over_sources_is_the_photometric_terms_reduction():
    scene = _scene()
    depth_ref = scene["depth"][:1]
    singles = [selfsup.photometric_loss_map(depth_ref, scene["image"][:1], scene["image"][None, s:s + 1],
                                            _multiview(scene, [s])) for s in (1, 2, 3)]
    errors = torch.stack([e for e, _ in singles], dim=1)
    valid = torch.stack([k for _, k in singles], dim=1)
    error, keep = nb09.min_over_sources(errors, valid)
    want_error, want_keep = selfsup.photometric_loss_map(depth_ref, scene["image"][:1], scene["image"][None, 1:],
                                                         _multiview(scene, [1, 2, 3]))
    assert torch.equal(keep, want_keep) and torch.equal(error, want_error)
    assert (valid.sum(dim=1) >= 2).any() and (valid.sum(dim=1) < 3).any()  # the minimum had choices and gaps


def test_anchor_loss_is_the_package_anchor():
    for (refined, init, conf), _ in exercises.exercise("anchor_loss").cases():
        torch.testing.assert_close(nb09.anchor_loss(refined, init, conf), selfsup.anchor_loss(refined, init, conf),
                                   rtol=1e-12, atol=1e-15)
