"""The U-Net of :class:`deltaz.model.DeltaZUnet`, drawn from the built model itself.

:func:`unet_blocks` walks the model's modules (``stem``, ``down``, ``up``, ``head``) and reads each block's
channel counts from its convolutions, so the drawing cannot drift from the code; :func:`render_unet` draws
them as the usual "U": the encoder going down on the left, the decoder coming back up on the right, the skip
connections across.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch import nn

from deltaz.viz.figures import NotebookFigure

__all__ = ["unet_blocks", "render_unet"]


def _convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


def unet_blocks(model: nn.Module) -> list[dict[str, Any]]:
    """The blocks of a built ``DeltaZUnet`` in the order data flows through them.

    Each block is a dict: ``name`` (``"stem"``, ``"down1"`` …, ``"up…"``, ``"head"``), ``side`` (``"encoder"``,
    ``"decoder"`` or ``"head"``), ``level`` (0 = full resolution, ``i`` = ``1/2^i``), ``c_in`` / ``c_out`` (channels
    entering and leaving, read from the block's first and last ``Conv2d``) and, for a decoder block, ``c_skip``
    (channels of the encoder features concatenated to it). Raises ``TypeError`` for a model without those parts.
    """
    for part in ("stem", "down", "up", "head"):
        if not hasattr(model, part):
            raise TypeError(f"{type(model).__name__} has no {part!r}: expected a DeltaZUnet")
    blocks = []
    stem = _convs(model.stem)
    blocks.append({"name": "stem", "side": "encoder", "level": 0,
                   "c_in": stem[0].in_channels, "c_out": stem[-1].out_channels})
    for i, block in enumerate(model.down, start=1):
        convs = _convs(block)
        blocks.append({"name": f"down{i}", "side": "encoder", "level": i,
                       "c_in": convs[0].in_channels, "c_out": convs[-1].out_channels})
    depth = len(model.down)
    for k, up in enumerate(model.up):
        level = depth - 1 - k
        reduce, convs = up.reduce, _convs(up.block)
        blocks.append({"name": f"up{level}", "side": "decoder", "level": level, "c_in": reduce.in_channels,
                       "c_skip": convs[0].in_channels - reduce.out_channels, "c_out": convs[-1].out_channels})
    head = _convs(model.head)
    blocks.append({"name": "head", "side": "head", "level": 0,
                   "c_in": head[0].in_channels, "c_out": head[-1].out_channels})
    return blocks


def _box(ax, x: float, y: float, text: str, colour: str) -> None:
    ax.add_patch(FancyBboxPatch((x - 0.9, y - 0.32), 1.8, 0.64, boxstyle="round,pad=0.04", fc=colour, ec="0.3"))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def _arrow(ax, a: tuple[float, float], b: tuple[float, float], **kw: Any) -> None:
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=10, shrinkA=14, shrinkB=14, **kw))


def render_unet(model: nn.Module, title: str | None = None, input_hw: tuple[int, int] | None = None) -> Figure:
    """A figure of the U-Net with the channel counts of ``model`` (:func:`unet_blocks`).

    Boxes: one conv block each, labelled ``name: c_in → c_out`` and the resolution (``H×W`` for ``input_hw``,
    else ``1/2^i``); arrows down = 2×2 max-pool, up = bilinear ×2 then a 1×1 conv; dashed = skip connection
    (concatenated). Returns a Matplotlib ``Figure`` (no pyplot state).
    """
    blocks = unet_blocks(model)
    depth = max(b["level"] for b in blocks)
    fig = NotebookFigure(figsize=(2.0 * depth + 4.0, 1.1 * depth + 2.4), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)

    def where(b: dict[str, Any]) -> tuple[float, float]:
        if b["side"] == "head":
            return 3.2 + 2 * depth, 0.0
        x = 1.0 + b["level"] if b["side"] == "encoder" else 1.0 + 2 * depth - b["level"]
        return x, -1.1 * b["level"]

    def size(level: int) -> str:
        if input_hw is None:
            return "full res." if level == 0 else f"1/{2**level} res."
        return f"{input_hw[0] // 2**level}×{input_hw[1] // 2**level}"

    encoder = {b["level"]: b for b in blocks if b["side"] == "encoder"}
    previous = None
    for b in blocks:
        x, y = where(b)
        colour = {"encoder": "#cfe2f3", "decoder": "#d9ead3", "head": "#fce5cd"}[b["side"]]
        skip = f" (+{b['c_skip']} skip)" if "c_skip" in b else ""
        _box(ax, x, y, f"{b['name']}: {b['c_in']}{skip} → {b['c_out']}\n{size(b['level'])}", colour)
        if previous is not None:
            _arrow(ax, where(previous), (x, y), color="0.2")
        if "c_skip" in b:
            (xs, ys) = where(encoder[b["level"]])
            ax.add_patch(FancyArrowPatch((xs + 0.95, ys), (x - 0.95, y), arrowstyle="-|>", mutation_scale=10,
                                         color="C1", linestyle="--"))
        previous = b
    ax.text(1.0, 0.7, f"input: {blocks[0]['c_in']} channels", ha="center", fontsize=8)
    ax.text(3.2 + 2 * depth, 0.7, "Δz (+ log b)" if blocks[-1]["c_out"] == 2 else "Δz (mm, ×scale)", ha="center", fontsize=8)
    ax.set_xlim(-0.2, 4.4 + 2 * depth)
    ax.set_ylim(-1.1 * depth - 0.6, 1.1)
    ax.set_axis_off()
    n_params = sum(p.numel() for p in model.parameters())
    ax.set_title(title or f"{type(model).__name__}: {depth} downsamplings, {n_params:,} parameters "
                          "(dashed: skip connections)")
    return fig
