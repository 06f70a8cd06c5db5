"""Sparsification curves of a confidence map: error left after removing the least confident pixels."""

from __future__ import annotations

from matplotlib.figure import Figure

from deltaz.ops.confidence import Sparsification
from deltaz.viz.figures import NotebookFigure

__all__ = ["render_sparsification"]


def render_sparsification(
    result: Sparsification | dict[str, Sparsification], title: str = "Sparsification", unit: str = "mm"
) -> Figure:
    """A figure of sparsification curves: confidence order, oracle and random, with AUSE in the legend.

    ``result``: one :class:`Sparsification`, or ``{label: Sparsification}`` to compare several (their
    oracles are drawn dashed in the same colour). Returns a Matplotlib ``Figure`` (no pyplot state).
    """
    results = result if isinstance(result, dict) else {"confidence": result}
    fig = NotebookFigure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    first = next(iter(results.values()))
    ax.plot(100 * first.fractions, first.random, color="0.5", linestyle=":", label="random order (flat mean)")
    for i, (label, r) in enumerate(results.items()):
        colour = f"C{i}"
        ax.plot(100 * r.fractions, r.curve, color=colour, label=f"{label} (AUSE {r.ause:.3g} {unit})")
        ax.plot(100 * r.fractions, r.oracle, color=colour, linestyle="--", label=f"{label}: oracle (true error)")
    ax.set_xlabel("pixels removed, least confident first [%]")
    ax.set_ylabel(f"mean absolute error of the rest [{unit}]" if unit else "mean error of the rest (normalised)")
    ax.set_title(title)
    ax.set_xlim(0, 100)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig
