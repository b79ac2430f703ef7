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

import base64
import functools
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


CONTROL_WIDTH = "340px"
"""Width of each control: its label (:data:`LABEL_WIDTH`), the slider or box, and a readout
wide enough for "4096" (ipywidgets clips a readout when its row is squeezed)."""
LABEL_WIDTH = "90px"
"""Width of each control's description, so that all sliders start in one column."""


def _controls() -> dict[str, Any]:
    import ipywidgets as widgets

    def sized() -> dict[str, Any]:
        layout = widgets.Layout(width=CONTROL_WIDTH, min_width=CONTROL_WIDTH)
        return {"layout": layout, "style": {"description_width": LABEL_WIDTH}}

    return {
        "model": widgets.Dropdown(options=list(PRESETS), description="model", **sized()),
        "method": widgets.Dropdown(options=list(run_methods()), description="method", **sized()),
        "rank": widgets.SelectionSlider(
            options=list(RANKS), value=16, description="rank", **sized()
        ),
        "alpha": widgets.FloatText(value=32.0, description="alpha", **sized()),
        "targets": widgets.Dropdown(options=list(TARGET_CHOICES), description="targets", **sized()),
        "batch_size": widgets.IntSlider(value=4, min=1, max=32, description="batch", **sized()),
        "seq_len": widgets.SelectionSlider(
            options=[128, 256, 512, 1024, 2048, 4096], value=512, description="seq len", **sized()
        ),
        "gradient_checkpointing": widgets.Checkbox(value=False, description="grad ckpt", **sized()),
        "budget_gb": widgets.Dropdown(
            options=list(BUDGETS_GB), value=8, description="GPU GB", **sized()
        ),
    }


def snapshot_png(**values: Any) -> bytes:
    """Return the explorer's figure for one setting as PNG bytes (its static fallback).

    Example:
        >>> snapshot_png(rank=16)[1:4]
        b'PNG'
    """
    from coursekit.display.plots import figure_png

    return figure_png(plot_breakdown(explore(**values)))


@functools.cache
def _explorer_box() -> type:
    """The explorer's box class: a ``VBox`` whose display carries a static PNG fallback."""
    import ipywidgets as widgets

    class ExplorerBox(widgets.VBox):  # type: ignore[misc]
        """A ``VBox`` displayed with a PNG of its current setting beside the widget view.

        Frontends that cannot draw the widget (an untrusted or not yet run notebook in
        JupyterLab, nbconvert's HTML export without widget state, GitHub) show the picture
        instead of the widget's ``VBox(...)`` text; a live kernel shows the widget.
        """

        def __init__(self, children: list[Any], *, controls: dict[str, Any]) -> None:
            super().__init__(children)
            self.controls = controls

        def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
            bundle = super()._repr_mimebundle_(**kwargs)
            if bundle is None:
                return None
            values = {name: control.value for name, control in self.controls.items()}
            try:
                bundle["image/png"] = base64.b64encode(snapshot_png(**values)).decode("ascii")
            except ValueError:  # an invalid setting: the widget's output says why
                return bundle
            bundle["text/plain"] = "rank/memory explorer (run the notebook to use its controls)"
            return bundle

    return ExplorerBox


def rank_explorer() -> Any:
    """Return an ipywidgets box: the controls, a live stacked bar and the explorer's text.

    The controls keep their width (:data:`CONTROL_WIDTH`) and the figure wraps below them
    when the notebook is narrow. Displayed, the box also carries a PNG of its setting, the
    static fallback where widgets cannot be drawn.

    Example:
        >>> rank_explorer()  # in a notebook cell  # doctest: +SKIP
    """
    import ipywidgets as widgets
    from IPython.display import Image, display

    controls = _controls()
    output = widgets.Output(layout=widgets.Layout(flex="1 1 400px"))

    def render(**values: Any) -> None:
        output.clear_output(wait=True)
        with output:
            try:
                view = explore(**values)
            except ValueError as error:
                print(f"invalid setting: {error}")
                return
            display(Image(data=snapshot_png(**values), format="png"))
            print(view.summary())
            print(view.suggestion)

    widgets.interactive_output(render, controls)
    column = widgets.VBox(
        list(controls.values()),
        layout=widgets.Layout(flex="0 0 auto", min_width=CONTROL_WIDTH),
    )
    row = widgets.HBox([column, output], layout=widgets.Layout(flex_flow="row wrap"))
    return _explorer_box()([row], controls=controls)
