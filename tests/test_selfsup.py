"""Self-supervised losses (deltaz.ops.selfsup): each term is 0 on a consistent scene, positive with finite
gradients otherwise; and the whole objective is lower at the ground truth than at the input or a refiner's
output on a small textured scene."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deltaz.core.batch import MultiView
from deltaz.ops import selfsup
from deltaz.core.geometry import backproject_depth, camera_to_world, warp
from tests._tiny_scans import _look_at, _render_depth

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 24, 32


def _stereo_pair(baseline=40.0):
    """Rectified pair: ref ``E = [I | 0]``, src ``E = [I | (−B, 0, 0)]``; depth varies with the row only, so the
    source sees each row at the same row and consistency is exact (no interpolation error)."""
    K = torch.tensor([[40.0, 0, 15.5], [0, 40.0, 11.5], [0, 0, 1]], dtype=torch.float64)
    E_ref = torch.cat([torch.eye(3, dtype=torch.float64), torch.zeros(3, 1, dtype=torch.float64)], 1)
    E_src = E_ref.clone()
    E_src[0, 3] = -baseline
    rows = 600.0 + 2.0 * torch.arange(H, dtype=torch.float64)
    depth = rows[:, None].expand(H, W).clone()
    gen = torch.Generator().manual_seed(0)
    image_src = torch.rand(1, 3, H, W, generator=gen, dtype=torch.float64) * 0.6 + 0.2
    # the reference image is the source seen through the true depth: photo-consistent by construction
    image_ref, valid = warp(image_src, depth[None], K[None], E_ref[None], K[None], E_src[None])
    image_ref = torch.where(valid[:, None], image_ref, torch.full_like(image_ref, 0.5))
    return {"K": K, "E_ref": E_ref, "E_src": E_src, "depth": depth, "image_ref": image_ref, "image_src": image_src}


def _inputs(pair, depth_init=None, confidence=None) -> selfsup.SelfSupInputs:
    K = pair["K"][None]
    return selfsup.SelfSupInputs(
        depth_init=(pair["depth"] if depth_init is None else depth_init)[None],
        image=pair["image_ref"], K=K, E=pair["E_ref"][None], image_src=pair["image_src"][:, None],
        K_src=K[:, None], E_src=pair["E_src"][None, None], confidence=confidence,
    )


def _wavy(depth: torch.Tensor, amplitude: float = 3.0) -> torch.Tensor:
    u = torch.arange(depth.shape[-1], dtype=depth.dtype)
    return depth + amplitude * torch.sin(u / 2.0)


def _grad_of(loss_fn, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    depth = depth.clone().requires_grad_(True)
    loss = loss_fn(depth)
    loss.backward()
    return loss.detach(), depth.grad


def test_photometric_zero_on_consistent_pair_positive_with_gradient_otherwise():
    pair = _stereo_pair()
    x = _inputs(pair)
    fn = lambda d: selfsup.photometric_loss(d[None], x.image, x.image_src, x.multiview(),
                                            normalise_exposure=False)
    assert float(fn(pair["depth"])) < 1e-6
    loss, grad = _grad_of(fn, _wavy(pair["depth"], 100.0))  # ±0.4 px of disparity
    assert loss > 0.01 and torch.isfinite(grad).all() and grad.abs().sum() > 0
    # exposure normalisation: a per-view gain does not read as a depth error
    x_gain = _inputs(pair)
    x_gain.image_src = x_gain.image_src * 0.7
    assert float(selfsup.photometric_loss(pair["depth"][None], x_gain.image, x_gain.image_src, x.multiview(),
                                          normalise_exposure=True)) < 0.02


def test_masked_photometric_error_ignores_the_pixels_that_do_not_count():
    """With every pixel counted it is the plain error; a pixel that does not count adds nothing to its neighbours'
    SSIM, where the plain error (its colour filled with the reference's) reads it as a perfect match."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 12, 14, generator=g), torch.rand(1, 3, 12, 14, generator=g)
    full = torch.ones(1, 12, 14, dtype=torch.bool)
    assert torch.allclose(selfsup.masked_photometric_error(a, b, full), selfsup.photometric_error(a, b), atol=1e-5)
    mask = full.clone()
    mask[0, 5, 6] = False
    filled = b.clone()
    filled[..., 5, 6] = a[..., 5, 6]  # how photometric_loss_map fills a pixel that does not count
    plain = selfsup.photometric_error(a, b)[0, 5, 7], selfsup.photometric_error(a, filled)[0, 5, 7]
    masked = [selfsup.masked_photometric_error(a, x, mask)[0, 5, 7] for x in (b, filled)]
    assert plain[1] < plain[0] - 1e-3  # the fill lowers the neighbour's error ...
    assert torch.allclose(masked[0], masked[1], atol=1e-6)  # ... the masked error does not see it


def test_photometric_masks_holes_and_out_of_frame():
    pair = _stereo_pair()
    x = _inputs(pair)
    depth = pair["depth"].clone()
    depth[:, :5] = 0  # holes
    error, keep = selfsup.photometric_loss_map(depth[None], x.image, x.image_src, x.multiview())
    assert not keep[0, :, :5].any() and (error[~keep] == 0).all()
    # points behind the source camera or out of frame never count, and never give NaN
    far = torch.full_like(depth, 1.0)  # 1 mm: lands far outside the source frame
    error, keep = selfsup.photometric_loss_map(far[None], x.image, x.image_src, x.multiview())
    assert not keep.any() and torch.isfinite(error).all()
    loss, grad = _grad_of(lambda d: selfsup.photometric_loss(d[None], x.image, x.image_src,
                                                             x.multiview()), far)
    assert float(loss) == 0.0 and torch.isfinite(grad).all()


def test_occlusion_handled_by_the_minimum_over_sources():
    pair = _stereo_pair()
    x = _inputs(pair)
    occluded = pair["image_src"].clone()
    occluded[..., 10:20] = 0.0  # a source that sees something else there
    both = torch.stack([occluded[0], pair["image_src"][0]])[None]  # (1, 2, 3, H, W)
    two = MultiView(x.K, x.E, None, x.K_src.expand(1, 2, 3, 3), x.E_src.expand(1, 2, 3, 4))
    error, keep = selfsup.photometric_loss_map(pair["depth"][None], x.image, both, two, normalise_exposure=False)
    assert float(error[keep].max()) < 1e-6


def test_visibility_from_source_depths_drops_occluded_pixels():
    pair = _stereo_pair()
    x = _inputs(pair)
    occluded = pair["image_src"].clone()
    occluded[..., 10:20] = 0.0  # the single source sees an occluder there ...
    depth_src = pair["depth"].clone()[None, None]
    depth_src[..., 10:20] = 300.0  # ... which its depth map puts in front of the reference's points
    args = (pair["depth"][None], x.image, occluded[:, None])
    error_blind, keep_blind = selfsup.photometric_loss_map(*args, x.multiview(), normalise_exposure=False)
    error, keep = selfsup.photometric_loss_map(*args, x.multiview(depth_src), normalise_exposure=False)
    assert float(error_blind[keep_blind].max()) > 0.1  # without the test, the occluder reads as a depth error
    # only the occluder's boundary (bilinear/SSIM neighbourhood) is left
    assert float(error[keep].mean()) < 0.25 * float(error_blind[keep_blind].mean()) and keep.sum() < keep_blind.sum()


def test_visibility_reads_source_depths_coarser_than_the_source_images():
    """Images at 2× the depth grid (``K_src`` for the image): the source depth is read at the scaled landing point."""
    pair = _stereo_pair()
    x = _inputs(pair)
    occluded = pair["image_src"].clone()
    occluded[..., 10:20] = 0.0
    image_src_2x = torch.nn.functional.interpolate(occluded, scale_factor=2, mode="nearest")[:, None]
    K_src_2x = x.K_src.clone()
    K_src_2x[..., :2, :] *= 2
    depth_src = pair["depth"].clone()[None, None]  # on the depth grid, H×W
    depth_src[..., 10:20] = 300.0
    blind = MultiView(x.K, x.E, None, K_src_2x, x.E_src)
    seeing = MultiView(x.K, x.E, depth_src, K_src_2x, x.E_src)
    args = (pair["depth"][None], x.image, image_src_2x)
    error_blind, keep_blind = selfsup.photometric_loss_map(*args, blind, normalise_exposure=False)
    error, keep = selfsup.photometric_loss_map(*args, seeing, normalise_exposure=False)
    clean = torch.nn.functional.interpolate(pair["image_src"], scale_factor=2, mode="nearest")[:, None]
    error_clean, _ = selfsup.photometric_loss_map(pair["depth"][None], x.image, clean, blind, normalise_exposure=False)
    excess_blind = float((error_blind - error_clean)[keep_blind].mean())
    excess = float((error - error_clean)[keep].mean())  # what the occluder adds to the pixels that still count
    assert excess_blind > 0.05 and excess < 0.25 * excess_blind and keep.sum() < keep_blind.sum()


def test_geometric_zero_on_consistent_depths_positive_with_gradient_otherwise():
    pair = _stereo_pair()
    x = _inputs(pair)
    depth_src = pair["depth"][None, None]  # the same row-wise depth is the source's true depth
    fn = lambda d: selfsup.geometric_loss(d[None], x.multiview(depth_src))
    assert float(fn(pair["depth"])) < 1e-9
    loss, grad = _grad_of(fn, pair["depth"] * 1.01)
    assert loss > 1e-3 and torch.isfinite(grad).all() and grad.abs().sum() > 0
    # gradient also reaches the sources' refined depths
    src = depth_src.clone().requires_grad_(True)
    selfsup.geometric_loss(pair["depth"][None] * 1.01, x.multiview(src)).backward()
    assert torch.isfinite(src.grad).all() and src.grad.abs().sum() > 0


def test_smoothness_reused_and_anchor_zero_at_input():
    pair = _stereo_pair()
    flat = torch.full((1, H, W), 700.0, dtype=torch.float64)
    x = _inputs(pair, depth_init=flat[0])
    _, terms = selfsup.selfsup_losses(flat, x)
    assert float(terms["smoothness"]) == 0.0 and float(terms["anchor"]) == 0.0
    loss, grad = _grad_of(lambda d: selfsup.anchor_loss(d, flat, torch.full_like(flat, 0.5)), flat + 7.0)
    assert abs(float(loss) - 0.5 * 7.0 / 700.0) < 1e-9 and torch.isfinite(grad).all()
    holes = flat.clone()
    holes[..., :4] = 0
    assert float(selfsup.anchor_loss(holes + 1.0, holes)) == pytest.approx(1.0 / 700.0)  # holes do not count
    loss, grad = _grad_of(lambda d: selfsup.selfsup_losses(d, x)[1]["smoothness"] * 0 +
                          selfsup.selfsup_losses(d, x)[0], _wavy(flat))
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_input_agreement_one_when_consistent_lower_when_not():
    pair = _stereo_pair()
    x = _inputs(pair)
    conf = selfsup.input_agreement(pair["depth"][None], x.multiview(pair["depth"][None, None]))
    assert conf.shape == (1, H, W) and conf.max() == 1.0
    covered = conf > 0
    assert covered.float().mean() > 0.5
    wrong = selfsup.input_agreement(pair["depth"][None] * 1.05, x.multiview(pair["depth"][None, None]))
    assert float(wrong.sum()) < float(conf.sum()) * 0.1


# ----------------------------------------------------------------------------- a small textured scene
def _texture(points: np.ndarray) -> np.ndarray:
    """Lambertian colour of world points (mm): a smooth pattern, the same from every camera."""
    X, Y, Z = points[..., 0], points[..., 1], points[..., 2]
    r = 0.5 + 0.3 * np.sin(X / 6.0) * np.cos(Y / 9.0)
    g = 0.5 + 0.3 * np.sin((X + Y) / 7.0 + Z / 11.0)
    b = 0.5 + 0.2 * np.cos(Y / 5.0)
    return np.stack([r, g, b], axis=0)


def textured_scene(n_views: int = 3, h: int = 48, w: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    """A plane with a sphere (tests/_tiny_scans geometry) seen by ``n_views`` cameras, with photo-consistent
    images; returns stacked ``depth (N, h, w)``, ``image (N, 3, h, w)``, ``K (N, 3, 3)``, ``E (N, 3, 4)``."""
    K = np.array([[90.4 * w / 40, 0, 20.7 * w / 40], [0, 90.1 * h / 32, 16.6 * h / 32], [0, 0, 1]])
    sphere, radius = np.array([5.0, -8.0, -10.0]), 30.0
    plane_n = np.array([0.1, -0.1, 1.0]) / np.linalg.norm([0.1, -0.1, 1.0])
    depths, images, Es = [], [], []
    for i in range(n_views):
        angle = np.deg2rad(-6 + 12 * i / max(n_views - 1, 1))
        E = _look_at(np.array([600 * np.sin(angle), 10.0 * i, -600 * np.cos(angle)]), np.zeros(3))
        depth = _render_depth(K, E, h, w, sphere, radius, -plane_n, -20.0)
        points = camera_to_world(backproject_depth(torch.from_numpy(depth).double(), torch.from_numpy(K)),
                                 torch.from_numpy(E)).numpy()
        depths.append(depth)
        images.append(_texture(points))
        Es.append(E)
    return {"depth": torch.tensor(np.stack(depths), dtype=torch.float32),
            "image": torch.tensor(np.stack(images), dtype=torch.float32).clamp(0, 1),
            "K": torch.tensor(np.stack([K] * n_views), dtype=torch.float32),
            "E": torch.tensor(np.stack(Es), dtype=torch.float32)}


def _objective(scene, depth_all: torch.Tensor, depth_init: torch.Tensor) -> dict[str, float]:
    """Self-supervised terms of view 0 against views 1…, sources' depths = the same candidate's."""
    x = selfsup.SelfSupInputs(depth_init=depth_init[:1], image=scene["image"][:1], K=scene["K"][:1],
                              E=scene["E"][:1], image_src=scene["image"][None, 1:], K_src=scene["K"][None, 1:],
                              E_src=scene["E"][None, 1:])
    _, terms = selfsup.selfsup_losses(depth_all[:1], x, depth_all[None, 1:])
    return {k: float(v) for k, v in terms.items()}


def test_objective_lower_at_ground_truth_than_at_input_and_refiner_output():
    from deltaz.model import DeltaZUnet, refine

    scene = textured_scene()
    gt = scene["depth"]
    gen = torch.Generator().manual_seed(1)
    noise = 4.0 * torch.randn(gt.shape, generator=gen) + 3.0 * torch.sin(torch.arange(gt.shape[-1]) / 3.0)
    depth_init = torch.where(gt > 0, gt + noise, torch.zeros_like(gt))
    torch.manual_seed(0)
    model = DeltaZUnet(in_channels=4, base_channel=4, depth=2, depth_scale_rel=0.03)
    torch.nn.init.normal_(model.head.weight, std=0.05)  # an untrained, non-identity refiner
    with torch.no_grad():
        refined = refine(model, depth_init, scene["image"], keep_holes=True)["depth_refined"]
    at_gt = _objective(scene, gt, depth_init)
    at_input = _objective(scene, depth_init, depth_init)
    at_refined = _objective(scene, refined, depth_init)
    assert at_gt["total"] < at_input["total"] and at_gt["total"] < at_refined["total"], (at_gt, at_input, at_refined)
    assert at_gt["photometric"] < 0.75 * at_input["photometric"]


# ----------------------------------------------------------------------------- supervised multiview_target
def test_multiview_target_refined_uses_the_sources_refined_depths():
    from deltaz.engine.config import TrainConfig
    from deltaz.core.errors import ConfigError
    from deltaz.ops.losses import LossWeights, losses_for_batch

    pair = _stereo_pair()
    depth = torch.stack([pair["depth"], pair["depth"]])[None].float()  # (1, 2, H, W): ref + one source
    batch = {"depth": depth, "depth_init": depth, "mask": depth > 0,
             "intrinsics": pair["K"].float().expand(1, 2, 3, 3), "extrinsics": torch.stack([pair["E_ref"], pair["E_src"]])[None].float()}
    out = {"depth_refined": depth[:, 0], "delta_z": torch.zeros_like(depth[:, 0]),
           "depth_src_refined": depth[:, 1:] * 1.02}
    w = LossWeights(depth=0, improvement=0, magnitude=0, smoothness=0, multiview=1)
    _, gt_terms = losses_for_batch(batch, out, w)  # default "gt": today's behaviour, ignores the refined sources
    _, ref_terms = losses_for_batch(batch, out, w, multiview_target="refined")
    assert float(gt_terms["multiview"]) < 1e-4 and float(ref_terms["multiview"]) > 5.0
    with pytest.raises(ValueError, match="depth_src_refined"):
        losses_for_batch(batch, {k: v for k, v in out.items() if k != "depth_src_refined"}, w, "refined")
    assert TrainConfig(multiview_target="refined").multiview_target == "refined"
    with pytest.raises(ConfigError, match="multiview_target"):
        TrainConfig(multiview_target="refined", multiscale=True)


def test_training_step_with_refined_multiview_target(tmp_path):
    from deltaz.engine.config import TrainConfig
    from deltaz.engine.train import train
    from tests._tiny_scans import make_dataset

    root = make_dataset(tmp_path / "data", n_scans=2, n_views=3, initial=True, images=True)
    cfg = TrainConfig(data_root=str(root), batch_size=2, num_views=3, num_epochs=1, val_split=0.5, base_channel=4,
                      unet_depth=2, use_images=True, device="cpu", max_steps=2, multiview_target="refined",
                      checkpoint_dir=str(tmp_path / "ck"), log_dir=str(tmp_path / "logs"), progress=False,
                      image_log_every=0)
    result = train(cfg)
    assert result["steps"] == 2 and result["config"]["multiview_target"] == "refined"
