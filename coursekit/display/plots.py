"""Static plots of a finished run (the live dashboard is :mod:`coursekit.display.dashboard`).

Figures are built with :class:`matplotlib.figure.Figure` directly, so no pyplot global
state is touched and they render the same in a terminal, a test and a notebook.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure


def plot_losses(history: Sequence[dict[str, Any]], *, title: str = "Loss") -> Figure:
    """Plot train loss per step and validation loss at its evaluation steps.

    Args:
        history: rows with ``step`` and optionally ``train_loss`` and ``val_loss`` (nats per
            target token), as in :class:`coursekit.recipes.phase1_baseline.BaselineResult`.
        title: the axes title.

    Returns:
        A figure with one axes; x = optimizer step, y = cross-entropy.

    Example:
        >>> fig = plot_losses([{"step": 0, "val_loss": 3.0}, {"step": 1, "train_loss": 2.9}])
        >>> fig.axes[0].get_xlabel()
        'step'
    """
    figure = Figure(figsize=(6.4, 3.6))
    axes = figure.add_subplot()
    for key, style in (("train_loss", "-"), ("val_loss", "o-")):
        points = [(row["step"], row[key]) for row in history if key in row]
        if points:
            steps, values = zip(*points, strict=True)
            axes.plot(steps, values, style, label=key.replace("_", " "))
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy (nats / target token)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend()
    return figure


def figure_png(figure: Figure, *, dpi: int = 96) -> bytes:
    """Return the figure rendered as PNG bytes.

    A :class:`~matplotlib.figure.Figure` built without pyplot has no notebook formatter, so
    notebooks show it as ``IPython.display.Image(figure_png(figure))``.

    Example:
        >>> figure_png(plot_losses([]))[1:4]
        b'PNG'
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def funnel_figure(*summaries: dict[str, Any]) -> Figure:
    """Draw evaluation funnels side by side: the rate of each stage with its 95% interval.

    Args:
        summaries: ``summary.json`` contents of ``coursekit eval`` (``funnel``: stage →
            ``rate``, ``low``, ``high``), e.g. the base model, an adapter and the references.

    Returns:
        A figure with one axes; x = stage, y = share of answers reaching it.

    Example:
        >>> stage = {"rate": 0.5, "low": 0.2, "high": 0.8}
        >>> funnel_figure({"model": "nano", "funnel": {"parses": stage}}).axes[0].get_ylabel()
        'share of answers'
    """
    figure = Figure(figsize=(7.2, 3.6))
    axes = figure.add_subplot()
    width = 0.8 / max(1, len(summaries))
    for index, summary in enumerate(summaries):
        stages = list(summary["funnel"])
        rates = [summary["funnel"][s]["rate"] for s in stages]
        errors = [
            [r - summary["funnel"][s]["low"] for s, r in zip(stages, rates, strict=True)],
            [summary["funnel"][s]["high"] - r for s, r in zip(stages, rates, strict=True)],
        ]
        positions = [i + index * width for i in range(len(stages))]
        label = summary.get("model", "") + (
            f" + {summary['adapter']}" if summary.get("adapter") else ""
        )
        axes.bar(positions, rates, width, yerr=errors, capsize=3, label=label)
        axes.set_xticks([i + width * (len(summaries) - 1) / 2 for i in range(len(stages))])
        axes.set_xticklabels([s.replace("_", " ") for s in stages], rotation=20, fontsize=8)
    axes.set_ylim(0.0, 1.0)
    axes.set_ylabel("share of answers")
    axes.set_title("Evaluation funnel (95% Wilson intervals)")
    axes.grid(alpha=0.3, axis="y")
    if summaries:
        axes.legend(fontsize=8)
    return figure
