"""Notebook 05's exercise references equal the package's losses, and the loss explorer's numbers are the
loss values (deltaz.course.loss_lesson.contribution_maps)."""

from __future__ import annotations

import pytest
import torch

from deltaz.course import exercises, loss_lesson, widgets
from deltaz.course.solutions import nb05_losses
from deltaz.ops import losses
from deltaz.ops.losses import LossWeights, losses_for_batch


def _cases(name):
    return exercises.exercise(name).cases()


def test_masked_l1_is_the_depth_loss():
    for (refined, gt, mask), _ in _cases("masked_l1"):
        torch.testing.assert_close(nb05_losses.masked_l1(refined, gt, mask), losses.depth_loss(refined, gt, mask))


def test_edge_weights_are_the_smoothness_weights():
    g = torch.Generator().manual_seed(1)
    for (image,), kwargs in _cases("edge_weights"):
        B, _, H, W = image.shape
        depth = 600 + 50 * torch.rand(B, H, W, generator=g, dtype=torch.float64)
        (term_x, _), (term_y, _) = losses._smoothness_terms(depth, image, edge_sharpness=kwargs["alpha"])
        w_x, w_y = nb05_losses.edge_weights(image, **kwargs)
        inv = (1 / depth) / (1 / depth).flatten(1).mean(dim=1).view(-1, 1, 1)
        torch.testing.assert_close(term_x, (inv[..., :, 1:] - inv[..., :, :-1]).abs() * w_x)
        torch.testing.assert_close(term_y, (inv[..., 1:, :] - inv[..., :-1, :]).abs() * w_y)
        expected = losses.smoothness_loss(depth, image, edge_sharpness=kwargs["alpha"])
        torch.testing.assert_close(term_x.mean() + term_y.mean(), expected)


def test_improvement_loss_is_the_package_term():
    for (refined, init, gt, mask), _ in _cases("improvement_loss"):
        torch.testing.assert_close(nb05_losses.improvement_loss(refined, init, gt, mask),
                                   losses.improvement_loss(refined, init, gt, mask))


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A loss batch (reference + one source view) of a tiny scan, with a refined depth that is not the input."""
    from _tiny_scans import make_dataset

    root = make_dataset(tmp_path_factory.mktemp("nb05") / "data", n_scans=2, n_views=4)
    train, held_out = loss_lesson.lesson_batches(root, [0, 1], (16, 24), num_views=2)
    g = torch.Generator().manual_seed(0)
    init = held_out["depth_init"][:, 0]
    refined = torch.where(init > 0, init + 3 * torch.randn(init.shape, generator=g), init)
    return train, held_out, refined


def test_contribution_maps_average_to_the_loss_terms(batch):
    train, held_out, refined = batch
    assert train["depth"].shape[-2:] == (16, 24) and train["depth"].shape[:2] == (2, 2)
    maps = loss_lesson.contribution_maps(held_out, refined)
    values = loss_lesson.term_values(held_out, refined)
    assert set(maps) == set(values) == set(loss_lesson.NAMES)
    for name, value in values.items():
        assert value > 0, name
        assert torch.nanmean(maps[name]).item() == pytest.approx(value, rel=1e-5), name


def test_the_explorer_shows_the_loss_values(batch):
    _, held_out, refined = batch

    def compute_maps(weights, refined):
        return {name: m[0] for name, m in loss_lesson.contribution_maps(held_out, refined).items()}

    defaults = LossWeights()
    explorer = widgets.loss_explorer(refined, compute_maps, {n: getattr(defaults, n) for n in loss_lesson.NAMES})
    explorer.controls["weight_smoothness"].value = 100.0
    weights = LossWeights(smoothness=100.0)
    total, terms = losses_for_batch(held_out, {"depth_refined": refined,
                                               "delta_z": refined - held_out["depth_init"][:, 0]}, weights)
    for name in loss_lesson.NAMES:
        assert explorer.state["means"][name] == pytest.approx(getattr(weights, name) * terms[name].item(), rel=1e-5)
    assert explorer.state["total_mean"] == pytest.approx(total.item(), rel=1e-5)


def test_paired_effects_and_their_spread():
    assert loss_lesson.spread([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert loss_lesson.paired_effect([3.0, 4.0, 5.0], [1.0, 2.0, 3.0]) == pytest.approx((2.0, 0.0))
    assert loss_lesson.exceeds_spread([3.0, 4.0, 5.0], [1.0, 2.0, 3.0])
    assert not loss_lesson.exceeds_spread([3.0, 1.0, 5.0], [1.0, 2.0, 3.0])  # differences 2, −1, 2: mean 1 < std
    assert not loss_lesson.exceeds_spread([1.0, 2.0, 3.0], [3.0, 4.0, 5.0])  # higher, not lower
