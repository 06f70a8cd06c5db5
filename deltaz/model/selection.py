"""The selection head of :class:`deltaz.model.SelectUnet`: a correction that copies depth from a neighbour.

A plain Δz head must learn every correction's size from scratch. Most errors of a real initial depth are
wrong values next to right ones (outliers, fattened or eroded edges, flying pixels), and the fix is a depth
already present a few pixels away. The selection head predicts, at every pixel, softmax weights ``w_j`` over
the ``K = (2r + 1)²`` input depths ``d_j`` of its window (radius ``r`` px, replicate padding; with ``far``, also
the window's offsets times ``far``: :func:`window_offsets`) and a gain ``a``:

``Δz = (a · (Σ_j w_j d_j − d) + res) · h``   (normalised units × the half span ``h``, mm; ``d`` the input)

with a free residual ``res``. The weights' logits are ``pos_j − |e − e_j|²/E − β·|c − c_j| − 5·(1 − v_j)``:
learned per-position logits ``pos``; the distance of ``E``-dimensional learned embeddings ``e`` (which pixels
belong together); the colour distance of the network's image input ``c = 2·image − 1`` (mean |·| over RGB,
weighted by ``β = COLOUR_WEIGHT_INIT · exp(s)`` with a learned log-scale ``s``, 0 at init); a penalty on
candidates that are holes (``v_j = 0``). ``res``, ``a`` and ``pos`` come from one zero-initialised conv, so an
untrained model is the identity (``Δz == 0`` exactly). With ``a = 1`` and ``res = 0`` the refined depth is a
convex combination of the window's input depths: it cannot leave their range.

At inference the weighted mean ``Σ_j w_j d_j`` can be replaced by the weighted *median* of the candidates' depths
(:func:`weighted_median`; ``deltaz.model.refine(..., weighted_median=True)``, ``--weighted-median`` in ``deltaz
refine`` / ``deltaz evaluate`` / ``deltaz demo`` / the Middlebury benchmarks; training keeps the mean, whose weights
get a gradient): where the weights are split between two surfaces (a depth edge) the mean lands between them, at a depth
no surface has, the median copies one of them. An option, not the default: held out it made fewer pixels worse on
every row and lowered SGBM's best rows, but raised the plane sweep's `search+deltaz` by 1.1–2.6 % on the Middlebury
pairs (+0.6 % on the synthetic test scans; docs/EXPERIMENTS.md, "The selection head's weighted median").
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

__all__ = ["EMBED_DIM", "HOLE_PENALTY", "COLOUR_WEIGHT_INIT", "MEDIAN_HELP", "add_median_flag",
           "colour_log_scale_from_legacy", "window_offsets", "window_values", "window_distance", "weighted_median",
           "select_delta"]

#: Width of the learned pixel embedding that says which neighbours belong to the same surface.
EMBED_DIM = 8
#: ``--weighted-median``'s help (``deltaz refine``, ``deltaz evaluate``, ``deltaz demo``, the Middlebury benchmarks).
MEDIAN_HELP = ("a selection refiner (deltaz_select) copies the weighted median of its candidate depths instead of their "
               "weighted mean: fewer pixels made worse (held out: on every row), but plane-sweep input corrected a little "
               "less (held out: +0.6 to +2.6 %% on its best row; default off: the mean, as trained)")


def add_median_flag(parser: argparse.ArgumentParser) -> None:
    """``--weighted-median`` (off by default: the mean, as trained), setting ``args.weighted_median``."""
    parser.add_argument("--weighted-median", action="store_true", help=MEDIAN_HELP)

#: Logit penalty on a hole of the input as a candidate (its depth is the pre-fill's or 0).
HOLE_PENALTY = 5.0
#: Colour weight β at init, per unit of mean |Δ| of ``2·image − 1``. β is learned in log space (``β =
#: COLOUR_WEIGHT_INIT · exp(s)``) so that Adam can move it by a useful factor in a short run; the first version
#: learned a raw ``softplus`` input, which moved β by under 5 % in 1500 steps. A large β keeps the pixel's own
#: depth unless a neighbour of the same colour differs. 28.5 was chosen on the design data (synthetic validation
#: scan, Motorcycle's left half) against 7.1, the first version's value (docs/EXPERIMENTS.md, "Middlebury").
COLOUR_WEIGHT_INIT = 28.5


def window_offsets(radius: int, far: int = 0) -> list[tuple[int, int]]:
    """The candidates' ``(dy, dx)`` offsets (px): the ``(2r + 1)²`` window, row-major from ``(−r, −r)`` (index
    ``(2r + 1)² // 2`` is the pixel itself), then, if ``far >= 2``, the same window's offsets times ``far`` that
    it does not already hold (``r = 3, far = 3``: 40 more, reaching 9 px). ``far = 0``: the window alone."""
    dense = [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]
    if far < 2:
        return dense
    return dense + [(far * dy, far * dx) for dy, dx in dense if max(abs(far * dy), abs(far * dx)) > radius]


def _windows(x: torch.Tensor, radius: int, far: int = 0):
    """The shifted views of ``x (B, C, H, W)`` (replicate padding), one per offset of :func:`window_offsets`."""
    H, W = x.shape[-2:]
    offsets = window_offsets(radius, far)
    reach = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    padded = F.pad(x, (reach,) * 4, mode="replicate")
    return [padded[..., reach + dy:reach + dy + H, reach + dx:reach + dx + W] for dy, dx in offsets]


def window_values(x: torch.Tensor, radius: int, far: int = 0) -> torch.Tensor:
    """The ``K`` values around every pixel, in :func:`window_offsets` order: ``(B, C, H, W)`` →
    ``(B, C, K, H, W)``, replicate padding (``far = 0``: ``K = (2·radius + 1)²``, ``F.unfold``'s layout)."""
    return torch.stack(_windows(x, radius, far), dim=2)


def window_distance(x: torch.Tensor, radius: int, squared: bool = False, far: int = 0) -> torch.Tensor:
    """Mean over channels of ``|x − x_j|`` (``squared``: ``(x − x_j)²``) to each of the ``K`` neighbours:
    ``(B, C, H, W)`` → ``(B, K, H, W)``. One neighbour at a time, so the ``(B, C, K, H, W)`` stack of
    :func:`window_values` is never built (4× faster forward and backward on the CPU than unfolding it)."""
    norm = torch.square if squared else torch.abs
    return torch.stack([norm(near - x).mean(1) for near in _windows(x, radius, far)], dim=1)


def weighted_median(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per pixel, the first of the ``K`` candidate ``values`` in ascending order whose cumulative ``weights``
    reach 0.5: ``(B, K, H, W)`` ×2 (weights ≥ 0, summing to 1 over ``K``) → ``(B, 1, H, W)``.

    A candidate holding more than half the weight is the median itself, so only the other pixels are sorted (with
    the demo checkpoint a pass on 8 maps of 160×128 took 3 % longer than with the mean).
    """
    top, arg = weights.max(dim=1, keepdim=True)
    out = values.gather(1, arg)
    split = (top <= 0.5)[:, 0]  # (B, H, W): no candidate holds more than half
    if bool(split.any()):
        v = values.permute(0, 2, 3, 1)[split]  # (N, K)
        order = v.argsort(dim=1)
        cumulative = weights.permute(0, 2, 3, 1)[split].gather(1, order).cumsum(1)
        k = (cumulative < 0.5).sum(1, keepdim=True).clamp(max=v.shape[1] - 1)
        out[:, 0][split] = v.gather(1, order.gather(1, k))[:, 0]
    return out


def select_delta(inputs: torch.Tensor, embedding: torch.Tensor, residual: torch.Tensor, gain: torch.Tensor,
                 logits: torch.Tensor, radius: int, colour_log_scale: torch.Tensor | None, far: int = 0,
                 median: bool = False) -> torch.Tensor:
    """Δz in normalised units ``(B, 1, H, W)``: ``gain · (Σ_j w_j d_j − d) + residual`` (module docstring), or with
    ``median`` the weighted median of the ``d_j`` (:func:`weighted_median`; no gradient reaches the weights) instead
    of their weighted mean.

    Args:
        inputs: the network's input stack ``(B, 2 [+3], H, W)``: normalised depth, validity [, ``2·image − 1``].
        embedding: ``(B, EMBED_DIM, H, W)``. residual, gain: ``(B, 1, H, W)``. logits: the learned position
            logits ``(B, K, H, W)``. colour_log_scale: the learned ``s`` of β (scalar), None without an image.
        radius, far: the candidates (:func:`window_offsets`).
    """
    logits = logits - window_distance(embedding, radius, squared=True, far=far)
    logits = logits - HOLE_PENALTY * (1 - window_values(inputs[:, 1:2], radius, far)[:, 0])
    if colour_log_scale is not None:
        beta = COLOUR_WEIGHT_INIT * torch.exp(colour_log_scale)
        logits = logits - beta * window_distance(inputs[:, 2:5], radius, far=far)
    weights = torch.softmax(logits, dim=1)
    depth = inputs[:, :1]
    candidates = window_values(depth, radius, far)[:, 0]
    chosen = weighted_median(candidates, weights) if median else (weights * candidates).sum(1, keepdim=True)
    return gain * (chosen - depth) + residual


def colour_log_scale_from_legacy(raw: torch.Tensor) -> torch.Tensor:
    """The log-scale ``s`` that gives a first-version checkpoint's ``β = softplus(raw)`` (same outputs)."""
    return torch.log(F.softplus(raw) / COLOUR_WEIGHT_INIT)
