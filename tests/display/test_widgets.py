"""The rank/memory explorer: its pure function and its widgets, without a browser."""

from __future__ import annotations

import pytest

from coursekit.display.widgets import BUDGETS_GB, explore, plot_breakdown, rank_explorer
from coursekit.memory.estimate import GIB


def test_explore_reports_trainable_fit_and_suggestion():
    view = explore(
        model="qwen2.5-coder-0.5b",
        method="lora",
        rank=16,
        targets="all-linear",
        batch_size=1,
        seq_len=512,
        gradient_checkpointing=True,
        budget_gb=8,
    )
    assert view.trainable_parameters == 8_798_208
    assert view.fits and view.budget_bytes == 8 * GIB
    assert view.suggestion.startswith("planner: lora")
    assert "fits" in view.summary()


def test_explore_full_and_over_budget():
    view = explore(model="qwen2.5-coder-7b", method="full", budget_gb=24)
    assert view.trainable_parameters > 7e9
    assert not view.fits and "does NOT fit" in view.summary()
    tight = explore(model="qwen2.5-coder-32b", method="qlora", budget_gb=8)
    assert "does not fit" in tight.suggestion


def test_explore_is_monotone_in_rank():
    totals = [explore(rank=rank).breakdown.total_bytes for rank in (4, 16, 64, 256)]
    assert totals == sorted(totals)


def test_plot_stacks_the_terms_under_the_budget_line():
    view = explore(budget_gb=16)
    figure = plot_breakdown(view)
    axes = figure.axes[0]
    heights = sum(patch.get_height() for patch in axes.patches)
    assert heights == pytest.approx(view.breakdown.total_bytes / GIB)
    assert axes.lines[0].get_ydata()[0] == pytest.approx(16)
    assert axes.get_title() == "fits"
    full = plot_breakdown(explore(model="tiny", method="full", budget_gb=8))
    assert len(full.axes[0].patches) < len(view.breakdown.live_at_peak) + 1  # zeros skipped


def test_rank_explorer_renders_and_reports_bad_values(capsys):
    box = rank_explorer()
    controls = box.children[0].children[0].children
    output = box.children[0].children[1]
    assert {c.description for c in controls} >= {"rank", "GPU GB", "method", "targets"}
    budget = next(c for c in controls if c.description == "GPU GB")
    assert list(budget.options) == list(BUDGETS_GB)
    alpha = next(c for c in controls if c.description == "alpha")
    alpha.value = -1.0
    # Outside a kernel the Output widget passes its prints through to stdout.
    shown = capsys.readouterr().out + "".join(o.get("text", "") for o in output.outputs)
    assert "planner:" in shown
    assert "invalid setting: AdapterConfig.alpha must be > 0" in shown
