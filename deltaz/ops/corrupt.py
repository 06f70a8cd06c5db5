"""The initial-depth model: a seeded simulation of what an MVS network (or a monocular estimator) outputs.

DTU ships ground truth, not initial depths (DESIGN.md §5). When a scan has no real ``initial/`` depth,
DeltaZ makes one from the ground truth with the effects below, each a documented torch function on
depth maps ``(H, W)`` or ``(..., H, W)`` in mm with ``0`` = no value:

=========================  ==========================================================================
effect                     what it mimics
=========================  ==========================================================================
``downsample_upsample``    MVS networks infer at ¼ resolution: valid-aware area average, bilinear back
``fatten_edges``           foreground fattening: background pixels next to a depth jump take depths
                           between the foreground's and their own (flying pixels)
``shift_edges``            depth edges displaced outwards or inwards (a coin per map): only the image tells
``quantize``               plane sweeping: depths snapped to the hypothesis planes (DTU: 2.65 mm)
``depth_noise``            matching noise growing with depth, ``σ = σ₀ + σ₂·(z / 1 m)²``
``low_frequency_bias``     a smooth, spatially correlated offset (calibration / regularisation bias)
``edge_holes``             holes (0) where matching fails, clustered in blobs along depth edges
``outliers``               sparse wrong matches, uniform inside the depth range
``mde_distortion``         a monocular estimate: global scale and shift plus a smooth relative warp
``occlusion_fill``         a stereo matcher's half-occluded bands (:mod:`deltaz.ops.occlusion`)
=========================  ==========================================================================

:func:`simulate_initial_depth` applies a **preset** (:data:`PRESETS`): ``mvs`` (the default, all MVS
effects in the order listed above but ``shift_edges``), ``mde`` (blur + ``mde_distortion``), ``noise``
(plain Gaussian, σ = 2 mm), ``edges`` (``shift_edges`` + 0.5 mm noise), ``stereo`` (``occlusion_fill``, a
little fattening, noise and holes) or ``none`` (a copy). Guarantees:
same shape and dtype as the input, never NaN/inf, never negative, and pixels that are 0 in the ground
truth stay 0 (no effect fills them). With the same generator state the result is identical;
:func:`sample_seed` gives the fixed seed of a (scan, view) for validation and test corruption, stable
across processes and machines.

On the synthetic DTU-like scenes the ``mvs`` preset's mean absolute error on pixels valid in both maps
is about 6 mm (median under 2 mm; measured by ``tests/test_corrupt.py``), the size of MVSNet's errors
on DTU.
Explained in notebooks/03_initial_depth.ipynb (each effect alone, with its error map).
"""

from __future__ import annotations

import inspect
import math
import zlib

import torch
import torch.nn.functional as F

from deltaz.core.errors import ConfigError, DataError
from deltaz.core.geometry import sample_pixels
from deltaz.ops.occlusion import STEREO_PRESET, occlusion_fill

__all__ = [
    "INITIAL_MODELS", "parse_initial_mix", "PRESETS", "EFFECTS", "downsample_upsample", "quantize", "depth_noise",
    "fatten_edges", "shift_edges", "edge_holes", "outliers", "low_frequency_bias", "mde_distortion",
    "occlusion_fill", "simulate_initial_depth", "sample_seed", "edge_mask", "local_min", "local_max",
]


# --------------------------------------------------------------------------------------------------
# helpers


def _batch(depth: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
    """``(..., H, W)`` → ``(B, H, W)`` plus the original shape."""
    if not torch.is_tensor(depth) or depth.dim() < 2:
        got = getattr(depth, "shape", type(depth))
        raise DataError(f"depth must be a tensor of shape (H, W) or (..., H, W), got {got}")
    if not depth.is_floating_point():
        raise DataError(f"depth must be a floating-point tensor in mm, got dtype {depth.dtype}")
    shape = depth.shape
    return depth.reshape(-1, *shape[-2:]), shape


def _rand(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Uniform ``[0, 1)`` numbers from ``generator`` (drawn on its device), on ``like``'s device/dtype."""
    if generator is None:
        return torch.rand(shape, device=like.device, dtype=like.dtype)
    return torch.rand(shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


def _randn(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    if generator is None:
        return torch.randn(shape, device=like.device, dtype=like.dtype)
    return torch.randn(shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)


def local_min(depth: torch.Tensor, radius: int) -> torch.Tensor:
    """``(B, H, W)`` mm → the smallest valid (> 0) depth in the ``(2r+1)²`` window around each pixel (``inf``
    where none)."""
    filled = torch.where(depth > 0, depth, torch.full_like(depth, math.inf))
    return -F.max_pool2d(-filled[:, None], 2 * radius + 1, 1, radius)[:, 0]


def local_max(depth: torch.Tensor, radius: int) -> torch.Tensor:
    """``(B, H, W)`` mm → the largest depth in the ``(2r+1)²`` window around each pixel (0 where all are holes)."""
    return F.max_pool2d(depth[:, None], 2 * radius + 1, 1, radius)[:, 0]


def _smooth_field(shape: torch.Size, scale_px: float, generator, like: torch.Tensor) -> torch.Tensor:
    """A smooth random field ``(B, H, W)`` with RMS 1 per sample: Gaussian values on a grid of spacing
    ``scale_px`` pixels, interpolated bicubically."""
    B, H, W = shape
    gh, gw = max(2, math.ceil(H / scale_px) + 1), max(2, math.ceil(W / scale_px) + 1)
    coarse = _randn((B, 1, gh, gw), generator, like)
    field = F.interpolate(coarse, size=(H, W), mode="bicubic", align_corners=True)[:, 0]
    rms = field.pow(2).mean(dim=(-2, -1), keepdim=True).sqrt().clamp_min(1e-6)
    return field / rms


def _finish(out: torch.Tensor, valid: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Zero where the input had no value or the result is not a positive finite number."""
    ok = valid & torch.isfinite(out) & (out > 0)
    return torch.where(ok, out, torch.zeros_like(out)).reshape(shape)


# --------------------------------------------------------------------------------------------------
# effects


def downsample_upsample(depth: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """Lose detail like an MVS network that infers at ``1/factor`` resolution.

    Each ``factor×factor`` block becomes the mean of its valid depths (a block needs at least half of
    its pixels valid), and the low-resolution map is sampled back bilinearly at every pixel centre
    (block ``i`` has its centre at pixel ``factor·i + (factor − 1)/2``), averaging only valid blocks.
    Near depth jumps this mixes foreground and background — the blur of real MVS output.
    Deterministic. Pixels invalid in ``depth`` stay 0; valid pixels with no valid block around them
    become 0 (holes).
    """
    d, shape = _batch(depth)
    if int(factor) != factor or factor < 1:
        raise ConfigError(f"factor: expected a positive integer, got {factor!r}")
    factor = int(factor)
    if factor == 1:
        return depth.clone()
    B, H, W = d.shape
    valid = d > 0
    pad_h, pad_w = (-H) % factor, (-W) % factor
    dv = F.pad(torch.where(valid, d, torch.zeros_like(d))[:, None], (0, pad_w, 0, pad_h))
    mv = F.pad(valid.to(d.dtype)[:, None], (0, pad_w, 0, pad_h))
    sum_d = F.avg_pool2d(dv, factor)
    share = F.avg_pool2d(mv, factor)
    low_valid = share >= 0.5
    low = torch.where(low_valid, sum_d / share.clamp_min(1e-12), torch.zeros_like(sum_d))
    v, u = torch.meshgrid(
        torch.arange(H, device=d.device, dtype=d.dtype), torch.arange(W, device=d.device, dtype=d.dtype), indexing="ij"
    )
    uv = torch.stack([(u + 0.5) / factor - 0.5, (v + 0.5) / factor - 0.5], dim=-1).expand(B, H, W, 2)
    stacked = torch.cat([low, low_valid.to(d.dtype)], dim=1)  # (B, 2, h, w): value·mask, mask
    sampled = sample_pixels(stacked, uv, mode="bilinear", padding_mode="border")
    weight = sampled[:, 1]
    out = sampled[:, 0] / weight.clamp_min(1e-6)
    return _finish(torch.where(weight > 1e-3, out, torch.zeros_like(out)), valid, shape)


def quantize(depth: torch.Tensor, step_mm: float = 2.65, depth_min_mm: float = 425.0) -> torch.Tensor:
    """Snap depths to the planes ``depth_min_mm + k·step_mm`` (nearest plane), like a plane sweep.

    DTU: 192 planes from 425 mm, 2.5 mm × 1.06 = 2.65 mm apart. The error is uniform in
    ``±step_mm/2`` (mean absolute error ``step_mm/4``). Deterministic; 0 stays 0.
    """
    if not step_mm > 0:
        raise ConfigError(f"step_mm: expected a positive plane spacing in mm, got {step_mm!r}")
    d, shape = _batch(depth)
    valid = d > 0
    planes = torch.round((d - depth_min_mm) / step_mm)
    out = depth_min_mm + planes * step_mm
    return _finish(out, valid, shape)


def depth_noise(
    depth: torch.Tensor,
    generator: torch.Generator | None = None,
    sigma0_mm: float = 0.5,
    sigma_quad_mm: float = 1.2,
) -> torch.Tensor:
    """Add Gaussian noise whose standard deviation grows with depth: ``σ(z) = σ₀ + σ₂·(z / 1000 mm)²``.

    Stereo depth error grows with the square of the distance (disparity error ∝ z²). The defaults give
    0.93 mm at 600 mm and 1.47 mm at 900 mm. ``sigma_quad_mm = 0`` gives plain Gaussian noise.
    0 stays 0; a result ≤ 0 becomes 0 (a hole) rather than a negative depth.
    """
    if sigma0_mm < 0 or sigma_quad_mm < 0:
        raise ConfigError(f"sigma0_mm, sigma_quad_mm: expected >= 0, got {sigma0_mm!r}, {sigma_quad_mm!r}")
    d, shape = _batch(depth)
    valid = d > 0
    sigma = sigma0_mm + sigma_quad_mm * (d / 1000.0) ** 2
    return _finish(d + sigma * _randn(d.shape, generator, d), valid, shape)


def fatten_edges(
    depth: torch.Tensor,
    generator: torch.Generator | None = None,
    fatten_width_px: int = 2,
    jump_mm: float = 10.0,
    fatten_prob: float = 0.7,
) -> torch.Tensor:
    """Foreground fattening and flying pixels at depth discontinuities.

    A valid pixel is *behind an edge* when a valid pixel within ``fatten_width_px`` is nearer by more
    than ``jump_mm`` (``z − z_fg > jump_mm``, ``z_fg`` the nearest depth in the window). With
    probability ``fatten_prob`` such a pixel takes ``z_fg + α·(z − z_fg)`` with ``α = U²``, ``U``
    uniform: mostly the foreground's depth (the object looks fatter), sometimes in between (a flying
    pixel). Only valid pixels change; 0 stays 0.
    """
    if fatten_width_px < 0 or not 0 <= fatten_prob <= 1:
        raise ConfigError(
            f"fatten_width_px >= 0 and 0 <= fatten_prob <= 1 expected, got {fatten_width_px!r}, {fatten_prob!r}"
        )
    d, shape = _batch(depth)
    valid = d > 0
    if fatten_width_px == 0:
        return depth.clone()
    foreground = local_min(d, int(fatten_width_px))
    behind = valid & torch.isfinite(foreground) & (d - foreground > jump_mm)
    chosen = behind & (_rand(d.shape, generator, d) < fatten_prob)
    alpha = _rand(d.shape, generator, d) ** 2
    out = torch.where(chosen, foreground + alpha * (d - torch.where(chosen, foreground, d)), d)
    return _finish(out, valid, shape)


def shift_edges(
    depth: torch.Tensor,
    generator: torch.Generator | None = None,
    shift_width_px: int = 2,
    jump_mm: float = 10.0,
) -> torch.Tensor:
    """Depth edges moved ``shift_width_px`` pixels outwards or inwards (a coin flip per map): a pixel with a nearer
    (outwards) or farther (inwards) valid pixel within the width, by more than ``jump_mm``, takes that depth.
    The depth alone cannot tell which happened; only the image can. Only valid pixels change; 0 stays 0."""
    if not (isinstance(shift_width_px, int) and shift_width_px >= 0):
        raise ConfigError(f"shift_width_px: expected an integer >= 0, got {shift_width_px!r}")
    d, shape = _batch(depth)
    valid = d > 0
    near, far = local_min(d, shift_width_px), local_max(d, shift_width_px)
    outwards = (_rand((d.shape[0], 1, 1), generator, d) < 0.5).expand_as(d)
    behind = valid & torch.isfinite(near) & (d - near > jump_mm)
    in_front = valid & (far - d > jump_mm)
    out = torch.where(outwards & behind, near, torch.where(~outwards & in_front, far, d))
    return _finish(out, valid, shape)


def edge_mask(depth: torch.Tensor, jump_mm: float = 10.0) -> torch.Tensor:
    """Valid pixels with a 3×3 neighbour that is invalid or differs by more than ``jump_mm``: ``(..., H, W)`` bool."""
    d, shape = _batch(depth)
    valid = d > 0
    near = local_min(d, 1)
    far = local_max(d, 1)
    any_invalid = F.max_pool2d((~valid).to(d.dtype)[:, None], 3, 1, 1)[:, 0] > 0
    return (valid & ((far - near > jump_mm) | any_invalid)).reshape(shape)


def edge_holes(
    depth: torch.Tensor,
    generator: torch.Generator | None = None,
    hole_width_px: int = 2,
    jump_mm: float = 10.0,
    hole_prob_edge: float = 0.3,
    hole_prob_base: float = 0.003,
    hole_blob_px: int = 2,
) -> torch.Tensor:
    """Holes (0) where matching fails, clustered along depth edges and silhouettes.

    Edge pixels (:func:`edge_mask`) are widened by ``hole_width_px``; a pixel in that band becomes a
    hole with probability ``hole_prob_edge``, any other valid pixel with ``hole_prob_base``. The
    random numbers are drawn per ``hole_blob_px × hole_blob_px`` block (at a random offset), so holes
    come in blobs rather than single pixels. 0 stays 0.
    """
    if not (0 <= hole_prob_base <= 1 and 0 <= hole_prob_edge <= 1) or hole_blob_px < 1 or hole_width_px < 0:
        raise ConfigError(
            "hole_prob_edge and hole_prob_base in [0, 1], hole_blob_px >= 1 and hole_width_px >= 0 expected, got "
            f"{hole_prob_edge!r}, {hole_prob_base!r}, {hole_blob_px!r}, {hole_width_px!r}"
        )
    d, shape = _batch(depth)
    B, H, W = d.shape
    valid = d > 0
    edges = edge_mask(d, jump_mm).to(d.dtype)
    band = F.max_pool2d(edges[:, None], 2 * int(hole_width_px) + 1, 1, int(hole_width_px))[:, 0] > 0
    prob = torch.where(band, torch.full_like(d, hole_prob_edge), torch.full_like(d, hole_prob_base))
    blob = int(hole_blob_px)
    offset = int(_rand((1,), generator, d).item() * blob)
    gh, gw = (H + offset) // blob + 1, (W + offset) // blob + 1
    coarse = _rand((B, gh, gw), generator, d)
    rows = (torch.arange(H, device=d.device) + offset) // blob
    cols = (torch.arange(W, device=d.device) + offset) // blob
    draw = coarse[:, rows][:, :, cols]
    holes = valid & (draw < prob)
    return _finish(torch.where(holes, torch.zeros_like(d), d), valid, shape)


def outliers(
    depth: torch.Tensor,
    generator: torch.Generator | None = None,
    outlier_fraction: float = 0.01,
    depth_range_mm: tuple[float, float] = (425.0, 935.0),
) -> torch.Tensor:
    """Replace a random ``outlier_fraction`` of the valid pixels by depths uniform in ``depth_range_mm``.

    Wrong matches of a plane sweep land anywhere on the swept range, never outside it. 0 stays 0.
    """
    low, high = (float(v) for v in depth_range_mm)
    if not 0 <= outlier_fraction <= 1 or not 0 < low < high:
        raise ConfigError(
            f"outlier_fraction in [0, 1] and 0 < depth_range_mm[0] < depth_range_mm[1] expected, got "
            f"{outlier_fraction!r}, {depth_range_mm!r}"
        )
    d, shape = _batch(depth)
    valid = d > 0
    chosen = valid & (_rand(d.shape, generator, d) < outlier_fraction)
    values = low + (high - low) * _rand(d.shape, generator, d)
    return _finish(torch.where(chosen, values, d), valid, shape)


def low_frequency_bias(
    depth: torch.Tensor,
    generator: torch.Generator | None = None,
    bias_amplitude_mm: float = 1.5,
    bias_scale_px: float = 32.0,
) -> torch.Tensor:
    """Add a smooth random offset field with RMS ``bias_amplitude_mm`` over the image.

    The field is Gaussian noise on a grid of spacing ``bias_scale_px`` interpolated bicubically: it
    varies over tens of pixels, not from pixel to pixel. 0 stays 0.
    """
    if bias_amplitude_mm < 0 or not bias_scale_px > 0:
        raise ConfigError(
            f"bias_amplitude_mm >= 0 and bias_scale_px > 0 expected, got {bias_amplitude_mm!r}, {bias_scale_px!r}"
        )
    d, shape = _batch(depth)
    valid = d > 0
    field = _smooth_field(d.shape, bias_scale_px, generator, d)
    return _finish(d + bias_amplitude_mm * field, valid, shape)


def mde_distortion(
    depth: torch.Tensor,
    generator: torch.Generator | None = None,
    mde_scale_range: tuple[float, float] = (0.85, 1.15),
    mde_shift_range_mm: tuple[float, float] = (-40.0, 40.0),
    mde_warp_rel: float = 0.02,
    mde_warp_scale_px: float = 48.0,
) -> torch.Tensor:
    """What a monocular depth estimator gets wrong: ``(s·z + t)·(1 + ρ·w)``.

    ``s`` uniform in ``mde_scale_range`` and ``t`` uniform in ``mde_shift_range_mm`` (one pair per
    map: monocular depth is only known up to an affine map), ``w`` a smooth field with RMS 1 (spacing
    ``mde_warp_scale_px``) and ``ρ = mde_warp_rel`` its relative strength. Results ≤ 0 become 0.
    """
    d, shape = _batch(depth)
    B = d.shape[0]
    valid = d > 0
    s_lo, s_hi = mde_scale_range
    t_lo, t_hi = mde_shift_range_mm
    scale = s_lo + (s_hi - s_lo) * _rand((B, 1, 1), generator, d)
    shift = t_lo + (t_hi - t_lo) * _rand((B, 1, 1), generator, d)
    warp = _smooth_field(d.shape, mde_warp_scale_px, generator, d)
    return _finish((scale * d + shift) * (1 + mde_warp_rel * warp), valid, shape)


EFFECTS = {
    "downsample_upsample": downsample_upsample,
    "fatten_edges": fatten_edges,
    "shift_edges": shift_edges,
    "quantize": quantize,
    "depth_noise": depth_noise,
    "low_frequency_bias": low_frequency_bias,
    "edge_holes": edge_holes,
    "outliers": outliers,
    "mde_distortion": mde_distortion,
    "occlusion_fill": occlusion_fill,
}

#: Preset name → the effects it applies, in order, with their parameters. ``depth_min_mm`` (quantize)
#: and ``depth_range_mm`` (outliers) come from :func:`simulate_initial_depth`'s ``depth_range_mm``.
PRESETS: dict[str, tuple[tuple[str, dict], ...]] = {
    "mvs": (
        ("downsample_upsample", {"factor": 4}),
        ("fatten_edges", {"fatten_width_px": 2, "jump_mm": 10.0, "fatten_prob": 0.7}),
        ("quantize", {"step_mm": 2.65}),
        ("depth_noise", {"sigma0_mm": 0.5, "sigma_quad_mm": 1.2}),
        ("low_frequency_bias", {"bias_amplitude_mm": 1.5, "bias_scale_px": 32.0}),
        ("edge_holes", {"hole_width_px": 2, "jump_mm": 10.0, "hole_prob_edge": 0.3, "hole_prob_base": 0.003,
                        "hole_blob_px": 2}),
        ("outliers", {"outlier_fraction": 0.01}),
    ),
    "mde": (
        ("downsample_upsample", {"factor": 2}),
        ("mde_distortion", {"mde_scale_range": (0.85, 1.15), "mde_shift_range_mm": (-40.0, 40.0),
                            "mde_warp_rel": 0.02, "mde_warp_scale_px": 48.0}),
    ),
    "noise": (("depth_noise", {"sigma0_mm": 2.0, "sigma_quad_mm": 0.0}),),
    "edges": (("shift_edges", {"shift_width_px": 2, "jump_mm": 10.0}),
              ("depth_noise", {"sigma0_mm": 0.5, "sigma_quad_mm": 0.0})),
    "stereo": STEREO_PRESET,
    "none": (),
}


def _parameters(effect) -> set[str]:
    return set(inspect.signature(effect).parameters) - {"depth", "generator"}


def simulate_initial_depth(
    depth: torch.Tensor,
    preset: str = "mvs",
    generator: torch.Generator | None = None,
    depth_range_mm: tuple[float, float] = (425.0, 935.0),
    **overrides,
) -> torch.Tensor:
    """A simulated initial depth for ground truth ``depth``: the effects of ``preset`` in order.

    Args:
        depth: ``(H, W)`` or ``(B, H, W)`` (any leading shape) ground-truth z-depth, mm, 0 = no value.
        preset: a key of :data:`PRESETS` (``mvs``, ``mde``, ``noise``, ``none``).
        generator: the randomness (``None``: torch's global generator). The same generator state gives
            the same result; see :func:`sample_seed` for fixed per-view corruption.
        depth_range_mm: ``(min, max)`` of the scene's depth hypotheses: the first plane of
            ``quantize`` and the range of ``outliers``.
        **overrides: effect parameters by name (``outlier_fraction=0.05``, ``step_mm=2.5`` …), applied
            to every effect of the preset that takes them; ``<effect>=False`` skips an effect.
    Returns:
        The initial depth: same shape and dtype as ``depth``, 0 = hole, never NaN/inf or negative, and
        0 wherever ``depth`` is 0.
    Raises:
        ConfigError: unknown preset, or an override no effect of the preset takes.
    """
    if preset not in PRESETS:
        raise ConfigError(f"preset: expected one of {', '.join(sorted(PRESETS))}, got {preset!r}")
    d, shape = _batch(depth)
    steps = PRESETS[preset]
    names = {name for name, _ in steps}
    allowed = set(names) | {p for name, _ in steps for p in _parameters(EFFECTS[name])}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ConfigError(
            f"simulate_initial_depth(preset={preset!r}): unknown override(s) {', '.join(unknown)}; "
            f"expected effect names or parameters among {', '.join(sorted(allowed)) or 'none (preset none)'}"
        )
    shared = {"depth_min_mm": float(depth_range_mm[0]), "depth_range_mm": tuple(float(v) for v in depth_range_mm)}
    valid = d > 0
    out = torch.where(valid, d, torch.zeros_like(d))
    out = torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    for name, params in steps:
        if overrides.get(name, True) is False:
            continue
        effect = EFFECTS[name]
        accepted = _parameters(effect)
        kwargs = {k: v for k, v in shared.items() if k in accepted}
        kwargs.update(params)
        kwargs.update({k: v for k, v in overrides.items() if k in accepted})
        if "generator" in inspect.signature(effect).parameters:
            kwargs["generator"] = generator
        out = effect(out, **kwargs)
    return _finish(out, valid, shape)


def sample_seed(scan: str | int, view_id: int, base_seed: int = 0) -> int:
    """A fixed 32-bit seed for the corruption of ``(scan, view_id)``, the same in every process.

    ``zlib.crc32`` of ``"{base_seed}/{scan}/{view_id}"`` (Python's ``hash`` of a string changes between
    processes). ``scan`` may be ``"scan24"`` or ``24``; the two give different seeds, so use one
    spelling consistently (the data loader uses the folder name, ``"scan24"``).
    """
    return zlib.crc32(f"{int(base_seed)}/{scan}/{int(view_id)}".encode("utf-8"))


#: Initial-depth models: the simulation presets of this module, "planesweep" (deltaz.ops.mvs run on the scan's
#: images, cached on disk, after its multi-view geometric filter) and "planesweep_raw" (the same before the
#: filter: fattened edges and wrong matches left in, as from a stereo matcher without a consistency check) and
#: "sgbm" (OpenCV's semi-global matcher on each view and one pair.txt source, rectified on the fly, cached on
#: disk: :func:`deltaz.ops.mvs.stereo_scan`). ``TrainConfig.preset`` names one, or a mix such as "planesweep_raw:0.6,mvs:0.4".
INITIAL_MODELS = tuple(PRESETS) + ("planesweep", "planesweep_raw", "sgbm")


def parse_initial_mix(spec: str) -> dict[str, float]:
    """An initial-depth model or mix → ``{name: weight}`` with weights summing to 1, in the order given.

    ``"mvs"`` → ``{"mvs": 1.0}``; ``"planesweep:0.6,mvs:0.3,none:0.1"`` → those weights (normalised). Names
    come from :data:`INITIAL_MODELS`. Raises :class:`ConfigError` naming ``preset`` for anything else.
    """
    mix: dict[str, float] = {}
    for part in str(spec).split(","):
        name, _, weight = part.strip().partition(":")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            value = -1.0
        if name not in INITIAL_MODELS or not value > 0 or name in mix:
            raise ConfigError(
                f"preset={spec!r}: expected one of {', '.join(INITIAL_MODELS)} or a mix of distinct ones with "
                "positive weights, e.g. 'planesweep:0.6,mvs:0.4'"
            )
        mix[name] = value
    total = sum(mix.values())
    return {name: value / total for name, value in mix.items()}
