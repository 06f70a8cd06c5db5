"""Stereo half-occlusion fill (deltaz.ops.occlusion) and the ``stereo`` preset."""

import pytest
import torch

from deltaz.core.errors import ConfigError, DataError
from deltaz.ops.corrupt import simulate_initial_depth
from deltaz.ops.occlusion import half_occlusion, occlusion_fill


def _box(batch: int = 1) -> torch.Tensor:
    """A 600 mm wall with a 450 mm box over columns 30…49 (rows 20…39)."""
    depth = torch.full((batch, 64, 80), 600.0)
    depth[:, 20:40, 30:50] = 450.0
    return depth


def test_half_occlusion_band_is_as_wide_as_the_disparity_jump():
    depth = _box()
    disparity = 12.0 * 600.0 / depth  # 12 px on the wall, 16 on the box: a 4 px band left of the box
    occluded, occluder = half_occlusion(depth, disparity)
    columns = occluded[0].nonzero()[:, 1].unique().tolist()
    assert columns == [26, 27, 28, 29]
    assert occluded[0, :20].sum() == 0 and occluded[0, 40:].sum() == 0  # only rows beside the box
    assert torch.all(occluder[occluded] == 450.0)


def test_a_gap_narrower_than_the_jump_is_hidden_whole():
    depth = torch.full((1, 8, 40), 450.0)
    depth[:, :, 10:13] = 600.0  # a 3 px gap through which the wall shows
    occluded, _ = half_occlusion(depth, 12.0 * 600.0 / depth)
    assert occluded[0, :, 10:13].all() and occluded.sum() == 8 * 3


@pytest.mark.parametrize("seed", range(6))
def test_fill_touches_only_the_bands_beside_edges(seed):
    depth = _box()
    out = occlusion_fill(depth, torch.Generator().manual_seed(seed))
    changed = out != depth
    columns = set(changed[0].nonzero()[:, 1].tolist())
    assert columns, "the box always hides a band (disparities 4-24 px)"
    assert columns <= set(range(21, 30)) or columns <= set(range(50, 59))  # one side, left or right
    assert torch.all((out[changed] == 450.0) | (out[changed] == 0.0))


def test_deterministic_and_scale_free():
    depth = _box(3)
    a = occlusion_fill(depth, torch.Generator().manual_seed(4))
    b = occlusion_fill(depth, torch.Generator().manual_seed(4))
    c = occlusion_fill(depth * 3.0, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert torch.allclose(c, a * 3.0)


def test_holes_stay_holes_and_bad_arguments_are_named():
    depth = _box()
    depth[0, :, :5] = 0.0
    out = simulate_initial_depth(depth, "stereo", torch.Generator().manual_seed(0))
    assert torch.all(out[0, :, :5] == 0) and torch.isfinite(out).all() and (out >= 0).all()
    with pytest.raises(ConfigError, match="disparity_px"):
        occlusion_fill(depth, disparity_px=(5.0, 1.0))
    with pytest.raises(DataError, match=r"\(B, H, W\)"):
        occlusion_fill(depth[0])
