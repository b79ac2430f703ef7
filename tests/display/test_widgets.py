"""The rank/memory explorer: its pure function and its widgets, without a browser."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image

from coursekit.display.widgets import (
    BUDGETS_GB,
    CONTROL_WIDTH,
    LABEL_WIDTH,
    explore,
    plot_breakdown,
    rank_explorer,
)
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


def test_rank_explorer_controls_keep_their_width():
    # "4096" was clipped to "409": the controls' column shrank beside the figure. Each control
    # has a fixed width and the column never shrinks; the figure wraps below when narrow.
    box = rank_explorer()
    row = box.children[0]
    column, _ = row.children
    assert row.layout.flex_flow == "row wrap"
    assert column.layout.flex == "0 0 auto" and column.layout.min_width == CONTROL_WIDTH
    for control in column.children:
        assert control.layout.width == control.layout.min_width == CONTROL_WIDTH
        assert control.style.description_width == LABEL_WIDTH
    seq_len = next(c for c in column.children if c.description == "seq len")
    seq_len.value = 4096
    assert seq_len.get_state()["index"] == 5  # the readout that must show "4096" in full


def test_rank_explorer_displays_a_static_picture_beside_the_widget():
    box = rank_explorer()
    bundle = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert not bundle["text/plain"].startswith("VBox(")
    picture = Image.open(io.BytesIO(base64.b64decode(bundle["image/png"])))
    assert picture.format == "PNG" and picture.width > 200
    alpha = next(c for c in box.children[0].children[0].children if c.description == "alpha")
    alpha.value = -1.0  # an invalid setting: no picture, the widget's output says why
    assert "image/png" not in box._repr_mimebundle_()


def test_the_html_export_shows_the_picture_not_vbox_text():
    # Without widget state (a notebook not run, or saved without it) nbconvert skips the
    # widget view and falls back to the next type: the picture.
    from nbconvert import HTMLExporter
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    cell = new_code_cell("rank_explorer()")
    cell.outputs = [new_output("execute_result", data=rank_explorer()._repr_mimebundle_())]
    page, _ = HTMLExporter(template_name="lab").from_notebook_node(new_notebook(cells=[cell]))
    assert re.search(r'<img [^>]*src="data:image/png;base64,', page)
    assert "VBox(" not in page
