"""Segment planes (deltaz.ops.mvs.planes)."""

import numpy as np
import pytest

from deltaz.core.errors import DataError
from deltaz.ops.mvs.planes import fit_planes, segment_planes

H, W = 48, 96
A, B = 40, 60  # the foreground square's columns in the left image
FAR, NEAR = 4, 12  # px


def _scene(seed: int = 0):
    """A rectified pair: a blue background at ``FAR`` px and an orange square at ``NEAR`` px (rows 12–36, columns
    ``A``–``B`` of the left image), both lightly textured. Returns ``left, right`` (uint8) and the true disparity.
    The right camera does not see the ``NEAR − FAR`` background columns left of the square (half-occlusion)."""
    rng = np.random.default_rng(seed)
    texture = rng.normal(0, 0.06, (H, W + 64, 3))
    background = np.clip(np.array([0.2, 0.3, 0.8]) + texture, 0, 1)
    square = np.clip(np.array([0.8, 0.5, 0.2]) + texture[:, ::-1], 0, 1)
    rows = slice(12, 36)
    truth = np.full((H, W), float(FAR), np.float32)
    truth[rows, A:B] = NEAR
    left, right = background[:, :W].copy(), background[:, FAR:W + FAR].copy()  # x_right = x - FAR
    left[rows, A:B] = square[rows, A:B]
    right[rows, A - NEAR:B - NEAR] = square[rows, A:B]  # the square hides the background behind it
    return (left * 255).round().astype(np.uint8), (right * 255).round().astype(np.uint8), truth


def test_a_too_near_stretch_takes_its_surface_plane_and_the_rest_stays():
    left, right, truth = _scene()
    disparity = truth.copy()
    disparity[12:36, A - 6:A] = NEAR  # the matcher's fill of the half-occluded band (and fattening)
    disparity[2, 2] = np.nan
    out = segment_planes(disparity, left, right)
    band = out[12:36, A - 6:A]
    assert float((np.abs(band - FAR) < 0.5).mean()) > 0.9  # back on the background's plane
    assert np.isnan(out[2, 2])  # holes stay holes
    rest = np.ones_like(truth, dtype=bool)
    rest[12:36, A - 6:A] = False
    rest[2, 2] = False
    assert np.allclose(out[rest], truth[rest], atol=0.5)  # the square and the background stay where they were


def test_a_nearer_patch_the_right_image_confirms_is_kept():
    """A nearer patch with the background's colour (one segment with it, its own texture): its plane would push it
    back, but the right image sees it at its own disparity and matches it there better, so it stays."""
    rng = np.random.default_rng(1)
    blue = np.array([0.2, 0.3, 0.8])
    texture = np.clip(blue + rng.normal(0, 0.06, (H, W + 64, 3)), 0, 1)
    patch = np.clip(blue + rng.normal(0, 0.06, (10, 12, 3)), 0, 1)
    left, right = texture[:, :W].copy(), texture[:, FAR:W + FAR].copy()
    left[18:28, 40:52] = patch
    right[18:28, 40 - 8:52 - 8] = patch  # at 8 px, seen by both cameras
    truth = np.full((H, W), float(FAR), np.float32)
    truth[18:28, 40:52] = 8
    left, right = ((x * 255).round().astype(np.uint8) for x in (left, right))
    out = segment_planes(truth, left, right)
    assert np.allclose(out[20:26, 42:50], 8)  # the patch's inner pixels (its 5x5 SAD patch inside it)
    unchecked = segment_planes(truth, left, right, margin=10.0)  # no cost refutes the plane: the patch goes back
    assert (np.abs(unchecked[20:26, 42:50] - FAR) < 0.5).mean() > 0.5


def test_fit_planes_recovers_a_slanted_plane_through_outliers():
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:40, 0:60]
    plane = 0.05 * x - 0.02 * y + 10
    disparity = (plane + rng.normal(0, 0.1, plane.shape)).astype(np.float32)
    wrong = rng.random(plane.shape) < 0.3
    disparity[wrong] += 8  # 30 % too near
    disparity[0, :5] = np.nan
    labels = np.zeros(plane.shape, np.int64)
    labels[:, 55:] = 1
    labels[:2, 55:57] = 2  # 4 pixels: too few for a plane
    fitted, share = fit_planes(disparity, labels)
    inside = labels == 0
    assert np.abs(fitted[inside] - plane[inside]).max() < 0.1
    assert 0.6 < share[inside][0] < 0.8  # the outliers are outside its 1 px
    assert np.isnan(fitted[labels == 2]).all() and (share[labels == 2] == 0).all()


def test_bad_input_is_refused_by_name_and_holes_pass_through():
    left, right, truth = _scene()
    with pytest.raises(DataError, match="one size"):
        segment_planes(truth[:, :-1], left, right)
    with pytest.raises(DataError, match=">= 0 px"):
        segment_planes(-truth, left, right)
    with pytest.raises(DataError, match="RGB image"):
        segment_planes(truth, left[..., 0], right)
    with pytest.raises(DataError, match="unknown option"):
        segment_planes(truth, left, right, scale=3)
    with pytest.raises(DataError, match="vote"):
        segment_planes(truth, left, right, vote=0)
    with pytest.raises(DataError, match="odd window"):
        segment_planes(truth, left, right, window=4)
    with pytest.raises(DataError, match="scales"):
        segment_planes(truth, left, right, scales=100)  # a number, not a list
    with pytest.raises(DataError, match="min_pixels"):
        segment_planes(truth, left, right, min_pixels=0)
    holes = np.full((H, W), np.nan, np.float32)
    assert np.isnan(segment_planes(holes, left, right)).all()
