"""Tier I: compare a learner's metrics callback with the run's own ``metrics.jsonl``.

The notebook trains once with two callbacks side by side: the learner's recorder and
coursekit's ``MetricsLogger`` (every run writes ``metrics.jsonl``). Both receive the same
rows, so every value the learner recorded must equal the logged one: for each metric m and
step t, the recorded pairs (t, m_t) equal the rows' (step, m) in order.

Guide: docs/lr-finder-curriculum-dashboard.md (Dashboard). Used in
notebooks/phase3_bonus.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

History = Mapping[str, Sequence[tuple[int, float]]]
"""Metric name → [(step, value), ...], what the learner's recorder keeps."""


def logged_history(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Return ``metrics.jsonl`` rows as a history: every key but ``step``, as (step, value).

    Example:
        >>> logged_history([{"step": 1, "loss": 2.0}, {"step": 1, "val_loss": 2.5}])
        {'loss': [(1, 2.0)], 'val_loss': [(1, 2.5)]}
    """
    history: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for name, value in row.items():
            if name != "step":
                history.setdefault(name, []).append((int(row["step"]), value))
    return history


def compare_history(yours: History, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Compare a recorded history with the logged rows, one table row per metric.

    Each row: ``metric``, ``yours`` (entries recorded), ``logged`` (entries in the rows),
    ``max_abs_diff`` over the entries paired in order with the same step (NaN when none),
    and ``equal``: the same (step, value) pairs in the same order.

    Example:
        >>> compare_history({"loss": [(1, 2.0)]}, [{"step": 1, "loss": 2.0}])
        [{'metric': 'loss', 'yours': 1, 'logged': 1, 'max_abs_diff': 0.0, 'equal': True}]
    """
    logged = logged_history(rows)
    table = []
    for name in sorted(set(logged) | set(yours)):
        mine = [(int(s), float(v)) for s, v in yours.get(name, [])]
        theirs = [(int(s), float(v)) for s, v in logged.get(name, [])]
        # in order: a step may hold two values (elapsed_s of its step and its evaluation row)
        diffs = [abs(a[1] - b[1]) for a, b in zip(mine, theirs, strict=False) if a[0] == b[0]]
        table.append(
            {
                "metric": name,
                "yours": len(mine),
                "logged": len(theirs),
                "max_abs_diff": max(diffs) if diffs else math.nan,
                "equal": mine == theirs,
            }
        )
    return table


def history_figure(yours: History, rows: Iterable[Mapping[str, Any]]) -> Figure:
    """Draw the learner's recorded loss and val loss over the logged ones (one panel).

    The logged curves are lines, the recorded values markers: where they agree, each
    marker sits on its line.

    Example:
        >>> figure = history_figure({"loss": [(1, 2.0), (2, 1.5)]},
        ...                         [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}])
        >>> figure.axes[0].get_title()
        'loss per target token: your recorder (markers) over metrics.jsonl (lines)'
    """
    from matplotlib.figure import Figure

    logged = logged_history(rows)
    figure = Figure(figsize=(7, 3.5), layout="constrained")
    axes = figure.subplots()
    for name, colour in (("loss", "tab:blue"), ("val_loss", "tab:orange")):
        if logged.get(name):
            steps, values = zip(*logged[name], strict=True)
            axes.plot(steps, values, "-", color=colour, label=f"{name} (metrics.jsonl)")
        if yours.get(name):
            steps, values = zip(*yours[name], strict=True)
            axes.plot(steps, values, "o", color=colour, fillstyle="none", label=f"{name} (yours)")
    axes.set(
        title="loss per target token: your recorder (markers) over metrics.jsonl (lines)",
        xlabel="step",
        ylabel="nats / target token",
    )
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend()
    return figure
