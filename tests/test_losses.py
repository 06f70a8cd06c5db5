"""The five losses: zero where they should be, positive with finite gradients where not, invariances,
gradcheck in float64, all-invalid safety, occlusion masking, and the combined loss."""

from __future__ import annotations

import math

import pytest
import torch

from deltaz.core.batch import MultiView
from deltaz.core.geometry import get_ray_dirs_mask
from deltaz.ops.losses import (
    TERMS,
    LossWeights,
    compute_losses,
    depth_loss,
    improvement_loss,
    laplacian_nll_loss,
    losses_for_batch,
    magnitude_loss,
    multiview_consistency_loss,
    smoothness_loss,
)

F64 = torch.float64


# ---------------------------------------------------------------- analytic two-view scene


def rot_y(deg: float) -> torch.Tensor:
    a = math.radians(deg)
    return torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], dtype=F64)


def plane_depth(K, E, H, W, n, d):
    """z-depth of the world plane ``n·X = d`` seen by camera ``(K, E)``: ``(R n)·X_cam = d + (R n)·t``."""
    R, t = E[:3, :3], E[:3, 3]
    n_cam = R @ n
    rays, _ = get_ray_dirs_mask(K, H, W)
    return (d + n_cam @ t) / (rays @ n_cam)


def two_view_plane(H=24, W=32, deg=5.0):
    """A tilted plane ~700 mm away, seen by a reference camera at the origin and a rotated, shifted source.

    Returns batched ``K_ref (1,3,3), E_ref (1,3,4), depth_ref (1,H,W), K_src (1,1,3,3), E_src (1,1,3,4),
    depth_src (1,1,H,W)``, all float64 and mutually consistent by construction.
    """
    K = torch.tensor([[40.0, 0, (W - 1) / 2 + 0.3], [0, 40.0, (H - 1) / 2 - 0.2], [0, 0, 1]], dtype=F64)
    E_ref = torch.cat([torch.eye(3, dtype=F64), torch.zeros(3, 1, dtype=F64)], 1)
    R = rot_y(deg)
    C = torch.tensor([60.0, 5.0, 10.0], dtype=F64)
    E_src = torch.cat([R, (-R @ C)[:, None]], 1)
    n = torch.tensor([0.1, -0.15, 1.0], dtype=F64)
    n = n / n.norm()
    depth_ref = plane_depth(K, E_ref, H, W, n, 700.0)
    depth_src = plane_depth(K, E_src, H, W, n, 700.0)
    return K[None], E_ref[None], depth_ref[None], K[None, None], E_src[None, None], depth_src[None, None]


def mv(depth_ref, scene, depth_src=None, **kw):
    K_ref, E_ref, _, K_src, E_src, d_src = scene
    multiview = MultiView(K_ref, E_ref, d_src if depth_src is None else depth_src, K_src, E_src)
    return multiview_consistency_loss(depth_ref, multiview, **kw)


def finite_grad(loss, x):
    (g,) = torch.autograd.grad(loss, x, allow_unused=False)
    assert torch.isfinite(g).all()
    return g


# ---------------------------------------------------------------- depth


def test_depth_loss_zero_when_perfect_and_value_when_not():
    gt = 500 + 100 * torch.rand(2, 6, 7)
    mask = torch.ones_like(gt, dtype=torch.bool)
    assert depth_loss(gt.clone(), gt, mask) == 0
    refined = (gt + 3.0).requires_grad_(True)
    loss = depth_loss(refined, gt, mask)
    assert loss.item() == pytest.approx(3.0, abs=1e-4)
    assert finite_grad(loss, refined).abs().sum() > 0


def test_depth_loss_ignores_masked_and_no_gt_pixels():
    gt = 500 + 100 * torch.rand(1, 6, 7)
    gt[0, 0, 0] = 0  # no ground truth here
    mask = torch.ones_like(gt, dtype=torch.bool)
    mask[0, 2:4] = False
    refined = gt + 2.0
    base = depth_loss(refined, gt, mask)
    garbage = refined.clone()
    garbage[0, 2:4] = float("nan")
    garbage[0, 0, 0] = 1e9
    garbage = garbage.requires_grad_(True)
    loss = depth_loss(garbage, gt, mask)
    assert loss.item() == pytest.approx(base.item())
    g = finite_grad(loss, garbage)
    assert (g[0, 2:4] == 0).all() and g[0, 0, 0] == 0


def test_losses_all_invalid_are_zero_and_backpropagate():
    refined = torch.full((1, 4, 5), 600.0, requires_grad=True)
    gt = torch.zeros(1, 4, 5)
    mask = torch.zeros(1, 4, 5, dtype=torch.bool)
    for loss in (
        depth_loss(refined, gt, mask),
        improvement_loss(refined, refined.detach() + 1, gt, mask),
        magnitude_loss(refined, mask),
        smoothness_loss(refined * 0, torch.zeros(1, 3, 4, 5)),
        smoothness_loss(refined, refined.detach(), mask),
        laplacian_nll_loss(refined, gt, refined * 0, mask),
    ):
        assert loss.item() == 0 and torch.isfinite(loss)
        finite_grad(loss, refined)


# ---------------------------------------------------------------- improvement


def test_improvement_loss_zero_while_l1_positive():
    gt = 500 + 100 * torch.rand(1, 5, 6)
    mask = torch.ones_like(gt, dtype=torch.bool)
    init = gt + 4.0
    better = gt + 1.0
    assert improvement_loss(init, init, gt, mask) == 0  # kept as is
    assert improvement_loss(better, init, gt, mask) == 0  # improved
    assert depth_loss(better, gt, mask) > 0  # L1 still pulls: the terms differ


def test_improvement_loss_penalises_only_regressions():
    gt = 500 + 100 * torch.rand(1, 5, 6)
    mask = torch.ones_like(gt, dtype=torch.bool)
    init = gt + 4.0
    refined = init.clone()
    refined[0, 0, :3] = gt[0, 0, :3] + 10.0  # 3 pixels worse by 6 mm
    refined[0, 1:] = gt[0, 1:]  # the others perfect
    refined = refined.requires_grad_(True)
    loss = improvement_loss(refined, init, gt, mask)
    assert loss.item() == pytest.approx(3 * 6.0 / 30, rel=1e-4)
    g = finite_grad(loss, refined)
    assert (g[0, 0, :3] > 0).all() and (g[0, 1:] == 0).all()  # gradient only on the regressions
    assert improvement_loss(refined, init, gt, mask, margin_mm=6.5) == 0  # tolerated
    assert improvement_loss(init, init, gt, mask, margin_mm=-1.0).item() == pytest.approx(1.0)  # demands 1 mm


def test_improvement_loss_does_not_backprop_into_init():
    gt = 500 + 100 * torch.rand(1, 5, 6)
    init = (gt + 1.0).requires_grad_(True)
    loss = improvement_loss(gt + 3.0, init, gt, gt > 0)
    assert loss > 0 and not loss.requires_grad


# ---------------------------------------------------------------- magnitude


def test_magnitude_loss():
    assert magnitude_loss(torch.zeros(2, 4, 5)) == 0
    dz = torch.full((1, 4, 5), 100.0, requires_grad=True)
    loss = magnitude_loss(dz, scale_mm=1.0)
    assert loss.item() == pytest.approx(math.sqrt(100.0**2 + 1) - 1)  # ≈ |Δz| − s for large Δz
    g = finite_grad(loss, dz)
    assert (g > 0).all() and (g * dz.numel() <= 1).all()  # per-pixel gradient bounded by 1
    mask = torch.zeros(1, 4, 5, dtype=torch.bool)
    mask[0, 0, 0] = True
    small = torch.zeros(1, 4, 5)
    small[0, 0, 0] = 0.01
    assert magnitude_loss(small, mask).item() == pytest.approx(0.01**2 / 2, rel=1e-2)  # quadratic below s


# ---------------------------------------------------------------- smoothness


def test_smoothness_zero_for_flat_depth_and_positive_for_bumpy():
    flat = torch.full((1, 6, 7), 650.0)
    image = torch.rand(1, 3, 6, 7)
    assert smoothness_loss(flat, image) == 0
    bumpy = (flat + 20 * torch.rand(1, 6, 7)).requires_grad_(True)
    loss = smoothness_loss(bumpy, image)
    assert loss > 0
    assert finite_grad(loss, bumpy).abs().sum() > 0


def test_smoothness_is_invariant_to_depth_scale():
    depth = 500 + 100 * torch.rand(2, 6, 7, dtype=F64)
    image = torch.rand(2, 3, 6, 7, dtype=F64)
    for guide in (image, depth):
        a = smoothness_loss(depth, guide)
        b = smoothness_loss(3.7 * depth, 3.7 * guide if guide is depth else guide)
        assert a.item() == pytest.approx(b.item(), rel=1e-10)


def test_smoothness_is_edge_aware():
    """A depth step along an image edge costs less than the same step in a flat image region."""
    H, W = 8, 10
    depth = torch.full((1, H, W), 500.0)
    depth[..., 5:] = 800.0  # step between columns 4 and 5
    edge_image = torch.zeros(1, 3, H, W)
    edge_image[..., 5:] = 1.0
    flat_image = torch.zeros(1, 3, H, W)
    assert smoothness_loss(depth, edge_image) < 0.5 * smoothness_loss(depth, flat_image)


def test_smoothness_safe_with_holes():
    depth = 500 + 100 * torch.rand(1, 6, 7)
    depth[0, 2, 3] = 0
    depth[0, 0] = 0
    depth = depth.requires_grad_(True)
    loss = smoothness_loss(depth, torch.rand(1, 3, 6, 7))
    g = finite_grad(loss, depth)
    assert torch.isfinite(loss) and g[0, 2, 3] == 0
    with pytest.raises(ValueError, match="guide"):
        smoothness_loss(depth, torch.rand(1, 3, 7, 6))


# ---------------------------------------------------------------- multi-view


def test_multiview_zero_for_consistent_plane():
    scene = two_view_plane()
    depth_ref = scene[2]
    loss = mv(depth_ref, scene)
    assert loss.item() < 0.02  # mm; only bilinear interpolation of a non-linear depth remains
    # enough pixels really compared: a 5 mm offset shows up as ~5 mm
    assert mv(depth_ref + 5.0, scene).item() == pytest.approx(5.0, rel=0.05)


def test_multiview_positive_with_finite_gradients_when_inconsistent():
    scene = two_view_plane()
    depth_ref = (scene[2] + 8 * torch.rand_like(scene[2]) - 4).requires_grad_(True)
    loss = mv(depth_ref, scene)
    assert loss > 1.0
    g = finite_grad(loss, depth_ref)
    assert g.abs().sum() > 0


def test_multiview_invariant_to_invalid_pixels():
    scene = two_view_plane()
    depth_ref = scene[2] + 2.0
    mask = torch.ones_like(depth_ref, dtype=torch.bool)
    mask[0, :, :8] = False
    base = mv(depth_ref, scene, mask=mask)
    changed = depth_ref.clone()
    changed[0, :, :8] = 123.0  # excluded reference pixels
    assert mv(changed, scene, mask=mask).item() == pytest.approx(base.item())
    # source holes don't blend into the samples: the loss with a hole is that of the pixels kept
    depth_src = scene[5].clone()
    depth_src[0, 0, 10:14, 12:16] = 0
    with_hole = mv(scene[2], scene, depth_src=depth_src)
    assert with_hole.item() < 0.02
    # negative/NaN source values are holes too
    depth_src[0, 0, 10:14, 12:16] = float("nan")
    assert mv(scene[2], scene, depth_src=depth_src).item() == pytest.approx(with_hole.item())


def test_multiview_ignores_occluded_but_penalises_free_space_violations():
    scene = two_view_plane()
    depth_ref = scene[2]
    occluded = scene[5].clone()
    occluded[0, 0, 6:18, 8:24] -= 200.0  # an object in front of the plane in the source view
    assert mv(depth_ref, scene, depth_src=occluded).item() < 0.02
    assert mv(depth_ref, scene, depth_src=occluded, occlusion_tol_rel=1.0).item() > 50  # unmasked: huge
    behind = scene[5].clone()
    behind[0, 0, 6:18, 8:24] += 200.0  # source sees *behind* our point: free space violated
    assert mv(depth_ref, scene, depth_src=behind).item() > 50


def test_multiview_all_invalid_and_no_sources():
    scene = two_view_plane()
    depth_ref = torch.zeros_like(scene[2], requires_grad=True)
    loss = mv(depth_ref, scene)
    assert loss.item() == 0
    finite_grad(loss, depth_ref)
    loss = mv(scene[2].clone().requires_grad_(True), scene, depth_src=torch.zeros_like(scene[5]))
    assert loss.item() == 0
    K_ref, E_ref, _, K_src, E_src, d_src = scene
    empty = multiview_consistency_loss(scene[2], MultiView(K_ref, E_ref, d_src[:, :0], K_src[:, :0], E_src[:, :0]))
    assert empty.item() == 0


# ---------------------------------------------------------------- gradcheck (float64, tiny inputs)


def test_gradcheck_depth_improvement_smoothness():
    torch.manual_seed(0)
    gt = 500 + 100 * torch.rand(1, 4, 5, dtype=F64)
    mask = torch.rand(1, 4, 5) > 0.2
    init = gt + 10 * torch.rand(1, 4, 5, dtype=F64) + 2.0
    refined = (gt + 4 * torch.rand(1, 4, 5, dtype=F64) + 0.5).requires_grad_(True)  # away from |·| kinks
    image = torch.rand(1, 3, 4, 5, dtype=F64)
    assert torch.autograd.gradcheck(lambda r: depth_loss(r, gt, mask), (refined,))
    worse = (gt + 15 + 3 * torch.rand(1, 4, 5, dtype=F64)).requires_grad_(True)  # every pixel regresses
    assert torch.autograd.gradcheck(lambda r: improvement_loss(r, init, gt, mask), (worse,))
    assert torch.autograd.gradcheck(lambda r: magnitude_loss(r - gt), (refined,))
    bumpy = (500 + 100 * torch.rand(1, 4, 5, dtype=F64)).requires_grad_(True)  # no equal neighbours
    assert torch.autograd.gradcheck(lambda d: smoothness_loss(d, image), (bumpy,))
    assert torch.autograd.gradcheck(lambda d: smoothness_loss(d, init), (bumpy,))


def test_gradcheck_multiview():
    scene = two_view_plane(H=4, W=5, deg=2.0)
    depth_src = scene[5] - 3.0  # residuals ~3 mm, away from the |·| kink and the occlusion threshold
    depth_ref = (scene[2] + 0.1 * torch.rand_like(scene[2])).requires_grad_(True)
    assert mv(depth_ref, scene, depth_src=depth_src).item() > 1
    assert torch.autograd.gradcheck(lambda d: mv(d, scene, depth_src=depth_src), (depth_ref,))


# ---------------------------------------------------------------- confidence NLL


def test_laplacian_nll_minimised_at_residual():
    gt = torch.full((1, 2, 3), 600.0)
    refined = gt + 4.0
    values = [laplacian_nll_loss(refined, gt, torch.full_like(gt, math.log(b))).item() for b in (1.0, 4.0, 16.0)]
    assert values[1] < values[0] and values[1] < values[2]


# ---------------------------------------------------------------- combined


def test_compute_losses_perfect_and_weighted_sum():
    scene = two_view_plane()
    K_ref, E_ref, depth_gt, K_src, E_src, depth_src = scene
    multiview = {"K_ref": K_ref, "E_ref": E_ref, "depth_src": depth_src, "K_src": K_src, "E_src": E_src}
    mask = depth_gt > 0
    flat = torch.full_like(depth_gt, 700.0)
    total, terms = compute_losses(flat, torch.zeros_like(flat), flat, flat, mask)
    assert set(terms) == set(TERMS) and total.item() == 0
    init = depth_gt + 3.0
    refined = (depth_gt + 1.0).requires_grad_(True)
    weights = LossWeights()
    total, terms = compute_losses(refined, refined - init, init, depth_gt, mask, weights, multiview=multiview)
    expected = sum(getattr(weights, k) * terms[k] for k in TERMS if k != "total")
    assert total.item() == pytest.approx(expected.item())
    assert terms["total"].item() == pytest.approx(total.item())
    assert terms["multiview"].item() == pytest.approx(1.0, rel=0.1)
    assert all(not t.requires_grad for t in terms.values())
    finite_grad(total, refined)
    only_depth = LossWeights(improvement=0, magnitude=0, smoothness=0, multiview=0)
    total, terms = compute_losses(refined, refined - init, init, depth_gt, mask, only_depth, multiview=multiview)
    assert total.item() == pytest.approx(terms["depth"].item())


def test_losses_for_batch_uses_view_0_as_reference():
    scene = two_view_plane()
    K_ref, E_ref, depth_ref, K_src, E_src, depth_src = scene
    depth = torch.stack([depth_ref[:, None], depth_src], dim=1)[:, :, 0]  # (1, 2, H, W)
    batch = {
        "depth": depth,
        "depth_init": depth + 2.0,
        "mask": depth > 0,
        "intrinsics": torch.cat([K_ref[:, None], K_src], 1),
        "extrinsics": torch.cat([E_ref[:, None], E_src], 1),
        "image": torch.rand(1, 2, 3, *depth.shape[-2:], dtype=F64),
    }
    out = {"depth_refined": depth_ref + 1.0, "delta_z": torch.full_like(depth_ref, -1.0)}
    total, terms = losses_for_batch(batch, out)
    assert terms["depth"].item() == pytest.approx(1.0)
    assert terms["improvement"].item() == 0
    assert terms["multiview"].item() == pytest.approx(1.0, rel=0.1)
    assert torch.isfinite(total)


def test_loss_maps_agree_with_the_scalar_losses():
    """Each per-pixel map's masked mean is its scalar loss (the maps are for display, not a second formula)."""
    from deltaz.ops import losses as L

    g = torch.Generator().manual_seed(3)
    B, H, W = 2, 6, 7
    depth_gt = 600 + 5 * torch.rand(B, H, W, generator=g, dtype=torch.float64)
    depth_gt[0, 0, 0] = 0
    depth_init = depth_gt + torch.randn(B, H, W, generator=g, dtype=torch.float64)
    delta_z = torch.randn(B, H, W, generator=g, dtype=torch.float64)
    depth_refined = depth_init + delta_z
    mask = depth_gt > 0
    maps = L.loss_maps(depth_refined, delta_z, depth_init, depth_gt, mask)
    assert set(maps) == {"depth", "improvement", "magnitude", "smoothness"}
    for name, scalar in [
        ("depth", L.depth_loss(depth_refined, depth_gt, mask)),
        ("improvement", L.improvement_loss(depth_refined, depth_init, depth_gt, mask)),
        ("magnitude", L.magnitude_loss(delta_z, depth_init > 0)),
    ]:
        values, keep = getattr(L, f"{name}_loss_map")(*(
            (depth_refined, depth_gt, mask) if name == "depth"
            else (depth_refined, depth_init, depth_gt, mask) if name == "improvement"
            else (delta_z, depth_init > 0)
        ))
        torch.testing.assert_close(values[keep].mean(), scalar)
        assert torch.equal(maps[name], torch.where(keep, values, torch.zeros_like(values)))
    assert maps["smoothness"].shape == (B, H, W) and (maps["smoothness"] >= 0).all()
    # The smoothness map holds every weighted pair term once: its sum equals the sum of both terms.
    (tx, mx), (ty, my) = L._smoothness_terms(depth_refined, depth_init)
    torch.testing.assert_close(maps["smoothness"].sum(), tx[mx].sum() + ty[my].sum())


def test_magnitude_term_ignores_holes_of_the_input():
    """A hole's Δz is a fill (hundreds of mm with prefill_holes), not a correction: the magnitude term of
    compute_losses counts only pixels with an input depth."""
    from deltaz.ops import losses as L

    gt = torch.full((1, 4, 5), 600.0)
    init = gt.clone()
    init[0, 1, 2] = 0.0  # a hole, filled by Δz = 600 mm
    delta_z = torch.zeros_like(gt)
    delta_z[0, 1, 2] = 600.0
    _, terms = L.compute_losses(init + delta_z, delta_z, init, gt, None)
    assert float(terms["magnitude"]) == 0.0
    delta_z[0, 0, 0] = 3.0  # a real correction of a covered pixel counts
    _, terms = L.compute_losses(init + delta_z, delta_z, init, gt, None)
    assert float(terms["magnitude"]) > 0.0
