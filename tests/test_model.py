"""DeltaZUnet and MVSNetRefine: identity at init, shapes, holes, image and confidence paths, gradients,
channels_last, configs, and a tiny overfit."""

from __future__ import annotations

import pytest
import torch

from deltaz.core.errors import ConfigError
from deltaz.ops.losses import depth_loss
from deltaz.model import (
    DeltaZUnet,
    MVSNetRefine,
    build_model,
    model_config,
    normalise_depth,
    refine,
)

SMALL = {"base_channel": 4, "depth": 3}


def random_depth(B=2, H=20, W=24, holes=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    depth = 425 + 500 * torch.rand(B, H, W, generator=g)
    depth[torch.rand(B, H, W, generator=g) < holes] = 0
    return depth


def perturb_head(model):
    """Untrained models are the identity; give the head some weight so the outputs are non-trivial."""
    with torch.no_grad():
        model.head.weight.normal_(0, 0.1)
        model.head.bias.normal_(0, 0.1)
    return model


@pytest.mark.parametrize("name", ["deltaz_unet", "deltaz_select", "mvsnet_refine"])
@pytest.mark.parametrize("in_channels", [1, 4])
def test_identity_at_init(name, in_channels):
    torch.manual_seed(0)
    model = build_model(name, in_channels=in_channels, base_channel=4)
    depth_init = random_depth()
    image = torch.rand(2, 3, 20, 24) if in_channels == 4 else None
    out = refine(model, depth_init, image=image)
    assert (out["delta_z"] == 0).all()
    assert torch.equal(out["depth_refined"], depth_init)
    assert out["depth_refined"].shape == depth_init.shape and out["confidence"] is None


@pytest.mark.parametrize("H,W", [(127, 161), (30, 41), (1, 1), (16, 16), (5, 3)])
def test_any_size(H, W):
    model = perturb_head(DeltaZUnet(**SMALL))
    delta_z = model(random_depth(1, H, W))
    assert delta_z.shape == (1, 1, H, W)
    assert torch.isfinite(delta_z).all() and delta_z.abs().sum() > 0


def test_accepts_b1hw_and_bhw():
    model = perturb_head(DeltaZUnet(**SMALL)).eval()
    depth = random_depth(2, 12, 14)
    assert torch.allclose(model(depth), model(depth[:, None]))
    out = refine(model, depth[:, None])
    assert out["depth_refined"].shape == (2, 1, 12, 14)


@pytest.mark.parametrize("name", ["deltaz_unet", "deltaz_select", "mvsnet_refine"])
def test_no_nan_with_holes_all_zero_and_nonfinite(name):
    model = perturb_head(build_model(name, in_channels=1, base_channel=4))
    for depth in (random_depth(2, 12, 14, holes=0.9), torch.zeros(2, 12, 14), torch.full((2, 12, 14), 700.0)):
        for depth_range in (None, torch.tensor([[425.0, 935.0], [600.0, 600.0]])):
            assert torch.isfinite(model(depth, depth_range=depth_range)).all()
    weird = random_depth(1, 12, 14)
    weird[0, 0, 0] = float("nan")
    weird[0, 0, 1] = float("inf")
    weird[0, 0, 2] = -5.0
    assert torch.isfinite(model(weird)).all()


def test_normalise_depth():
    depth = torch.tensor([[[[0.0, 425.0], [935.0, 680.0]]]])
    norm, valid, centre, half = normalise_depth(depth, torch.tensor([[425.0, 935.0]]))
    assert norm[0, 0, 0, 0] == 0 and not valid[0, 0, 0, 0]  # hole stays 0
    assert torch.allclose(norm[0, 0].flatten()[1:], torch.tensor([-1.0, 1.0, 0.0]))
    assert centre.item() == 680 and half.item() == 255
    norm, valid, centre, half = normalise_depth(depth)  # per-sample range of the valid pixels
    assert centre.item() == 680 and half.item() == 255
    norm, valid, centre, half = normalise_depth(torch.zeros(1, 1, 3, 3))  # all holes
    assert (norm == 0).all() and half.item() >= 1 and torch.isfinite(centre).all()
    with pytest.raises(ValueError, match="depth_range"):
        normalise_depth(depth, torch.tensor([425.0, 935.0]))


def test_delta_z_scales_with_depth_range():
    """The head works in normalised units: Δz in mm is the head output times the half span."""
    model = perturb_head(DeltaZUnet(**SMALL)).eval()
    depth = random_depth(1, 8, 8, holes=0)
    a = model(depth, depth_range=torch.tensor([[400.0, 1000.0]]))
    b = model(2 * depth, depth_range=torch.tensor([[800.0, 2000.0]]))
    assert torch.allclose(b, 2 * a, rtol=1e-4, atol=1e-4)


def test_image_guidance():
    torch.manual_seed(0)
    model = perturb_head(DeltaZUnet(in_channels=4, **SMALL)).eval()
    depth = random_depth(1, 12, 14)
    a = model(depth, image=torch.zeros(1, 3, 12, 14))
    b = model(depth, image=torch.ones(1, 3, 12, 14))
    assert not torch.allclose(a, b)  # the image reaches the output
    with pytest.raises(ConfigError, match="image"):
        model(depth)
    with pytest.raises(ValueError, match="image"):
        model(depth, image=torch.zeros(1, 3, 14, 12))
    with pytest.raises(ConfigError, match="in_channels=4"):
        DeltaZUnet(in_channels=1, **SMALL)(depth, image=torch.zeros(1, 3, 12, 14))
    with pytest.raises(ConfigError, match="in_channels"):
        DeltaZUnet(in_channels=3)


@pytest.mark.parametrize("name", ["deltaz_unet", "deltaz_select", "mvsnet_refine"])
def test_confidence_head(name):
    model = build_model(name, in_channels=1, base_channel=4, out_confidence=True)
    depth = random_depth(2, 12, 14)
    delta_z, log_b = model(depth)
    assert delta_z.shape == log_b.shape == (2, 1, 12, 14)
    assert (delta_z == 0).all()
    # at init b ≈ 1 mm everywhere (the error scale, not the depth range's: see test_confidence), never below 0.01 mm
    assert torch.allclose(log_b.exp(), torch.ones_like(log_b), rtol=2e-2)
    assert torch.allclose(model(depth * 3)[1], log_b)  # the same for any depth range
    out = refine(model, depth)
    conf = out["confidence"]
    assert conf.shape == depth.shape and ((conf > 0) & (conf <= 1)).all()
    assert torch.allclose(conf, 1 / (1 + out["log_b"].exp()))
    with torch.no_grad():
        model.head.bias[1] = -1e4  # extreme: the floor holds
    assert (model(depth)[1] >= torch.log(torch.tensor(0.01)) - 1e-6).all()


@pytest.mark.parametrize("name", ["deltaz_unet", "deltaz_select", "mvsnet_refine"])
def test_gradients_flow(name):
    torch.manual_seed(0)
    model = build_model(name, in_channels=4, base_channel=4)
    depth_init = random_depth(2, 12, 14)
    gt = depth_init + 5.0
    out = refine(model, depth_init, image=torch.rand(2, 3, 12, 14))
    depth_loss(out["depth_refined"], gt, depth_init > 0).backward()
    assert model.head.weight.grad.abs().sum() > 0  # zero-init head still learns
    # after one step the body gets gradient too
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    opt.step()
    opt.zero_grad()
    out = refine(model, depth_init, image=torch.rand(2, 3, 12, 14))
    depth_loss(out["depth_refined"], gt, depth_init > 0).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.weight.grad.abs().sum() > 0


def test_channels_last():
    model = perturb_head(DeltaZUnet(in_channels=4, **SMALL)).eval()
    depth = random_depth(2, 12, 14)[:, None]
    image = torch.rand(2, 3, 12, 14)
    ref = model(depth, image)
    model_cl = model.to(memory_format=torch.channels_last)
    out = model_cl(depth.to(memory_format=torch.channels_last), image.to(memory_format=torch.channels_last))
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-3)


def test_first_conv_sees_validity_channel():
    assert DeltaZUnet(in_channels=1, **SMALL).stem[0].in_channels == 2
    assert DeltaZUnet(in_channels=4, **SMALL).stem[0].in_channels == 5
    assert MVSNetRefine(in_channels=4).body[0].in_channels == 5


def test_build_model_and_config_round_trip():
    for model in (DeltaZUnet(in_channels=4, base_channel=8, depth=2, out_confidence=True), MVSNetRefine(in_channels=1)):
        config = model_config(model)
        clone = build_model(**config)
        assert type(clone) is type(model) and model_config(clone) == config
        clone.load_state_dict(model.state_dict())
    assert build_model().depth == 4 and build_model().base_channel == 32
    with pytest.raises(ConfigError, match="unet3"):
        build_model("unet3")
    with pytest.raises(ConfigError, match="mvsnet_refine"):
        build_model("mvsnet_refine", depth=4)
    with pytest.raises(ConfigError):
        model_config(torch.nn.Conv2d(1, 1, 1))


@pytest.mark.parametrize("name", ["deltaz_unet", "deltaz_select", "mvsnet_refine"])
def test_refine_keep_holes(name):
    model = perturb_head(build_model(name, in_channels=1, base_channel=4))
    depth = random_depth(1, 10, 12, holes=0.3)
    filled = refine(model, depth)
    kept = refine(model, depth, keep_holes=True)
    holes = depth == 0
    assert (kept["depth_refined"][holes] == 0).all()
    assert (filled["depth_refined"][holes] != 0).any()
    assert torch.equal(kept["depth_refined"][~holes], filled["depth_refined"][~holes])


@pytest.mark.parametrize("name", ["deltaz_unet", "deltaz_select", "mvsnet_refine"])
def test_input_options_depth_scale_and_prefill_holes(name):
    """``depth_scale_mm`` fixes the normalisation span; ``prefill_holes`` starts a hole's Δz at its
    neighbours' mean (an untrained model fills holes classically, valid pixels unchanged)."""
    kwargs = {"in_channels": 1, "base_channel": 4, **({"depth": 2} if name == "deltaz_unet" else {})}
    depth = torch.full((1, 8, 10), 600.0)
    depth[0, :, 5:] = 700.0
    depth[0, 3, 2] = 0.0  # a hole among 600s
    norm, valid, _, half = normalise_depth(depth.unsqueeze(1), torch.tensor([[425.0, 935.0]]), scale_mm=20.0)
    assert float(half) == 20.0 and float(norm[0, 0, 0, 0]) == pytest.approx((600 - 680) / 20)
    model = build_model(name, depth_scale_mm=20.0, prefill_holes=True, **kwargs)
    out = refine(model, depth, depth_range=torch.tensor([[425.0, 935.0]]))
    assert float(out["depth_refined"][0, 3, 2].detach()) == pytest.approx(600.0)
    assert torch.equal(out["depth_refined"][depth > 0], depth[depth > 0])
    assert refine(model, depth, keep_holes=True)["depth_refined"][0, 3, 2] == 0
    void = torch.zeros(1, 8, 30)
    void[0, :, :4] = 650.0  # columns far from any depth are the void around the scene: they stay holes
    filled = refine(perturb_head(build_model(name, prefill_holes=True, **kwargs)), void)["depth_refined"]
    assert (filled[0, :, 20:] == 0).all()
    with torch.no_grad():  # a constant head output of 0.1 is 0.1 x 20 mm
        model.head.bias[0] = 0.1  # the Δz (residual) channel
    assert torch.allclose(refine(model, depth)["delta_z"][depth > 0], torch.tensor(2.0))
    model.depth_scale_mm = 40.0
    config = model_config(model)
    assert config["prefill_holes"] is True and build_model(**config).depth_scale_mm == 40.0
    assert "prefill_holes" not in model_config(build_model(name, **kwargs))  # older checkpoints stay comparable
    with pytest.raises(ConfigError, match="depth_scale_mm"):
        build_model(name, depth_scale_mm=0.0, **kwargs)


@pytest.mark.parametrize("name", ["deltaz_unet", "deltaz_select", "mvsnet_refine"])
def test_depth_scale_rel_is_scale_equivariant(name):
    """With ``depth_scale_rel`` the normalisation comes from the input itself: scaling the input depth by s
    (a scene s times larger, errors included) scales Δz by exactly s, holes and image unchanged."""
    kwargs = {"in_channels": 4, "base_channel": 4, **({"depth": 2} if name == "deltaz_unet" else {})}
    g = torch.Generator().manual_seed(3)
    depth = 600 + 40 * torch.rand(2, 12, 16, generator=g)
    depth[0, 2:4, 3:6] = 0.0
    image = torch.rand(2, 3, 12, 16, generator=g)
    model = perturb_head(build_model(name, depth_scale_rel=0.03, prefill_holes=True, **kwargs)).eval()
    norm, _, centre, half = normalise_depth(depth.unsqueeze(1), scale_rel=0.03)
    assert torch.allclose(half, centre * 0.03) and float(centre[1]) == pytest.approx(float(depth[1].median()))
    with torch.no_grad():
        base = refine(model, depth, image)["delta_z"]
        assert base.abs().max() > 0
        for s in (0.5, 3.0):
            # a far-away range changes nothing: the range is not used
            out = refine(model, depth * s, image, depth_range=torch.tensor([[1.0, 5000.0]] * 2))["delta_z"]
            assert torch.allclose(out, base * s, rtol=1e-4, atol=1e-4 * s)
    assert model_config(model)["depth_scale_rel"] == 0.03
    assert "depth_scale_rel" not in model_config(build_model(name, **kwargs))
    with pytest.raises(ConfigError, match="depth_scale_rel"):
        build_model(name, depth_scale_rel=1.5, **kwargs)


def test_tiny_overfit():
    """A hundred steps on one tiny sample clearly reduce the L1 error of the initial depth."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is several times faster on a shared CPU
    try:
        before, after = _overfit(steps=100)
    finally:
        torch.set_num_threads(threads)
    assert after < 0.2 * before, (before, after)


def _overfit(steps: int) -> tuple[float, float]:
    torch.manual_seed(0)
    H, W = 16, 16
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    gt = (600 + 3 * u + 2 * v)[None]
    gt[:, 4:10, 5:11] -= 40  # a box in front
    noise = 6 * torch.randn(1, H, W, generator=torch.Generator().manual_seed(1))
    depth_init = gt + noise + 10.0  # noisy and biased
    mask = torch.ones_like(gt, dtype=torch.bool)
    depth_range = torch.tensor([[500.0, 700.0]])
    model = DeltaZUnet(in_channels=1, base_channel=8, depth=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    before = depth_loss(depth_init, gt, mask).item()
    for _ in range(steps):
        out = refine(model, depth_init, depth_range=depth_range)
        loss = depth_loss(out["depth_refined"], gt, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = depth_loss(refine(model, depth_init, depth_range=depth_range)["depth_refined"], gt, mask).item()
    return before, after


def test_select_unet_copies_from_its_window():
    """With gain 1 and no residual, the selection model's refined depth is a convex combination of the input
    depths in its window: never outside their range; a strong position logit copies that neighbour exactly."""
    from deltaz.model.selection import window_values

    torch.manual_seed(0)
    model = build_model("deltaz_select", in_channels=4, base_channel=4, depth=2, radius=1)
    K = 9
    depth = random_depth(1, 10, 12, holes=0.0)
    image = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        model.head.bias[1] = 1.0  # gain
        model.head.bias[2:].normal_(0, 1.0)  # some position preference
    refined = refine(model, depth, image=image)["depth_refined"]
    near = window_values(depth[:, None], 1)[:, 0]
    assert near.shape == (1, K, 10, 12) and torch.equal(near[:, K // 2], depth)
    assert (refined >= near.min(1).values - 1e-3).all() and (refined <= near.max(1).values + 1e-3).all()
    assert not torch.allclose(refined, depth)
    with torch.no_grad():
        model.head.bias[2:] = 0
        model.head.bias[2 + 5] = 1e3  # offset (0, +1): the right-hand neighbour (replicated at the border)
    right = torch.cat([depth[..., 1:], depth[..., -1:]], dim=-1)
    assert torch.allclose(refine(model, depth, image=image)["depth_refined"], right, atol=1e-2)


@pytest.mark.parametrize("squared", [False, True])
def test_window_distance_matches_window_values(squared):
    """The window is F.unfold's (row-major offsets, replicate padding); the per-neighbour distance, built one
    offset at a time, equals the channel mean of |x_j − x| (or its square) over that stack, borders included."""
    import torch.nn.functional as F

    from deltaz.model.selection import window_distance, window_values

    torch.manual_seed(1)
    x = torch.randn(2, 3, 7, 9)
    near = window_values(x, 2)
    assert torch.equal(near, F.unfold(F.pad(x, (2,) * 4, mode="replicate"), 5).view(2, 3, 25, 7, 9))
    expected = (near - x[:, :, None]).abs().pow(2 if squared else 1).mean(1)
    got = window_distance(x, 2, squared=squared)
    assert got.shape == (2, 25, 7, 9)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.equal(got[:, 12], torch.zeros(2, 7, 9))
    assert got[:, 0, 0, 0].eq(0).all() and not got[:, 0, 3, 4].eq(0).any()  # corner (−2, −2) is replicated


def test_far_candidates_extend_the_window():
    """``far`` adds the window's offsets times ``far`` that it lacks, after the dense window (whose order and
    values are unchanged); a strong logit on a far candidate copies the depth that many pixels away."""
    from deltaz.model.selection import window_offsets, window_values

    dense = window_offsets(3)
    far = window_offsets(3, far=3)
    assert far[:49] == dense and len(far) == 89 and len(set(far)) == 89
    assert (9, -9) in far and (6, 3) in far and (4, 0) not in far
    assert window_offsets(2, far=2) == window_offsets(2) + [(2 * a, 2 * b) for a, b in window_offsets(2)
                                                            if max(abs(a), abs(b)) == 2]
    x = torch.randn(1, 1, 12, 15)
    assert torch.equal(window_values(x, 3, far=3)[:, :, :49], window_values(x, 3))
    torch.manual_seed(0)
    model = build_model("deltaz_select", in_channels=1, base_channel=4, depth=2, radius=1, far=3)
    assert model.head.out_channels == 2 + 9 + 8
    depth = random_depth(1, 10, 12, holes=0.0)
    assert torch.equal(refine(model, depth)["depth_refined"], depth)  # untrained: the identity
    with torch.no_grad():
        model.head.bias[1] = 1.0  # gain
        model.head.bias[2 + window_offsets(1, far=3).index((0, 3))] = 1e3
    shifted = torch.cat([depth[..., 3:], depth[..., -1:].expand(-1, -1, 3)], dim=-1)
    assert torch.allclose(refine(model, depth)["depth_refined"], shifted, atol=1e-2)
    with pytest.raises(ConfigError, match="far"):
        build_model("deltaz_select", radius=1, far=1)


def test_select_unet_reads_first_version_colour_weight():
    """A first-version selection checkpoint stored β as a raw softplus input (``colour_weight``); loading converts
    it to the log-scale with the same β, so old checkpoints give the same outputs."""
    import torch.nn.functional as F

    from deltaz.model import selection

    model = build_model("deltaz_select", in_channels=4, base_channel=4, depth=2, radius=1)
    state = model.state_dict()
    state["colour_weight"] = torch.tensor(7.125)
    del state["colour_log_scale"]
    model.load_state_dict(state)  # strict: the legacy key is renamed, nothing is left over or missing
    beta = selection.COLOUR_WEIGHT_INIT * torch.exp(model.colour_log_scale.detach())
    assert torch.isclose(beta, F.softplus(torch.tensor(7.125)), rtol=1e-5)
    assert "colour_weight" not in model.state_dict() and model.colour_log_scale.requires_grad


def test_select_unet_config_and_bad_radius():
    model = build_model("deltaz_select", in_channels=1, base_channel=4, depth=2, radius=2, out_confidence=True)
    config = model_config(model)
    assert config["name"] == "deltaz_select" and config["radius"] == 2
    clone = build_model(**config)
    clone.load_state_dict(model.state_dict())
    with pytest.raises(ConfigError, match="radius"):
        build_model("deltaz_select", radius=0)
