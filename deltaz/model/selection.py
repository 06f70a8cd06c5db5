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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["EMBED_DIM", "HOLE_PENALTY", "COLOUR_WEIGHT_INIT", "colour_log_scale_from_legacy", "window_offsets",
           "window_values", "window_distance", "select_delta"]

#: Width of the learned pixel embedding that says which neighbours belong to the same surface.
EMBED_DIM = 8
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


def select_delta(inputs: torch.Tensor, embedding: torch.Tensor, residual: torch.Tensor, gain: torch.Tensor,
                 logits: torch.Tensor, radius: int, colour_log_scale: torch.Tensor | None, far: int = 0
                 ) -> torch.Tensor:
    """Δz in normalised units ``(B, 1, H, W)``: ``gain · (Σ_j w_j d_j − d) + residual`` (module docstring).

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
    return gain * ((weights * window_values(depth, radius, far)[:, 0]).sum(1, keepdim=True) - depth) + residual


def colour_log_scale_from_legacy(raw: torch.Tensor) -> torch.Tensor:
    """The log-scale ``s`` that gives a first-version checkpoint's ``β = softplus(raw)`` (same outputs)."""
    return torch.log(F.softplus(raw) / COLOUR_WEIGHT_INIT)
