"""Two-view disparity candidate search (deltaz.ops.mvs.search)."""

import math

import pytest
import torch

from deltaz.core.errors import DataError
import numpy as np

from deltaz.ops.mvs.search import candidate_search, sad_cost_volume, search_disparity


def _pair(true_disparity: int = 6, size=(40, 64)):
    """A textured left image and its right view for a fronto-parallel scene at ``true_disparity`` px."""
    g = torch.Generator().manual_seed(0)
    H, W = size
    left = torch.rand(3, H, W, generator=g)
    right = torch.zeros_like(left)
    right[..., :W - true_disparity] = left[..., true_disparity:]  # x_right = x_left − d
    return left, right


def test_cost_volume_is_lowest_at_the_true_disparity():
    left, right = _pair()
    cost = sad_cost_volume(left, right, 12)
    assert cost.shape == (12, 40, 64)
    assert torch.isnan(cost[8, :, :8]).all() and torch.isfinite(cost[8, :, 8:]).all()
    inner = cost[:, 4:-4, 12:-12]
    assert (inner.argmin(0) == 6).all()


def test_a_wrong_patch_takes_its_neighbours_disparity_and_the_rest_stays():
    left, right = _pair()
    cost = sad_cost_volume(left, right, 12)
    disparity = torch.full((40, 64), 6.0)
    disparity[15:20, 30:36] = 9.0  # a smoothness-spread wrong value
    disparity[0, 0] = math.nan
    out = candidate_search(disparity, cost, radius=6, stride=3, margin=0.02)
    assert torch.all(out[15:20, 30:36] == 6.0)
    assert torch.isnan(out[0, 0])
    right_before = disparity == 6.0
    assert torch.equal(out[right_before], disparity[right_before])
    unchanged = candidate_search(disparity, cost, radius=6, stride=3, margin=10.0)  # nothing is that much better
    assert torch.equal(torch.nan_to_num(unchanged, nan=-1), torch.nan_to_num(disparity, nan=-1))


def test_a_coarse_grid_reads_the_cost_at_its_full_size_pixels():
    left, right = _pair()
    cost = sad_cost_volume(left, right, 12)
    rows, cols = torch.arange(2, 40, 4), torch.arange(12, 64, 4)
    grid = torch.full((len(rows), len(cols)), 6.0)
    grid[3, 3] = 10.0
    assert candidate_search(grid, cost, rows, cols, radius=1, stride=1)[3, 3] == 6.0


def test_bad_arguments_are_named():
    left, right = _pair()
    cost = sad_cost_volume(left, right, 4)
    with pytest.raises(DataError, match="rows/cols"):
        candidate_search(torch.zeros(5, 5), cost, torch.arange(4), torch.arange(5))
    with pytest.raises(DataError, match="margin"):
        candidate_search(torch.zeros(40, 64), cost, margin=-1.0)
    with pytest.raises(DataError, match="one size"):
        sad_cost_volume(left, right[:, :10], 4)
    with pytest.raises(DataError, match="odd window"):
        sad_cost_volume(left, right, 4, window=4)


def test_search_disparity_fixes_a_wrong_patch_in_strips_as_in_one_piece():
    left, right = _pair(size=(48, 64))
    left_u8, right_u8 = ((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for x in (left, right))
    disparity = np.full((48, 64), 6.0, np.float32)
    disparity[20:26, 30:36] = 9.0
    disparity[0, 0] = np.nan
    whole = search_disparity(disparity, left_u8, right_u8, radius=6, stride=3, subpixel=False)
    assert (whole[20:26, 30:36] == 6.0).all() and np.isnan(whole[0, 0])
    strips = search_disparity(disparity, left_u8, right_u8, budget_bytes=4 * 10 * 64 * 5, radius=6, stride=3,
                              subpixel=False)
    np.testing.assert_array_equal(strips, whole)  # 5-row strips (10 disparities), the same result


def test_search_disparity_names_bad_input():
    left, right = _pair()
    image = (left.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    with pytest.raises(DataError, match="must have one size"):
        search_disparity(np.zeros((40, 60), np.float32), image, image)
    with pytest.raises(DataError, match=">= 0 px"):
        search_disparity(np.full((40, 64), -1.0, np.float32), image, image)
    with pytest.raises(DataError, match="RGB image"):
        search_disparity(np.zeros((40, 64), np.float32), image[..., 0], image)
    too_far = np.full((40, 64), 70.0, np.float32)  # beyond the image's width: no cost, kept
    np.testing.assert_array_equal(search_disparity(too_far, image, image), too_far)
    nothing = np.full((40, 64), np.nan, np.float32)
    assert np.isnan(search_disparity(nothing, image, image)).all()
