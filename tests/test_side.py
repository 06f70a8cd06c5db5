"""Edge side choice (deltaz.ops.mvs.side)."""

import math

import pytest
import torch

from deltaz.core.errors import DataError
from deltaz.ops.mvs.side import side_choice


def _fattened_edge(band: int = 2, size=(40, 64), edge: int = 32):
    """A textured image of two colours meeting at column ``edge``; the true disparity is 4 px left of it and
    10 px right of it, and the matcher's disparity spreads the 10 px ``band`` columns into the left side."""
    g = torch.Generator().manual_seed(0)
    H, W = size
    image = torch.empty(3, H, W)
    image[:, :, :edge] = torch.tensor([0.7, 0.4, 0.2])[:, None, None]
    image[:, :, edge:] = torch.tensor([0.2, 0.3, 0.8])[:, None, None]
    image = (image + 0.08 * torch.randn(3, H, W, generator=g)).clamp(0, 1)
    truth = torch.full((H, W), 4.0)
    truth[:, edge:] = 10.0
    fattened = truth.clone()
    fattened[:, edge - band:edge] = 10.0
    return image, truth, fattened


def test_a_fattened_band_goes_back_to_its_side_and_far_pixels_stay():
    image, truth, fattened = _fattened_edge()
    fattened[5, 5] = math.nan
    out = side_choice(fattened, image)
    band = out[:, 30:32]
    assert float((band == 4.0).float().mean()) > 0.75  # most of the band takes the left side's disparity (85 %)
    assert torch.equal(out[:, 32:], truth[:, 32:])  # the true foreground stays
    assert torch.isnan(out[5, 5])  # holes stay holes
    far = torch.ones_like(truth, dtype=torch.bool)
    far[:, 30 - 6:32 + 6] = False  # beyond the window's reach of the edge nothing can change
    far[5, 5] = False
    assert torch.equal(out[far], fattened[far])


def test_a_disparity_without_an_edge_is_left_alone():
    image, truth, _ = _fattened_edge()
    slanted = 4.0 + 0.1 * torch.arange(64.0).expand(40, 64)  # 6.3 px over the width: no gap above 3 px in 13
    assert torch.equal(side_choice(slanted, image), slanted)


def test_a_grid_of_pixels_and_strips_give_the_same_result_as_the_whole():
    image, _, fattened = _fattened_edge()
    whole = side_choice(fattened, image)
    assert torch.equal(side_choice(fattened, image, budget_bytes=1), whole)
    rows, cols = torch.arange(1, 40, 4), torch.arange(2, 64, 3)
    assert torch.equal(side_choice(fattened, image, rows, cols), whole[rows][:, cols])


def test_bad_arguments_are_named():
    image, _, fattened = _fattened_edge()
    with pytest.raises(DataError, match="side_choice.*image of its size"):
        side_choice(fattened, image[:, :-1])
    with pytest.raises(DataError, match="radius >= 1"):
        side_choice(fattened, image, radius=0)
    with pytest.raises(DataError, match="k <= "):
        side_choice(fattened, image, radius=1, k=10)
