"""The sub-pixel refinement (deltaz.ops.mvs.subpixel) on exact rectified pairs (a texture made of sinusoids, the
right image the same texture shifted by a known fractional disparity) and on calibrated views (a textured slanted
plane)."""

import numpy as np
import pytest
import torch

from deltaz.core.errors import DataError
from deltaz.ops.mvs.search import search_disparity
from deltaz.ops.mvs.subpixel import SUBPIXEL_DEFAULTS, VIEWS_SUBPIXEL_DEFAULTS, subpixel_refine, subpixel_views
from test_gate import pair as gate_pair  # noqa: F401 (a fixture)

H, W = 60, 90
TRUE = 6.15  # px, x_right = x - d


def _texture(x: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(H, W, 3)`` RGB in [0, 1]: eight sinusoids of random direction and period 5-15 px, per channel."""
    rng = np.random.default_rng(seed)
    channels = []
    for _ in range(3):
        value = np.zeros_like(x)
        for _ in range(8):
            angle, period, phase = rng.uniform(0, np.pi), rng.uniform(5, 15), rng.uniform(0, 2 * np.pi)
            value += np.sin(2 * np.pi * (np.cos(angle) * x + np.sin(angle) * y) / period + phase)
        channels.append(value)
    image = np.stack(channels, -1)
    return ((image - image.min()) / (image.max() - image.min())).astype(np.float32)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    return _texture(x, y), _texture(x + TRUE, y)  # right(x - d) = left(x)


def _inner(disparity: np.ndarray) -> np.ndarray:
    """The pixels whose patches and shifts stay inside both frames."""
    return disparity[10:-10, 20:-10]


def test_a_whole_pixel_disparity_moves_to_the_true_fraction(pair):
    """SGBM-like pixel locking: 6 px everywhere (the truth 6.15) ends within 0.03 px of the truth inside the frame;
    holes stay holes."""
    disparity = np.full((H, W), 6.0, np.float32)
    disparity[30, 40] = np.nan
    out = subpixel_refine(disparity, *pair)
    assert np.isnan(out[30, 40]) and np.isfinite(np.delete(out.ravel(), 30 * W + 40)).all()
    assert np.nanmax(np.abs(_inner(out) - TRUE)) < 0.03


def test_the_right_disparity_stays_and_a_far_one_moves_by_the_clip_only(pair):
    """At the truth nothing moves by more than 0.02 px; 0.65 px off, the step moves it by the clip (0.2 px) towards
    the truth, no further; 1.25 px off (beyond accept, 1 px) or 1.65 px off (beyond reach) it does not move."""
    assert np.abs(_inner(subpixel_refine(np.full((H, W), TRUE, np.float32), *pair)) - TRUE).max() < 0.02
    clip = SUBPIXEL_DEFAULTS["clip"]
    moved = subpixel_refine(np.full((H, W), TRUE - 0.65, np.float32), *pair)
    np.testing.assert_allclose(_inner(moved), TRUE - 0.65 + clip, atol=1e-5)
    beyond_accept = subpixel_refine(np.full((H, W), TRUE - 1.25, np.float32), *pair)  # a peak inside reach (1.5)
    np.testing.assert_allclose(_inner(beyond_accept), TRUE - 1.25, atol=1e-5)
    beyond_reach = subpixel_refine(np.full((H, W), TRUE - 1.65, np.float32), *pair)  # no peak inside the range
    np.testing.assert_allclose(_inner(beyond_reach), TRUE - 1.65, atol=1e-5)


def test_uint8_images_give_the_float_result(pair):
    left, right = ((np.round(image * 255)).astype(np.uint8) for image in pair)
    out = subpixel_refine(np.full((H, W), 6.0, np.float32), left, right)
    assert np.abs(_inner(out) - TRUE).max() < 0.05


def test_search_disparity_runs_it_last(pair):
    """search_disparity's default = its steps without the sub-pixel one, then subpixel_refine."""
    disparity = np.full((H, W), 6.0, np.float32)
    without = search_disparity(disparity, *pair, subpixel=False)
    np.testing.assert_array_equal(search_disparity(disparity, *pair), subpixel_refine(without, *pair))


@pytest.mark.parametrize("kwargs, word", [
    ({"window": 4}, "odd window"), ({"smooth": 0}, "odd window"), ({"accept": 2.0}, "accept <= reach"),
    ({"clip": -1.0}, "clip >= 0"), ({"steps": 0}, "steps >= 1"), ({"radius": 3}, "unknown option"),
])
def test_impossible_options_are_refused_in_one_line(pair, kwargs, word):
    with pytest.raises(DataError, match=word):
        subpixel_refine(np.full((H, W), 6.0, np.float32), *pair, **kwargs)


def test_bad_shapes_are_refused_and_no_disparity_is_returned_as_is(pair):
    left, right = pair
    with pytest.raises(DataError, match=r"\(60, 80\).*\(60, 90\)"):
        subpixel_refine(np.zeros((60, 80), np.float32), left, right)
    with pytest.raises(DataError, match="RGB"):
        subpixel_refine(np.zeros((H, W), np.float32), left[..., 0], right)
    assert np.isnan(subpixel_refine(np.full((H, W), np.inf, np.float32), left, right)).all()


# ----------------------------------------------------------------------------- calibrated views
@pytest.fixture(scope="module")
def views(gate_pair):
    """The photometric gate's scene (a textured slanted plane; view 0 the reference, views 1-3 the sources) with the
    sources' true depths for the visibility test: truth, images, cameras."""
    from deltaz.core.batch import MultiView
    from test_mvs import PlaneScene

    truth, ref, src, mv = gate_pair
    depth_src = torch.stack([PlaneScene().depth(v).float() for v in range(1, 4)])[None]
    return truth, ref, src, MultiView(mv.K_ref, mv.E_ref, depth_src, mv.K_src, mv.E_src)


def test_views_a_depth_biased_by_a_fraction_of_a_step_comes_back(views):
    """A plane sweep's depth off by 0.4 % everywhere (its winner pulled to a plane) ends nearer the truth: the mean
    error at least halved, holes kept."""
    truth, ref, src, mv = views
    biased = truth * (1 - VIEWS_SUBPIXEL_DEFAULTS["clip"])
    biased[:, :4, :4] = 0
    out = subpixel_views(biased, ref, src, mv)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    assert (out[inner] - truth[inner]).abs().mean() < 0.5 * (biased[inner] - truth[inner]).abs().mean()
    assert torch.equal(out[:, :4, :4], biased[:, :4, :4])


def test_views_right_depth_stays_and_bad_options_are_refused(views):
    truth, ref, src, mv = views
    out = subpixel_views(truth, ref, src, mv)
    assert ((out - truth).abs() / truth).mean() < 0.001  # a tenth of a percent of the depth at most, on average
    for kwargs, word in (({"step": 0.0}, "step > 0"), ({"accept": 0.5}, "accept <= reach"),
                         ({"smooth": 4}, "odd smooth"), ({"window": 7}, "unknown option")):
        with pytest.raises(DataError, match=word):
            subpixel_views(truth, ref, src, mv, **kwargs)
    with pytest.raises(DataError, match="one size"):
        subpixel_views(truth[:, :10], ref, src, mv)
