"""The Phase 2 rank/memory explorer: controls → estimate → stacked bar, fit and suggestion.

``explore`` is the pure function behind the widget (tested without a browser): it turns the
controls' values into the memory breakdown of ``coursekit.memory.estimate``, the trainable
parameter count of ``coursekit.adapters.count_trainable``, whether the total fits the GPU
budget and the planner's suggestion for that budget. ``plot_breakdown`` draws the bytes alive
at the peak as one stacked bar next to the budget line. ``rank_explorer`` wires ipywidgets
controls to both.

Guide: docs/memory.md. Used in notebooks/phase2_analysis.ipynb (memory and rank trade-offs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from coursekit.adapters import count_trainable, run_methods
from coursekit.memory.estimate import GIB, MemoryBreakdown, estimate, parameter_count
from coursekit.memory.planner import (
    RANKS,
    DoesNotFit,
    adapter_for,
    model_config_from,
    plan,
)
from coursekit.presets import PRESETS
from coursekit.train.config import TrainConfig

BUDGETS_GB: tuple[int, ...] = (8, 16, 24, 40, 80)
"""GPU sizes offered by the explorer (GiB)."""
TARGET_CHOICES: tuple[str, ...] = ("qv", "attention", "mlp", "all-linear")
"""Adapter target presets offered by the explorer."""


@dataclass(frozen=True, kw_only=True)
class ExplorerView:
    """Everything the explorer shows for one setting of its controls."""

    breakdown: MemoryBreakdown
    """The estimate of the chosen configuration."""
    trainable_parameters: int
    """Trainable parameters (all of them for a full fine-tune)."""
    budget_bytes: int
    """The chosen GPU budget."""
    suggestion: str
    """The planner's best configuration for this model and budget, or why none fits."""

    @property
    def fits(self) -> bool:
        """Whether ``total_bytes`` ≤ budget."""
        return self.breakdown.total_bytes <= self.budget_bytes

    def summary(self) -> str:
        """One line: trainable parameters, total vs budget, fits or not."""
        verdict = "fits" if self.fits else "does NOT fit"
        return (
            f"trainable {self.trainable_parameters:,} · total "
            f"{self.breakdown.total_bytes / GIB:.2f} GiB of {self.budget_bytes / GIB:.0f} GiB: "
            f"{verdict} · peak in the {self.breakdown.peak_phase} phase"
        )


def explore(
    *,
    model: str = "qwen2.5-coder-0.5b",
    method: str = "lora",
    rank: int = 16,
    alpha: float = 32.0,
    targets: str = "qv",
    batch_size: int = 4,
    seq_len: int = 512,
    gradient_checkpointing: bool = False,
    budget_gb: float = 8,
) -> ExplorerView:
    """Return the explorer's view of one configuration (bf16, AdamW, SDPA attention).

    Raises:
        ValueError: an invalid value (a rank < 1, an unknown model…), as the configs raise it.

    Example:
        >>> explore(rank=16, targets="qv").trainable_parameters
        1081344
    """
    model_config = model_config_from(model)
    adapter = adapter_for(method, rank, targets, alpha=alpha)
    train = TrainConfig(
        micro_batch_size=batch_size,
        seq_len=seq_len,
        precision="bf16",
        gradient_checkpointing=gradient_checkpointing,
    )
    breakdown = estimate(model_config, adapter, train)
    budget = round(budget_gb * GIB)
    try:
        suggestion = "planner: " + plan(budget, model_config).describe()
    except DoesNotFit as error:
        suggestion = f"planner: {error}"
    trainable = (
        parameter_count(model_config) if adapter is None else count_trainable(model_config, adapter)
    )
    return ExplorerView(
        breakdown=breakdown,
        trainable_parameters=trainable,
        budget_bytes=budget,
        suggestion=suggestion,
    )


def plot_breakdown(view: ExplorerView) -> Figure:
    """Draw the bytes alive at the peak (GiB) as one stacked bar, the overhead on top.

    Returns:
        A figure with one axes: the bar's segments are the terms of ``live_at_peak`` plus the
        overhead, the dashed line is the budget.
    """
    figure = Figure(figsize=(4.8, 4.0))
    axes = figure.add_subplot()
    bottom = 0.0
    segments = [*view.breakdown.live_at_peak, ("overhead", view.breakdown.overhead)]
    for name, size in segments:
        if size > 0:
            axes.bar(0, size / GIB, bottom=bottom, label=name.replace("_", " "))
            bottom += size / GIB
    axes.axhline(view.budget_bytes / GIB, color="black", linestyle="--", label="budget")
    axes.set_xticks([])
    axes.set_xlim(-1, 2.5)
    axes.set_ylabel("GiB at the peak")
    axes.set_title("fits" if view.fits else "does not fit")
    axes.legend(loc="upper right", fontsize="small")
    return figure


def _controls() -> dict[str, Any]:
    import ipywidgets as widgets

    return {
        "model": widgets.Dropdown(options=list(PRESETS), description="model"),
        "method": widgets.Dropdown(options=list(run_methods()), description="method"),
        "rank": widgets.SelectionSlider(options=list(RANKS), value=16, description="rank"),
        "alpha": widgets.FloatText(value=32.0, description="alpha"),
        "targets": widgets.Dropdown(options=list(TARGET_CHOICES), description="targets"),
        "batch_size": widgets.IntSlider(value=4, min=1, max=32, description="batch"),
        "seq_len": widgets.SelectionSlider(
            options=[128, 256, 512, 1024, 2048, 4096], value=512, description="seq len"
        ),
        "gradient_checkpointing": widgets.Checkbox(value=False, description="grad ckpt"),
        "budget_gb": widgets.Dropdown(options=list(BUDGETS_GB), value=8, description="GPU GB"),
    }


def rank_explorer() -> Any:
    """Return an ipywidgets box: the controls, a live stacked bar and the explorer's text.

    Example:
        >>> rank_explorer()  # in a notebook cell  # doctest: +SKIP
    """
    import ipywidgets as widgets
    from IPython.display import Image, display

    from coursekit.display.plots import figure_png

    controls = _controls()
    output = widgets.Output()

    def render(**values: Any) -> None:
        output.clear_output(wait=True)
        with output:
            try:
                view = explore(**values)
            except ValueError as error:
                print(f"invalid setting: {error}")
                return
            display(Image(data=figure_png(plot_breakdown(view)), format="png"))
            print(view.summary())
            print(view.suggestion)

    widgets.interactive_output(render, controls)
    return widgets.VBox([widgets.HBox([widgets.VBox(list(controls.values())), output])])
