"""The refinement networks: ``depth_refined = depth_init + delta_z``.

Three models share one forward signature ``model(depth_init, image=None, depth_range=None)``:

* :class:`DeltaZUnet` — the DeltaZ U-Net (prototype signature ``in_channels, base_channel, depth``);
* :class:`SelectUnet` — the same U-Net with a selection head (:mod:`deltaz.model.selection`): its correction
  mostly copies the input depth of a neighbour it picks;
* :class:`MVSNetRefine` — MVSNet's small refinement net (three 32-channel convs), for comparison.

Input normalisation (both models, :func:`normalise_depth`): with ``depth_range = [min, max]`` (mm) the
centre is ``c = (min + max)/2`` and the half span ``h = max((max − min)/2, 1 mm)``; valid depth becomes
``(depth − c)/h`` (about [−1, 1]) and holes (``depth_init <= 0``) stay exactly 0. A validity channel
``depth_init > 0`` is always added, so the first conv sees ``in_channels + 1`` inputs (depth, validity, RGB).
When ``depth_range`` is None the per-sample min/max of the valid depth is used (``c = 0, h = 1`` for an
all-hole sample). The RGB image (``[0, 1]``) enters as ``2·image − 1``. Option ``depth_scale_mm``: a fixed
half span ``h`` (mm) instead of the range's, e.g. 20 mm, so that millimetre-scale structure (noise, steps,
outliers) is not squeezed to ~0.004 units by DTU's ~500 mm range (the demo's refiner trains much faster so).
Option ``depth_scale_rel`` (scale-free, taken from the input itself): ``c`` = the median of the sample's valid
input depth and ``h = depth_scale_rel · c`` (e.g. 0.03: ±20 mm at DTU's ~650 mm). Scaling a scene (depths and
their errors ×s) then scales Δz by exactly s, so one refiner serves a table at 0.6 m and a room at 3 m; neither
DTU's depth range nor any mm constant enters. It overrides ``depth_range`` and ``depth_scale_mm``.

Option ``prefill_holes``: holes of ``depth_init`` are first filled classically
(:func:`deltaz.ops.fill.fill_holes`, normalised 5×5 box averaging, repeated); the network sees the filled
depth (the validity channel still marks the holes) and its Δz at a hole is added to that fill, so a hole
starts near its neighbours' depth instead of at 0 mm (a ~700 mm correction). Holes the fill does not reach
(more than ~6 px from any depth: the void around the scene, not a gap in a surface) stay holes (Δz = 0).
Matters when holes are filled (``refine(keep_holes=False)``); an untrained model then fills holes with the
classical fill.

Output: the Δz head is a plain linear conv, zero-initialised, so an untrained model is the identity
(``delta_z == 0`` exactly). Its output is in normalised units and is scaled back to mm by the half span:
``delta_z_mm = head · h``. Δz is predicted at every pixel, holes of ``depth_init`` included (there
``depth_refined = delta_z`` fills the hole; :func:`refine` can keep holes instead).

Optional confidence (``out_confidence=True``): the model also returns ``log_b (B, 1, H, W)``, the natural
log of the scale ``b`` (mm) of a Laplacian error model ``|depth_refined − depth_gt| ~ Laplace(0, b)``, to be
trained with :func:`deltaz.ops.losses.laplacian_nll_loss`. ``log_b = LOG_B_MIN + softplus(raw + LOG_B_INIT −
LOG_B_MIN)`` keeps ``b ≥ exp(LOG_B_MIN)`` mm; at init ``b ≈ exp(LOG_B_INIT) = 1 mm``, the size of a good depth
map's typical error, the same everywhere (no confidence yet). It must start near the errors, not at the depth
range's half span ``h`` (~100–300 mm, the seed's choice): from ``b ≫ |error|`` the NLL's gradient on ``log b`` is
``1 − |r|/b ≈ 1`` at every pixel, so for hundreds of steps the head only learns "lower b everywhere", fastest
where its features are largest — the noisy, textured pixels with the largest errors — and ranks errors worse
than a random order (notebooks/08_extensions.ipynb). From ``b ≈ 1 mm`` the gradient ``1 − |r|/b`` differs from
pixel to pixel with the error at once. :func:`refine` turns it into ``confidence = 1 / (1 + b/1 mm)`` in (0, 1]
for display.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from deltaz.core.errors import ConfigError, DataError
from deltaz.model import selection
from deltaz.model.inference import median_selection, refine
from deltaz.ops.fill import fill_holes

__all__ = [
    "MIN_HALF_SPAN_MM", "LOG_B_MIN", "LOG_B_INIT", "CONFIDENCE_INIT_MM", "normalise_depth", "median_valid_depth",
    "DeltaZUnet", "MVSNetRefine", "SelectUnet", "MODELS", "INPUT_OPTIONS", "build_model", "model_config",
    "check_colour_scale", "colour_scaled", "median_selection", "refine",
]

#: Smallest half span (mm) used to normalise depth, so a flat or empty range never divides by ~0.
MIN_HALF_SPAN_MM = 1.0
#: Hole pre-fill (``prefill_holes``): window and passes of :func:`deltaz.ops.fill.fill_holes`; holes farther than
#: about ``PREFILL_ITERS · (PREFILL_KERNEL // 2)`` pixels from a valid depth (the void around the scene) stay holes.
PREFILL_KERNEL, PREFILL_ITERS = 5, 3
#: Lower bound of ``log_b`` (``b`` in mm): ``b ≥ e^-4.6 ≈ 0.01 mm`` keeps ``|r|/b`` finite.
LOG_B_MIN = math.log(0.01)
#: ``b`` (mm) of an untrained confidence head: about a good depth map's median error; see the module docstring
#: for why it must not start at the depth range's scale. Checkpoints written before it (format 1) keep the old
#: start, ``b`` = the depth range's half span (``confidence_init_mm=None``), so they give the same ``log_b``.
CONFIDENCE_INIT_MM = 1.0
LOG_B_INIT = math.log(CONFIDENCE_INIT_MM)


def _as_b1hw(x: torch.Tensor, name: str) -> torch.Tensor:
    """``(B, H, W)`` or ``(B, 1, H, W)`` → ``(B, 1, H, W)``; anything else raises :class:`DataError` naming ``name``."""
    if x.dim() == 3:
        return x.unsqueeze(1)
    if x.dim() == 4 and x.shape[1] == 1:
        return x
    raise DataError(f"{name} must be (B, H, W) or (B, 1, H, W), got shape {tuple(x.shape)}")


def median_valid_depth(depth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-sample median (mm) of ``depth (B, 1, H, W)`` over ``valid``; 0 for an all-hole sample. ``(B,)``."""
    flat = torch.where(valid, depth, torch.full_like(depth, float("nan"))).reshape(depth.shape[0], -1)
    return torch.nan_to_num(flat.nanmedian(dim=1).values, nan=0.0)


def normalise_depth(
    depth_init: torch.Tensor, depth_range: torch.Tensor | None = None, scale_mm: float | None = None,
    scale_rel: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalise a depth map to about [−1, 1] for the network.

    Args:
        depth_init: ``(B, 1, H, W)`` mm, ``<= 0`` or non-finite = hole.
        depth_range: ``(B, 2)`` mm ``[min, max]``, or None for the per-sample min/max of valid depth.
        scale_mm: a fixed half span in mm (> 0) instead of the range's; None = the range's.
        scale_rel: scale-free normalisation (overrides both): centre = median valid depth, half span =
            ``scale_rel ×`` that median (at least :data:`MIN_HALF_SPAN_MM` … only for an all-hole sample).
    Returns:
        ``depth_norm (B, 1, H, W)`` (holes exactly 0), ``valid (B, 1, H, W)`` bool,
        ``centre_mm (B, 1, 1, 1)`` and ``half_span_mm (B, 1, 1, 1)`` (≥ :data:`MIN_HALF_SPAN_MM`).
    """
    valid = torch.isfinite(depth_init) & (depth_init > 0)
    depth = torch.where(valid, depth_init, torch.zeros_like(depth_init))
    B = depth.shape[0]
    if scale_rel is not None:
        centre = median_valid_depth(depth, valid).detach().view(B, 1, 1, 1)
        half = (centre * float(scale_rel)).clamp(min=1e-6)
        half = torch.where(centre > 0, half, torch.full_like(half, MIN_HALF_SPAN_MM))
        depth_norm = torch.where(valid, (depth - centre) / half, torch.zeros_like(depth))
        return depth_norm, valid, centre, half
    if depth_range is None:
        flat = depth.reshape(B, -1)
        flat_valid = valid.reshape(B, -1)
        any_valid = flat_valid.any(dim=1)
        lo = torch.where(flat_valid, flat, torch.full_like(flat, float("inf"))).amin(dim=1)
        hi = torch.where(flat_valid, flat, torch.full_like(flat, float("-inf"))).amax(dim=1)
        lo = torch.where(any_valid, lo, torch.zeros_like(lo))
        hi = torch.where(any_valid, hi, torch.zeros_like(hi))
    else:
        if depth_range.shape != (B, 2):
            raise DataError(f"depth_range must be (B, 2) = ({B}, 2) mm [min, max], got shape {tuple(depth_range.shape)}")
        depth_range = depth_range.to(dtype=depth.dtype, device=depth.device)
        lo, hi = depth_range[:, 0], depth_range[:, 1]
    centre = ((lo + hi) / 2).detach().view(B, 1, 1, 1)
    half = ((hi - lo) / 2).abs().clamp(min=MIN_HALF_SPAN_MM).detach().view(B, 1, 1, 1)
    if scale_mm is not None:
        half = torch.full_like(half, float(scale_mm))
    depth_norm = torch.where(valid, (depth - centre) / half, torch.zeros_like(depth))
    return depth_norm, valid, centre, half


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 when possible (works with batch size 1), else the largest divisor ≤ 8."""
    for g in (8, 4, 2, 1):
        if channels % g == 0:
            return g
    return 1


class _ConvBlock(nn.Sequential):
    """Two ``conv3×3 → GroupNorm → SiLU`` layers."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.GroupNorm(_groups(c_out), c_out),
            nn.SiLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.GroupNorm(_groups(c_out), c_out),
            nn.SiLU(inplace=True),
        )


class _Up(nn.Module):
    """Bilinear ×2 upsampling, 1×1 conv to the skip's width, concat with the skip, conv block."""

    def __init__(self, c_in: int, c_skip: int):
        super().__init__()
        self.reduce = nn.Conv2d(c_in, c_skip, 1)
        self.block = _ConvBlock(2 * c_skip, c_skip)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([self.reduce(x), skip], dim=1))


def _zero_conv(c_in: int, c_out: int, kernel: int = 3) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class _RefinerBase(nn.Module):
    """Shared input preparation (normalisation, validity, image) and output scaling.

    The model's signature (what a checkpoint's ``model_config`` records) is declared once per class:
    ``NAME`` (its :data:`MODELS` key), ``SHAPE_ARGS`` (constructor arguments that fix the weights' shapes,
    always recorded) and :data:`INPUT_OPTIONS` (recorded only when not at their default)."""

    NAME: str = ""
    SHAPE_ARGS: tuple[str, ...] = ("in_channels", "base_channel", "out_confidence")
    in_channels: int
    out_confidence: bool

    depth_scale_mm: float | None = None
    depth_scale_rel: float | None = None
    prefill_holes: bool = False
    confidence_init_mm: float | None = CONFIDENCE_INIT_MM

    def _set_options(self, in_channels: int, base_channel: int, out_confidence: bool,
                     depth_scale_mm: float | None, prefill_holes: bool, depth_scale_rel: float | None = None,
                     confidence_init_mm: float | None = CONFIDENCE_INIT_MM) -> None:
        """Check and store the options both refiners share; one :class:`ConfigError` per bad value."""
        if in_channels not in (1, 4):
            raise ConfigError(f"in_channels must be 1 (depth) or 4 (depth + RGB), got {in_channels}")
        if int(base_channel) < 1:
            raise ConfigError(f"base_channel must be >= 1, got {base_channel}")
        self.in_channels = int(in_channels)
        self.base_channel = int(base_channel)
        self.out_confidence = bool(out_confidence)
        if depth_scale_mm is not None and not float(depth_scale_mm) > 0:
            raise ConfigError(f"depth_scale_mm must be > 0 mm or None, got {depth_scale_mm}")
        self.depth_scale_mm = None if depth_scale_mm is None else float(depth_scale_mm)
        if depth_scale_rel is not None and not 0 < float(depth_scale_rel) < 1:
            raise ConfigError(f"depth_scale_rel must be in (0, 1) (a share of the median depth) or None, got {depth_scale_rel}")
        self.depth_scale_rel = None if depth_scale_rel is None else float(depth_scale_rel)
        self.prefill_holes = bool(prefill_holes)
        if confidence_init_mm is not None and not float(confidence_init_mm) > 0:
            raise ConfigError(f"confidence_init_mm must be > 0 mm or None, got {confidence_init_mm}")
        self.confidence_init_mm = None if confidence_init_mm is None else float(confidence_init_mm)

    def _inputs(self, depth_init, image, depth_range):
        depth_init = _as_b1hw(depth_init, "depth_init")
        offset: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.prefill_holes:
            holes = ~(torch.isfinite(depth_init) & (depth_init > 0))
            clean = torch.where(holes, torch.zeros_like(depth_init), depth_init)
            filled = fill_holes(clean[:, 0], PREFILL_KERNEL, max_iters=PREFILL_ITERS).unsqueeze(1)
            # Δz at a hole starts at the fill; a hole the fill does not reach (the void around the scene) stays a
            # hole: Δz = 0 there
            offset = (torch.where(holes, filled, torch.zeros_like(filled)), holes & (filled <= 0))
            depth_norm, _, centre, half = normalise_depth(filled, depth_range, self.depth_scale_mm, self.depth_scale_rel)
            valid = ~holes
        else:
            depth_norm, valid, centre, half = normalise_depth(depth_init, depth_range, self.depth_scale_mm, self.depth_scale_rel)
        parts = [depth_norm, valid.to(depth_norm.dtype)]
        if self.in_channels == 4:
            if image is None:
                raise ConfigError(f"{type(self).__name__}(in_channels=4) needs image (B, 3, H, W) in [0, 1]; got None")
            if image.dim() != 4 or image.shape[1] != 3 or image.shape[0] != depth_init.shape[0] or image.shape[-2:] != depth_init.shape[-2:]:
                raise DataError(
                    f"image must be (B, 3, H, W) = ({depth_init.shape[0]}, 3, {depth_init.shape[-2]}, "
                    f"{depth_init.shape[-1]}) to match depth_init, got shape {tuple(image.shape)}"
                )
            image = torch.nan_to_num(image.to(depth_norm.dtype), nan=0.0)
            parts.append(2 * image - 1)
        elif image is not None:
            raise ConfigError(f"{type(self).__name__}(in_channels=1) takes no image; build it with in_channels=4 for RGB guidance")
        return torch.cat(parts, dim=1), half, offset

    def _outputs(self, head: torch.Tensor, half: torch.Tensor, offset=None):
        delta_z = head[:, :1] * half
        if offset is not None:  # (fill at holes, unreached holes) from _inputs
            fill, unreached = offset
            delta_z = torch.where(unreached, torch.zeros_like(delta_z), delta_z + fill)
        if not self.out_confidence:
            return delta_z
        start = torch.log(half) if self.confidence_init_mm is None else math.log(self.confidence_init_mm)
        log_b = LOG_B_MIN + F.softplus(head[:, 1:2] + start - LOG_B_MIN)
        return delta_z, log_b


class DeltaZUnet(_RefinerBase):
    """U-Net that predicts a depth correction Δz (mm) from an initial depth (and optionally its image).

    Args:
        in_channels: 1 = depth only, 4 = depth + RGB image. (A validity channel is added internally.)
        base_channel: width of the full-resolution level; level ``i`` has ``base_channel · 2^i`` channels.
        depth: number of ×2 downsamplings (levels below full resolution); inputs of any size are
            replicate-padded to a multiple of ``2^depth`` and cropped back.
        out_confidence: also return ``log_b`` (see the module docstring).
        depth_scale_mm, prefill_holes: input options, see the module docstring (defaults: off).

    ``forward(depth_init (B[,1],H,W) mm, image (B,3,H,W) | None, depth_range (B,2) mm | None)`` returns
    ``delta_z (B, 1, H, W)`` mm, or ``(delta_z, log_b)``; ``depth_refined = depth_init + delta_z``.
    """

    NAME = "deltaz_unet"
    SHAPE_ARGS = ("in_channels", "base_channel", "depth", "out_confidence")

    def __init__(self, in_channels: int = 1, base_channel: int = 32, depth: int = 4, out_confidence: bool = False,
                 depth_scale_mm: float | None = None, prefill_holes: bool = False, depth_scale_rel: float | None = None,
                 confidence_init_mm: float | None = CONFIDENCE_INIT_MM):
        super().__init__()
        self._set_options(in_channels, base_channel, out_confidence, depth_scale_mm, prefill_holes, depth_scale_rel,
                          confidence_init_mm)
        if int(depth) < 1:
            raise ConfigError(f"depth (number of downsamplings) must be >= 1, got {depth}")
        self.depth = int(depth)
        widths = [self.base_channel * 2**i for i in range(self.depth + 1)]
        self.stem = _ConvBlock(self.in_channels + 1, widths[0])
        self.down = nn.ModuleList(_ConvBlock(widths[i], widths[i + 1]) for i in range(self.depth))
        self.up = nn.ModuleList(_Up(widths[i + 1], widths[i]) for i in reversed(range(self.depth)))
        self.head = _zero_conv(widths[0], 2 if self.out_confidence else 1)

    def forward(self, depth_init: torch.Tensor, image: torch.Tensor | None = None, depth_range: torch.Tensor | None = None):
        x, half, offset = self._inputs(depth_init, image, depth_range)
        return self._outputs(self.head(self._decode(x))[..., : x.shape[-2], : x.shape[-1]], half, offset)

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        """The U-Net's full-resolution features of the input stack ``x (B, C, H, W)``: ``(B, base_channel, H', W')``
        with ``H', W'`` padded up to multiples of ``2^depth`` (the caller crops after its head)."""
        H, W = x.shape[-2:]
        m = 2**self.depth
        pad_h, pad_w = (-H) % m, (-W) % m
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        x = self.stem(x)
        skips = [x]
        for block in self.down:
            x = block(F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        return x


class MVSNetRefine(_RefinerBase):
    """MVSNet's depth-refinement net, for comparison with :class:`DeltaZUnet`.

    ``[2·image − 1, normalised depth, validity]`` → three ``conv3×3(32) → BatchNorm → ReLU`` → a linear
    zero-initialised conv → Δz (same normalisation and mm scaling as :class:`DeltaZUnet`). The only
    deviations from MVSNet are the validity channel and the zero init (so it starts as the identity).
    Same forward signature and outputs as :class:`DeltaZUnet`; ``in_channels=1`` drops the image.
    """

    NAME = "mvsnet_refine"

    def __init__(self, in_channels: int = 4, base_channel: int = 32, out_confidence: bool = False,
                 depth_scale_mm: float | None = None, prefill_holes: bool = False, depth_scale_rel: float | None = None,
                 confidence_init_mm: float | None = CONFIDENCE_INIT_MM):
        super().__init__()
        self._set_options(in_channels, base_channel, out_confidence, depth_scale_mm, prefill_holes, depth_scale_rel,
                          confidence_init_mm)
        c = self.base_channel
        layers: list[nn.Module] = []
        for c_in in (self.in_channels + 1, c, c):
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.head = _zero_conv(c, 2 if self.out_confidence else 1)

    def forward(self, depth_init: torch.Tensor, image: torch.Tensor | None = None, depth_range: torch.Tensor | None = None):
        x, half, offset = self._inputs(depth_init, image, depth_range)
        return self._outputs(self.head(self.body(x)), half, offset)


class SelectUnet(DeltaZUnet):
    """:class:`DeltaZUnet` whose correction mostly copies depth from a neighbour it selects (the selection head
    of :mod:`deltaz.model.selection`: window radius ``radius`` px, default 3 = 7×7; ``far`` ≥ 2 adds that window's
    offsets times ``far``, 0 none). Same options, forward signature and outputs as DeltaZUnet; untrained, it is
    the identity."""

    NAME = "deltaz_select"
    SHAPE_ARGS = ("in_channels", "base_channel", "depth", "out_confidence", "radius", "far")

    def __init__(self, *args, radius: int = 3, far: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        if int(radius) < 1:
            raise ConfigError(f"radius (px) must be >= 1, got {radius}")
        if int(far) != 0 and int(far) < 2:
            raise ConfigError(f"far must be 0 (none) or >= 2, got {far}")
        self.radius, self.far = int(radius), int(far)
        n_out = 2 if self.out_confidence else 1  # residual Δz [, confidence], as DeltaZUnet's head; then gain, K logits
        n_candidates = len(selection.window_offsets(self.radius, self.far))
        self.head = _zero_conv(self.base_channel, n_out + 1 + n_candidates)
        self.embed = nn.Conv2d(self.base_channel, selection.EMBED_DIM, 1)
        self.colour_log_scale = nn.Parameter(torch.tensor(0.0)) if self.in_channels == 4 else None
        self.median = False  # the weighted median of the candidates instead of their mean (inference; not saved)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        legacy = state_dict.pop(prefix + "colour_weight", None)  # first version: β = softplus(colour_weight)
        if legacy is not None:
            state_dict[prefix + "colour_log_scale"] = selection.colour_log_scale_from_legacy(legacy)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, depth_init: torch.Tensor, image: torch.Tensor | None = None, depth_range: torch.Tensor | None = None):
        x, half, offset = self._inputs(depth_init, image, depth_range)
        H, W = x.shape[-2:]
        features = self._decode(x)
        head = self.head(features)[..., :H, :W]
        n_out = 2 if self.out_confidence else 1  # residual Δz [, confidence], then gain, K position logits
        delta = selection.select_delta(x, self.embed(features)[..., :H, :W], head[:, :1], head[:, n_out:n_out + 1],
                                       head[:, n_out + 1:], self.radius, self.colour_log_scale, self.far,
                                       median=self.median and not self.training)
        return self._outputs(torch.cat([delta, head[:, 1:n_out]], dim=1), half, offset)


def check_colour_scale(scale: object) -> float:
    """``scale`` as a float when it is a finite positive number (:func:`colour_scaled`'s dial); else
    :class:`ConfigError` naming ``colour_scale`` (``--colour-scale``)."""
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale > 0):
        raise ConfigError(f"colour_scale (--colour-scale): expected a positive number, got {scale!r}")
    return float(scale)


@contextlib.contextmanager
def colour_scaled(model: nn.Module, scale: float = 1.0):
    """Within the block, a selection model's colour weight β is ``scale`` times its trained value (restored on
    exit; 1 = as trained, and then any model passes). A larger β keeps the pixel's own depth unless a neighbour
    of the same colour differs: a dial from fixing (< 1) to leaving the input alone (> 1) without retraining
    (docs/EXPERIMENTS.md, "Middlebury"). Raises :class:`ConfigError` for a non-positive scale, or a scale ≠ 1 for a
    model without a colour weight (not a :class:`SelectUnet` with image input)."""
    check_colour_scale(scale)
    if scale == 1.0:
        yield model
        return
    if getattr(model, "colour_log_scale", None) is None:
        raise ConfigError(f"colour_scale (--colour-scale): only a selection model with image input (deltaz_select "
                          f"trained with --images) has a colour weight; this checkpoint's model is "
                          f"{getattr(type(model), 'NAME', type(model).__name__)} with in_channels "
                          f"{getattr(model, 'in_channels', '?')}")
    trained = model.colour_log_scale.detach().clone()
    with torch.no_grad():
        model.colour_log_scale.add_(math.log(scale))
    try:
        yield model
    finally:
        with torch.no_grad():
            model.colour_log_scale.copy_(trained)


#: Model registry: the names :func:`build_model` accepts.
MODELS: dict[str, type[nn.Module]] = {cls.NAME: cls for cls in (DeltaZUnet, SelectUnet, MVSNetRefine)}
#: Input options both refiners take, with their defaults; a checkpoint records only those not at the default
#: (older checkpoints lack them).
INPUT_OPTIONS: dict[str, object] = {"depth_scale_mm": None, "prefill_holes": False, "depth_scale_rel": None,
                                     "confidence_init_mm": CONFIDENCE_INIT_MM}


def build_model(name: str = "deltaz_unet", **kwargs) -> nn.Module:
    """Build a model by name (``"deltaz_unet"`` or ``"mvsnet_refine"``) from its constructor kwargs.

    ``build_model(**model_config(model))`` rebuilds the same architecture. Unknown names or arguments raise
    :class:`~deltaz.core.errors.ConfigError`.
    """
    if name not in MODELS:
        raise ConfigError(f"model name must be one of {sorted(MODELS)}, got {name!r}")
    try:
        return MODELS[name](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for model {name!r}: {exc}") from exc


def model_config(model: nn.Module) -> dict:
    """The ``name`` and constructor kwargs of a model, for checkpoints (``build_model(**config)``):
    its class's ``SHAPE_ARGS`` and the :data:`INPUT_OPTIONS` not at their default."""
    if not isinstance(model, _RefinerBase) or type(model).NAME not in MODELS:
        raise ConfigError(f"model_config: not a DeltaZ model: {type(model).__name__}")
    config: dict = {"name": type(model).NAME, **{arg: getattr(model, arg) for arg in type(model).SHAPE_ARGS}}
    for option, default in INPUT_OPTIONS.items():
        if getattr(model, option) != default:
            config[option] = getattr(model, option)
    return config
