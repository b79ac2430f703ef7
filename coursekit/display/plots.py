"""Static plots of a finished run (the live dashboard is :mod:`coursekit.display.dashboard`).

Figures are built with :class:`matplotlib.figure.Figure` directly, so no pyplot global
state is touched and they render the same in a terminal, a test and a notebook.

An ablation grid's figures (:mod:`coursekit.recipes.ablate`): means with intervals against an
axis (``interval_figure``) and a cost/quality scatter (``tradeoff_figure``), both from plain
numbers, composed from a grid's summaries over seeds by ``ablation_figures``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

if TYPE_CHECKING:
    from coursekit.experiments.grid import Group


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


Point = tuple[Any, float, float | None, float | None]
"""(x, mean, low, high): a mean with its interval; low and high None draw no bar."""


def _bars(points: Sequence[Point]) -> list[list[float]]:
    """Return matplotlib's ``yerr`` ([below], [above]) for points with optional intervals."""
    below = [0.0 if low is None else mean - low for _, mean, low, _ in points]
    above = [0.0 if high is None else high - mean for _, mean, _, high in points]
    return [below, above]


def interval_figure(
    series: Mapping[str, Sequence[Point]],
    *,
    x_label: str,
    y_label: str,
    title: str,
    log2_x: bool = False,
) -> Figure:
    """Plot each series' means against x with their intervals as error bars.

    Used for an ablation's metric against an axis (validation loss against LoRA rank r, the
    bars the 95% interval over seeds). Numeric x values are placed by value (on a log₂ scale
    with ``log2_x``, as ranks double); any other x (a target preset, a method) is a category,
    placed in first-seen order.

    Args:
        series: label → points ``(x, mean, low, high)``; a label of ``""`` draws no legend.
        x_label: the x axis's label.
        y_label: the y axis's label.
        title: the axes title.
        log2_x: a log₂ x axis (numeric x > 0 only).

    Example:
        >>> figure = interval_figure({"": [(4, 2.3, 2.2, 2.4), (8, 2.1, None, None)]},
        ...                          x_label="rank r", y_label="val loss", title="", log2_x=True)
        >>> figure.axes[0].get_xscale(), figure.axes[0].get_xlabel()
        ('log', 'rank r')
    """
    figure = Figure(figsize=(6.4, 3.8))
    axes = figure.add_subplot()
    xs = [x for points in series.values() for x, *_ in points]
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)
    categories = list(dict.fromkeys(map(str, xs)))
    for label, points in series.items():
        where = [x if numeric else categories.index(str(x)) for x, *_ in points]
        axes.errorbar(where, [mean for _, mean, *_ in points], yerr=_bars(points), fmt="o-",
                      capsize=4, label=label or None)  # fmt: skip
    if numeric and log2_x:
        axes.set_xscale("log", base=2)
        axes.set_xticks(sorted(set(xs)), [f"{x:g}" for x in sorted(set(xs))])
    elif not numeric:
        axes.set_xticks(range(len(categories)), categories)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    axes.ticklabel_format(axis="y", useOffset=False)
    axes.grid(alpha=0.3)
    if any(series):
        axes.legend(fontsize=8)
    return figure


def tradeoff_figure(
    points: Sequence[tuple[str, float, float, float | None, float | None]],
    *,
    x_label: str,
    y_label: str,
    title: str,
) -> Figure:
    """Scatter cost against quality, one labelled point per configuration.

    Used for an ablation's memory/quality trade-off: x = peak memory, y = validation loss
    with its interval over seeds; the best trade-offs lie to the lower left.

    Args:
        points: ``(label, x, y, y_low, y_high)``; y_low/y_high None draw no bar.
        x_label: the x axis's label.
        y_label: the y axis's label.
        title: the axes title.

    Example:
        >>> figure = tradeoff_figure([("rank=4", 700.0, 2.3, 2.2, 2.4)],
        ...                          x_label="peak memory (MiB)", y_label="val loss", title="")
        >>> [text.get_text() for text in figure.axes[0].texts]
        ['rank=4']
    """
    figure = Figure(figsize=(6.4, 3.8))
    axes = figure.add_subplot()
    for label, x, y, low, high in points:
        axes.errorbar([x], [y], yerr=_bars([(x, y, low, high)]), fmt="o", capsize=4)
        axes.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.set_title(title)
    axes.ticklabel_format(useOffset=False)
    axes.grid(alpha=0.3)
    return figure


def ablation_figures(
    groups: Sequence[Group], axis: str | None, confidence: float = 0.95
) -> dict[str, Figure]:
    """Return an ablation's figures by file name, from its settings' summaries over seeds.

    ``val_loss_vs_<axis>.png`` (and ``eval_summary_score_vs_<axis>.png`` when the funnel
    ran): the mean against the axis's values, one line per setting of the other axes, with
    the intervals as bars (log₂ x for ``adapter.rank``); ``memory_vs_val_loss.png``: the
    memory/quality trade-off. Figures whose metrics no group has are left out.

    Args:
        groups: :func:`coursekit.experiments.grid.group_by_setting`'s summaries.
        axis: the field path on x (``adapter.rank``); None draws no metric-vs-axis figure.
        confidence: the intervals' confidence, for the titles.

    Example:
        >>> from coursekit.experiments.grid import expand, group_by_setting
        >>> cells = expand({"adapter.rank": (4, 8)}, seeds=(0,))
        >>> metrics = [{"val_loss": 2.0, "peak_memory_bytes": 2**30}] * 2
        >>> sorted(ablation_figures(group_by_setting(zip(cells, metrics)), "adapter.rank"))
        ['memory_vs_val_loss.png', 'val_loss_vs_rank.png']
    """
    from coursekit.experiments.grid import along_axis

    figures, leaf = {}, (axis or "").rpartition(".")[2]
    for metric, title in (("val_loss", "val loss"), ("eval_summary_score", "summary score")):
        series = along_axis(groups, axis, metric) if axis else {}
        if series:
            figures[f"{metric}_vs_{leaf}.png"] = interval_figure(
                series, x_label=axis, y_label=f"{title} (mean over seeds)",
                title=f"{title} against {leaf} ({confidence:.0%} intervals)",
                log2_x=axis == "adapter.rank",
            )  # fmt: skip
    points = [
        (g.label, g.metrics["peak_memory_bytes"].mean * 2.0**-20, g.metrics["val_loss"].mean,
         g.metrics["val_loss"].low, g.metrics["val_loss"].high)
        for g in groups if g.metrics.get("val_loss") and g.metrics.get("peak_memory_bytes")
    ]  # fmt: skip
    if points:
        figures["memory_vs_val_loss.png"] = tradeoff_figure(
            points, x_label="peak memory (MiB, mean over seeds)", y_label="val loss (mean)",
            title="Memory / quality trade-off (lower left is better)",
        )  # fmt: skip
    return figures
