"""Refine your own depth map: ``deltaz.refine_depth(depth, image) -> depth_refined`` (numpy in, numpy out).

The Python half of ``deltaz refine`` (:mod:`deltaz.apps.refine_cli` is the command line; both go through
:func:`refine_depth`, which runs :func:`deltaz.model.refine`, the same call evaluation uses).

Conventions (DESIGN.md §1): ``depth (H, W)`` is z-depth in **mm**, ``0`` or non-finite = hole, negative values
are refused; ``image (H, W, 3)`` is uint8/uint16 or float in [0, 1]. Holes come back marked as they came
(the same 0 / NaN / inf) unless ``fill_holes`` (then the model's Δz fills those it reaches). An image a whole
multiple ``k`` larger than the depth map (same aspect ratio; MVS networks output depth at ¼ of the image) is
area-averaged ``k×k`` down to it; any other size mismatch is refused unless ``resize_image``.

Large maps are refined in overlapping tiles of at most ``max_pixels`` pixels, blended with linear ramps over the
overlap; every tile is normalised with the whole map's depth range, so only the network's receptive field and
GroupNorm statistics see the tile. The loaded model is cached per (checkpoint file, device).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deltaz.core.errors import ConfigError, DataError
from deltaz.engine.device import resolve_device
from deltaz.engine import checkpoint as ckpt
from deltaz.engine.config import TrainConfig
from deltaz.model import build_model, colour_scaled, median_selection, refine
from deltaz.model.blend import BlendedRefiner
from deltaz.ops.agreement import MIRROR_AGREEMENT
from deltaz.ops.dead_zone import DEAD_ZONE, apply_dead_zone, check_dead_zone
from deltaz.ops.smooth import SURFACE_SMOOTHING, smooth_delta_z
from deltaz.weights import default_checkpoint

__all__ = ["load_refiner", "DEFAULT_MAX_PIXELS", "TILE_OVERLAP", "resolve_device", "for_inference", "load_model", "prepare_image",
           "check_depth", "predict_delta_z", "refine_depth"]

#: Maps with more pixels than this are refined in tiles. A whole 1600×1200 map needs ~2.3 GB (base 32, CPU), runs
#: faster than tiles and gives the model's exact result (tiles change its GroupNorm statistics; measured in
#: benchmarks/bench_refine.py), so tiling starts above 4 MP (~5 GB for base 32).
DEFAULT_MAX_PIXELS = 4_000_000
#: Overlap (px) of neighbouring tiles; Δz is blended with linear ramps across it.
TILE_OVERLAP = 64
_CACHE: dict[tuple, torch.nn.Module] = {}
_CACHE_SIZE = 4


def load_refiner(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any], Path]:
    """A trained refiner from a checkpoint (a ``.pt`` file, or a folder holding ``best.pt``/``last.pt``).

    Returns ``(model in eval mode on device, the run's TrainConfig dict, the file read)``.
    Raises :class:`DataError` when no checkpoint is there or its weights do not fit the model it names.
    """
    path = ckpt.find_checkpoint(path) or Path(path)
    state = ckpt.load_checkpoint(path, map_location="cpu")
    config = dict(state.get("config") or {})
    model_cfg = dict(state.get("model_config") or {})
    if model_cfg:
        name = model_cfg.pop("name")
    else:
        train_cfg = TrainConfig.from_dict(config)
        name, model_cfg = train_cfg.model, train_cfg.model_kwargs()
    model = _built(path, name, model_cfg, state["model"])
    blend = state.get("blend")
    if blend is not None:  # an adapted checkpoint that mixes the adapted network with the original (deltaz adapt)
        base = _built(path, name, model_cfg, blend.get("base") if isinstance(blend, dict) else None)
        try:
            model = BlendedRefiner(base, model, float(blend.get("alpha", -1)))
        except (ConfigError, TypeError, ValueError) as error:
            raise DataError(f"{path}: its blend of two networks is malformed ({error})") from None
    model.to(device).eval()
    return model, config, path


@contextlib.contextmanager
def colour_scaled_parts(model: torch.nn.Module, scale: float = 1.0):
    """:func:`deltaz.model.colour_scaled` for one refiner, or for both networks of a
    :class:`~deltaz.model.blend.BlendedRefiner` (an adapted checkpoint with ``--blend``)."""
    parts = (model.base, model.adapted) if isinstance(model, BlendedRefiner) else (model,)
    with contextlib.ExitStack() as stack:
        for part in parts:
            stack.enter_context(colour_scaled(part, scale))
        yield model


def _built(path: Path, name: str, model_cfg: dict[str, Any], weights: Any) -> torch.nn.Module:
    """``build_model(name, **model_cfg)`` with ``weights`` loaded; a :class:`DataError` naming ``path`` when they
    do not fit (another architecture than the one the checkpoint names, or none)."""
    model = build_model(name, **model_cfg)
    try:
        if not isinstance(weights, dict):
            raise RuntimeError("no weights")
        model.load_state_dict(weights)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:200]
        raise DataError(f"{path}: not a DeltaZ refiner checkpoint (its weights do not fit: {detail})") from None
    return model


def for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode and channels-last weights (about 1.3–1.5× faster convolutions on CPU; same results to ~1e-5)."""
    return model.eval().to(memory_format=torch.channels_last)


def load_model(checkpoint: str | Path | None = None, device: str | torch.device | None = "auto") -> torch.nn.Module:
    """The refiner in eval mode, loaded once per (checkpoint file, its mtime, device) and then cached.

    ``checkpoint``: a ``.pt`` file or a run folder (``best.pt``/``last.pt``), read with ``weights_only=True``;
    None = the shipped weights (:func:`deltaz.weights.default_checkpoint`). Raises :class:`DataError` naming the
    file when it is not a DeltaZ checkpoint (a pickle payload, another model's weights).
    """
    path = default_checkpoint() if checkpoint is None else Path(checkpoint)
    device = resolve_device(device)
    if not path.exists():
        raise DataError(f"{path}: checkpoint not found; pass --checkpoint with an existing .pt file or run folder")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, str(device))
    if key not in _CACHE:
        try:
            model, _, _ = load_refiner(path, device)
        except DataError as error:
            if "Unpickl" in type(error.__cause__).__name__:  # weights_only=True met a pickled object: never run it
                raise DataError(f"{path}: refused: not a DeltaZ checkpoint (it holds pickled Python objects, not plain "
                                "weights; torch.load(weights_only=True) does not run them)") from None
            raise
        except ConfigError:
            raise
        except (RuntimeError, KeyError, TypeError, AttributeError, ValueError) as error:
            detail = " ".join(str(error).split())[:200]
            raise DataError(f"{path}: not a DeltaZ refiner checkpoint (its weights do not fit: {detail})") from None
        model = for_inference(model)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = model
    return _CACHE[key]


def check_depth(depth, name: str = "depth") -> tuple[np.ndarray, np.ndarray]:
    """``(depth_mm float32 with holes = 0, holes bool)`` of an ``(H, W)`` depth map in mm.

    Refuses (:class:`DataError` naming ``name``) a map that is not 2-D and numeric, has negative values or
    holds no valid depth at all (a constant map is valid).
    """
    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.dtype.kind not in "fiu" or min(depth.shape, default=0) < 1:
        raise DataError(f"{name}: expected an (H, W) numeric depth map in mm, "
                        f"got shape {depth.shape} dtype {depth.dtype}")
    depth = depth.astype(np.float32, copy=False)
    finite = np.isfinite(depth)
    negative = finite & (depth < 0)
    if negative.any():
        raise DataError(f"{name}: {int(negative.sum())} negative depth values (min {float(depth[negative].min()):.4g});"
                        " expected z-depth >= 0 with 0 = hole (disparity? use --disparity)")
    holes = ~finite | (depth == 0)
    if holes.all():
        raise DataError(f"{name}: every pixel is a hole (0 or non-finite); expected at least one depth value > 0")
    return np.where(holes, np.float32(0), depth), holes


def _image_float(image, name: str) -> np.ndarray:
    """``(H, W, 3)`` float32 in [0, 1] from uint8 / uint16 / float [0, 1], grey or RGBA accepted."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise DataError(f"{name}: expected an (H, W, 3) RGB image, got shape {image.shape}")
    image = image[:, :, :3]
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    if image.dtype.kind != "f":
        raise DataError(f"{name}: expected uint8, uint16 or float pixels in [0, 1], got dtype {image.dtype}")
    image = np.nan_to_num(image.astype(np.float32))
    if image.min() < 0 or image.max() > 1:
        raise DataError(f"{name}: float image values must lie in [0, 1], got [{image.min():.4g}, {image.max():.4g}]")
    return image


def prepare_image(image, depth_shape: tuple[int, int], resize_image: bool = False, name: str = "image",
                  depth_name: str = "depth") -> tuple[np.ndarray, str | None]:
    """The image as ``(3, H, W)`` float32 in [0, 1] at the depth map's ``(H, W)``, and a note when resized.

    Same size: as is. ``k`` times larger in both directions (whole ``k >= 2``): ``k×k`` area average. Otherwise
    :class:`DataError` naming both sizes, unless ``resize_image`` (antialiased bilinear resize).
    """
    image = _image_float(image, name)
    (h, w), (H, W) = depth_shape, image.shape[:2]
    note = None
    if (H, W) != (h, w):
        k = H // h
        if H == k * h and W == k * w and k >= 2:
            image = image.reshape(h, k, w, k, 3).mean(axis=(1, 3))
            note = f"{name}: {W}x{H} image area-averaged {k}x{k} down to the depth map's {w}x{h}"
        elif resize_image:
            t = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
            image = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False,
                                                    antialias=True)[0].clamp(0, 1).permute(1, 2, 0).numpy()
            note = f"{name}: {W}x{H} image resized to the depth map's {w}x{h} (--resize-image)"
        else:
            raise DataError(f"{name}: image is {W}x{H} but {depth_name} is {w}x{h}; expected the same size or a whole "
                            "multiple of it with the same aspect ratio (pass --resize-image to resize the image)")
    return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32), note


def _tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    if n <= tile:
        return [0]
    return list(range(0, n - tile, tile - overlap)) + [n - tile]


def _ramp(n: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    """1-D blending weights of a tile: linear ramps over ``overlap`` px on sides shared with a neighbour."""
    weight = np.ones(n, dtype=np.float32)
    ramp = np.arange(1, overlap + 1, dtype=np.float32) / (overlap + 1)
    if not first:
        weight[:overlap] = np.minimum(weight[:overlap], ramp)
    if not last:
        weight[n - overlap:] = np.minimum(weight[n - overlap:], ramp[::-1])
    return weight


def _tile_size(H: int, W: int, max_pixels: int, overlap: int, multiple: int = 16) -> tuple[int, int]:
    """The tile ``(th, tw)``, ``th·tw <= max_pixels``, sides multiples of ``multiple``, of the grid of tiles that
    computes the fewest pixels in all (the overlaps are computed twice)."""
    def side(n: int, count: int) -> int:
        per_tile = -(-(n + (count - 1) * overlap) // count)  # ceil: count tiles overlapping by `overlap` cover n
        return n if count == 1 else min(n, -(-per_tile // multiple) * multiple)

    best = None
    for ny in range(1, H // max(overlap, 1) + 2):
        for nx in range(1, W // max(overlap, 1) + 2):
            th, tw = side(H, ny), side(W, nx)
            if th * tw > max_pixels or min(th, tw) <= 2 * overlap and (ny > 1 or nx > 1):
                continue
            cost = len(_tile_starts(H, th, overlap)) * th * len(_tile_starts(W, tw, overlap)) * tw
            if best is None or cost < best[0]:
                best = (cost, th, tw)
    if best is None:
        raise ConfigError(f"max_pixels: {max_pixels} is too small for tiles with a {overlap} px overlap")
    return best[1], best[2]


@torch.inference_mode()
def predict_delta_z(model: torch.nn.Module, depth_mm: np.ndarray, image: np.ndarray | None = None,
                    fill_holes: bool = False, depth_range_mm: tuple[float, float] | None = None,
                    max_pixels: int | None = DEFAULT_MAX_PIXELS, tile_overlap: int = TILE_OVERLAP,
                    bf16: bool = False, dead_zone: tuple[float, float] | None = DEAD_ZONE,
                    mirror_agreement: bool = MIRROR_AGREEMENT, smooth: bool = SURFACE_SMOOTHING) -> np.ndarray:
    """Δz ``(H, W)`` mm from :func:`deltaz.model.refine` for a clean depth map (holes = 0, mm) and its image.

    ``image``: ``(3, H, W)`` float32 in [0, 1] or None. ``depth_range_mm``: ``(min, max)`` passed to the model
    (default: the map's valid min/max, the model's own fallback). Tiled when ``H·W > max_pixels``. ``bf16``:
    convolutions in bfloat16 (autocast; ~1.5× faster on a CPU with AVX512-BF16, Δz within ~0.01 mm).
    ``dead_zone``: :mod:`deltaz.ops.dead_zone`, applied to the whole map's Δz (after tiling); None = off.
    ``mirror_agreement``: the mirror agreement (:mod:`deltaz.ops.agreement`), tile by tile. ``smooth``: the surface
    smoothing (:mod:`deltaz.ops.smooth`), on the whole map after the dead zone (Δz then includes it).
    """
    with torch.autocast(next(model.parameters()).device.type, dtype=torch.bfloat16, enabled=bf16):
        delta_z = _predict(model, depth_mm, image, fill_holes, depth_range_mm, max_pixels, tile_overlap,
                           mirror_agreement)
    depth_t = torch.from_numpy(np.ascontiguousarray(depth_mm, dtype=np.float32))
    delta_z = apply_dead_zone(torch.from_numpy(delta_z), depth_t, dead_zone)
    if smooth:
        delta_z = smooth_delta_z(depth_t, delta_z)
    return delta_z.numpy()


def _predict(model, depth_mm, image, fill_holes, depth_range_mm, max_pixels, tile_overlap,
             mirror_agreement) -> np.ndarray:
    """:func:`predict_delta_z` without the autocast context."""
    device = next(model.parameters()).device
    H, W = depth_mm.shape
    valid = depth_mm[depth_mm > 0]
    lo, hi = (float(valid.min()), float(valid.max())) if depth_range_mm is None else map(float, depth_range_mm)
    depth_range = torch.tensor([[lo, hi]], dtype=torch.float32, device=device)
    depth_t = torch.from_numpy(np.ascontiguousarray(depth_mm, dtype=np.float32)).to(device)[None, None]
    image_t = None if image is None else torch.from_numpy(image).to(device)[None]
    if max_pixels is None or H * W <= max_pixels:
        out = refine(model, depth_t, image=image_t, depth_range=depth_range, keep_holes=not fill_holes,
                     mirror_agreement=mirror_agreement)
        return out["delta_z"][0, 0].float().cpu().numpy()
    th, tw = _tile_size(H, W, int(max_pixels), tile_overlap)
    total = np.zeros((H, W), dtype=np.float32)
    weight = np.zeros((H, W), dtype=np.float32)
    rows, cols = _tile_starts(H, th, tile_overlap), _tile_starts(W, tw, tile_overlap)
    for y in rows:
        wy = _ramp(th, tile_overlap, y == 0, y == rows[-1])
        for x in cols:
            wx = _ramp(tw, tile_overlap, x == 0, x == cols[-1])
            tile_image = None if image_t is None else image_t[..., y:y + th, x:x + tw]
            out = refine(model, depth_t[..., y:y + th, x:x + tw], image=tile_image, depth_range=depth_range,
                         keep_holes=not fill_holes, mirror_agreement=mirror_agreement)
            w2 = wy[:, None] * wx[None, :]
            total[y:y + th, x:x + tw] += w2 * out["delta_z"][0, 0].float().cpu().numpy()
            weight[y:y + th, x:x + tw] += w2
    return total / weight


def refine_depth(depth, image=None, checkpoint: str | Path | None = None, *, device: str | None = "auto",
                 fill_holes: bool = False, resize_image: bool = False,
                 depth_range_mm: tuple[float, float] | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                 tile_overlap: int = TILE_OVERLAP, bf16: bool = False, colour_scale: float = 1.0,
                 dead_zone: tuple[float, float] | None = DEAD_ZONE, mirror_agreement: bool = MIRROR_AGREEMENT,
                 weighted_median: bool = False, smooth: bool = SURFACE_SMOOTHING,
                 on_note: Callable[[str], None] | None = None,
                 depth_name: str = "depth", image_name: str = "image") -> np.ndarray:
    """Refine one depth map: ``depth_refined = depth + Δz`` (mm, ``(H, W)`` float32).

    Args:
        depth: ``(H, W)`` z-depth in mm; 0 or NaN/inf = hole; no negative values.
        image: ``(H, W, 3)`` uint8 or float in [0, 1] (or k× larger, see :func:`prepare_image`); required
            exactly when the model takes images (``in_channels == 4``).
        checkpoint: ``.pt`` file or run folder; None = the shipped weights.
        device: ``"auto"`` (cuda when available, as the CLI), ``"cpu"``, ``"cuda"``. fill_holes: let Δz fill holes (else they stay as they came).
        resize_image: resize an image of any other size to the depth map's.
        depth_range_mm: ``(min, max)`` mm for the model's normalisation (default: the map's valid min/max).
        max_pixels, tile_overlap: tiling of large maps (None = never tile). bf16: bfloat16 convolutions.
        colour_scale: a selection model's colour weight times this (:func:`deltaz.model.colour_scaled`; > 1
            leaves more of the input alone); 1 = as trained, the only value other models accept.
        dead_zone: ``(farther, nearer)``: corrections smaller than these fractions of the depth are dropped
            (:mod:`deltaz.ops.dead_zone`); None = keep every correction.
        mirror_agreement: keep only the corrections the refiner also makes on the map's left-right mirror
            (:mod:`deltaz.ops.agreement`; twice the refiner's time).
        weighted_median: a selection model copies the weighted median of its candidates' depths instead of their
            weighted mean (:func:`deltaz.model.median_selection`; other models ignore it).
        smooth: the surface smoothing of the refined map (:mod:`deltaz.ops.smooth`: a bilateral filter on depth
            at the input's own noise level).
        on_note: called with each note (e.g. the image was downsampled); default: :func:`warnings.warn`.
        depth_name, image_name: how errors and notes name the inputs (the CLI passes file names).
    Returns:
        the refined depth, holes marked as in ``depth`` (unless filled); a valid pixel whose refined depth is
        ``<= 0`` becomes a hole (0).
    """
    clean, holes = check_depth(depth, depth_name)
    dead_zone = check_dead_zone(dead_zone)
    model = load_model(checkpoint, device)
    wants_image = getattr(model, "in_channels", 1) == 4
    if wants_image and image is None:
        raise ConfigError(f"--image: this checkpoint's model takes an RGB image with the depth (in_channels 4); "
                          f"pass the image of {depth_name}")
    if not wants_image and image is not None:
        raise ConfigError("--image: this checkpoint's model takes depth only (in_channels 1); drop --image")
    image_chw = None
    if image is not None:
        image_chw, note = prepare_image(image, clean.shape, resize_image, image_name, depth_name)
        if note:
            (on_note or (lambda text: warnings.warn(text, stacklevel=3)))(note)
    with colour_scaled_parts(model, colour_scale), median_selection(model, weighted_median):
        delta_z = predict_delta_z(model, clean, image_chw, fill_holes, depth_range_mm, max_pixels, tile_overlap, bf16,
                                  dead_zone, mirror_agreement, smooth)
    refined = clean + delta_z
    good = np.isfinite(refined) & (refined > 0)
    original = np.asarray(depth, dtype=np.float32)
    keep_marker = holes & ~(good if fill_holes else np.zeros_like(good))
    out = np.where(keep_marker, original, np.where(good, refined, np.float32(0)))
    return out.astype(np.float32)
