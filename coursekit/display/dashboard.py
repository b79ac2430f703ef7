"""A training dashboard: loss, learning rate, gradient norm and throughput against the step.

:func:`dashboard_figure` is a pure function from metric rows (the rows of ``metrics.jsonl``:
step, loss, val_loss on evaluation steps, lr, grad_norm, tokens_per_s, elapsed_s,
memory_bytes) to a 2 × 2 :class:`matplotlib.figure.Figure`. :class:`Dashboard` is a training
callback that redraws that figure in place in a notebook while a run goes, at most once per
``every_seconds`` and ``every_steps``; :func:`render_metrics` draws a finished (or killed)
run from its ``metrics.jsonl``.

Example:
    >>> figure = dashboard_figure([{"step": 1, "loss": 3.0, "lr": 1e-4, "grad_norm": 1.0,
    ...     "tokens_per_s": 500.0}, {"step": 1, "val_loss": 3.1}])
    >>> [axes.get_title() for axes in figure.axes]
    ['loss', 'learning rate', 'gradient norm (before clipping)', 'throughput']

Used by ``coursekit train`` runs watched from a notebook (enhancement I of docs/course.md);
guide: docs/lr-finder-curriculum-dashboard.md.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coursekit.errors import CoursekitError, CoursekitWarning

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Row = Mapping[str, Any]

_PANELS = (
    ("loss", ("loss", "val_loss"), "nats / target token", "linear"),
    ("learning rate", ("lr",), "lr", "linear"),
    ("gradient norm (before clipping)", ("grad_norm",), "global L2 norm", "log"),
    ("throughput", ("tokens_per_s",), "tokens / s", "linear"),
)
"""(title, row keys, y label, y scale) of each panel, left to right, top to bottom."""


class MetricsError(CoursekitError, ValueError):
    """A ``metrics.jsonl`` file is missing or holds a line that is not a JSON object."""


class MetricsWarning(CoursekitWarning):
    """A ``metrics.jsonl`` file ends in a truncated line (the run stopped mid-write)."""


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Return the rows of a ``metrics.jsonl`` file (or of ``path/metrics.jsonl``), in order.

    A last line that is not valid JSON is a run killed mid-write: it is skipped with a
    :class:`MetricsWarning`. Blank lines are skipped.

    Raises:
        MetricsError: the file does not exist, or a line before the last is not a JSON
            object (the message names ``file:line``).
    """
    path = Path(path)
    path = path / "metrics.jsonl" if path.is_dir() else path
    if not path.is_file():
        raise MetricsError(f"{path}: no such metrics file; pass a run's metrics.jsonl or its run")
    lines = path.read_text(encoding="utf-8").splitlines()
    numbered = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    rows = []
    for number, line in numbered:
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            if number == numbered[-1][0]:
                warnings.warn(
                    f"{path}:{number}: truncated last line skipped (the run stopped mid-write)",
                    MetricsWarning,
                    stacklevel=2,
                )
                break
            raise MetricsError(
                f"{path}:{number}: not valid JSON ({error.msg}); fix or delete that line"
            ) from None
        if not isinstance(row, dict):
            raise MetricsError(f"{path}:{number}: expected a JSON object, got {line[:40]!r}")
        rows.append(row)
    return rows


def series(rows: Iterable[Row], key: str) -> tuple[list[float], list[float]]:
    """Return (steps, values) of the rows that have a numeric ``key`` (NaN and inf kept).

    Example:
        >>> series([{"step": 1, "loss": 2.0}, {"step": 2}, {"step": 3, "loss": 1.5}], "loss")
        ([1, 3], [2.0, 1.5])
    """
    points = [
        (row["step"], row[key])
        for row in rows
        if isinstance(row.get(key), int | float) and not isinstance(row.get(key), bool)
    ]
    return [step for step, _ in points], [value for _, value in points]


def _headline(rows: list[Row]) -> str:
    """Return "step 120 · 3.2 min · 1.50 GiB": the last step, elapsed time and memory."""
    parts = []
    for key, template, scale in (
        ("step", "step {:,.0f}", 1),
        ("elapsed_s", "{:.1f} min", 60),
        ("memory_bytes", "{:.2f} GiB", 2**30),
    ):
        value = next((row[key] for row in reversed(rows) if key in row), None)
        if isinstance(value, int | float):
            parts.append(template.format(value / scale))
    return " · ".join(parts)


def dashboard_figure(rows: Iterable[Row], *, title: str = "") -> Figure:
    """Draw loss (and val loss), lr, grad norm and tokens/s against the step, one panel each.

    Args:
        rows: metric rows; a key a row lacks is simply not plotted (an empty panel says so).
        title: text before the headline (last step, elapsed minutes, memory).

    Returns:
        A figure with four axes (2 × 2); x = optimizer step.
    """
    from matplotlib.figure import Figure  # here: keeps ``import coursekit.train`` fast

    rows = list(rows)
    figure = Figure(figsize=(10, 6), layout="constrained")
    for axes, (name, keys, ylabel, scale) in zip(figure.subplots(2, 2).flat, _PANELS, strict=True):
        for key in keys:
            steps, values = series(rows, key)
            if steps:
                axes.plot(steps, values, "o-" if key == "val_loss" else "-", label=key)
        if not axes.lines:
            axes.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=axes.transAxes)
        elif scale == "log" and all(v > 0 for line in axes.lines for v in line.get_ydata()):
            axes.set_yscale("log")
        if len(axes.lines) > 1:
            axes.legend()
        axes.set(title=name, xlabel="step", ylabel=ylabel)
        axes.grid(alpha=0.3)
    figure.suptitle(" — ".join(part for part in (title, _headline(rows)) if part))
    return figure


def render_metrics(path: str | Path) -> Figure:
    """Draw the dashboard of a finished (or killed) run from its ``metrics.jsonl``."""
    return dashboard_figure(read_metrics(path), title=run_name(path))


def run_name(path: str | Path) -> str:
    """Return the run's name: the directory given, or the one holding the given file."""
    path = Path(path)
    return path.name if path.is_dir() else path.parent.name


class NotebookDisplay:
    """Show a figure in one notebook output and replace it on each later call (in place)."""

    def __init__(self) -> None:
        self._handle: Any = None

    def __call__(self, figure: Figure) -> None:
        """Display the figure as a PNG, updating the same output after the first call."""
        from IPython.display import Image, display

        from coursekit.display.plots import figure_png

        image = Image(data=figure_png(figure), format="png")
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)


class Dashboard:
    """Training callback that keeps the rows and redraws :func:`dashboard_figure` in place.

    A step redraws only when at least ``every_steps`` steps and ``every_seconds`` seconds
    passed since the last redraw; an evaluation and the end of the run always redraw.

    Args:
        every_steps: fewest new steps between two redraws (≥ 1).
        every_seconds: fewest seconds between two redraws (≥ 0); drawing a figure takes
            ~0.1 s, so the default keeps the dashboard under a few percent of a fast run.
        show: called with each new figure; default :class:`NotebookDisplay` (IPython).
        clock: seconds, monotonic (injectable for tests).
        title: shown before the headline of the figure.
    """

    def __init__(
        self,
        *,
        every_steps: int = 1,
        every_seconds: float = 2.0,
        show: Callable[[Figure], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        title: str = "",
    ) -> None:
        if every_steps < 1:
            raise ValueError(f"Dashboard every_steps must be >= 1 (got {every_steps})")
        if not every_seconds >= 0:
            raise ValueError(f"Dashboard every_seconds must be >= 0 (got {every_seconds})")
        self.every_steps, self.every_seconds, self.title = every_steps, every_seconds, title
        self._show = NotebookDisplay() if show is None else show
        self._clock = clock
        self.rows: list[dict[str, Any]] = []
        self.redraws = 0
        self._last_time, self._steps_since = -math.inf, 0

    @classmethod
    def from_metrics(cls, path: str | Path, **kwargs: Any) -> Dashboard:
        """Return a dashboard holding a finished run's rows (it renders itself in Jupyter)."""
        dashboard = cls(title=kwargs.pop("title", run_name(path)), **kwargs)
        dashboard.rows.extend(read_metrics(path))
        return dashboard

    def figure(self) -> Figure:
        """Return the dashboard figure of the rows so far."""
        return dashboard_figure(self.rows, title=self.title)

    def refresh(self) -> None:
        """Redraw now, whatever the throttle says."""
        self._show(self.figure())
        self.redraws += 1
        self._last_time, self._steps_since = self._clock(), 0

    def on_step(self, row: Row) -> None:
        """Keep the row; redraw if ``every_steps`` steps and ``every_seconds`` seconds passed."""
        self.rows.append(dict(row))
        self._steps_since += 1
        due = self._clock() - self._last_time >= self.every_seconds
        if due and self._steps_since >= self.every_steps:
            self.refresh()

    def on_eval(self, row: Row) -> None:
        """Keep the evaluation row (merged into the step's row when it has one) and redraw."""
        if self.rows and "step" in row and self.rows[-1].get("step") == row["step"]:
            self.rows[-1].update(row)
        else:
            self.rows.append(dict(row))
        self.refresh()

    def on_end(self, summary: Mapping[str, Any]) -> None:
        """Draw the final state of the run."""
        self.refresh()

    def _repr_png_(self) -> bytes:
        """Render in Jupyter as the current figure (so ``Dashboard.from_metrics(p)`` shows)."""
        from coursekit.display.plots import figure_png

        return figure_png(self.figure())
