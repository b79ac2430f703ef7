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
