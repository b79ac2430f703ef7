from __future__ import annotations

import json

import pytest
from matplotlib.figure import Figure

from coursekit.display.dashboard import (
    Dashboard,
    MetricsError,
    MetricsWarning,
    NotebookDisplay,
    dashboard_figure,
    read_metrics,
    render_metrics,
    series,
)
from coursekit.errors import CoursekitWarning


def _row(step, **extra):
    return {
        "step": step,
        "loss": 3.0 / step,
        "lr": 1e-4 * step,
        "grad_norm": 2.0 / step,
        "tokens_per_s": 1000.0 + step,
        "elapsed_s": 6.0 * step,
        "memory_bytes": 3 * 2**29,
        **extra,
    }


def _write(path, rows, tail=""):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + tail, encoding="utf-8")
    return path


def _labels(figure):
    return [[line.get_label() for line in axes.lines] for axes in figure.axes]


def test_figure_has_four_panels_with_the_right_curves():
    rows = [_row(t) for t in range(1, 11)] + [{"step": 5, "val_loss": 0.7}, _row(11, val_loss=0.3)]
    figure = dashboard_figure(rows, title="run-1")
    assert isinstance(figure, Figure) and len(figure.axes) == 4
    assert _labels(figure) == [["loss", "val_loss"], ["lr"], ["grad_norm"], ["tokens_per_s"]]
    val_steps = list(figure.axes[0].lines[1].get_xdata())
    assert val_steps == [5, 11]
    assert figure.axes[2].get_yscale() == "log"  # positive grad norms: log scale
    assert figure.get_suptitle() == "run-1 — step 11 · 1.1 min · 1.50 GiB"


def test_missing_keys_leave_an_empty_panel_that_says_so():
    figure = dashboard_figure([{"step": 1, "loss": 2.0, "grad_norm": 0.0}])
    assert _labels(figure) == [["loss"], [], ["grad_norm"], []]
    assert figure.axes[1].texts[0].get_text() == "no data yet"
    assert figure.axes[2].get_yscale() == "linear"  # a zero norm cannot go on a log axis
    assert dashboard_figure([]).get_suptitle() == ""


def test_series_keeps_numeric_values_only():
    rows = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": None}, {"step": 3, "loss": True}]
    assert series(rows, "loss") == ([1], [2.0])


def test_read_metrics_round_trips_and_accepts_the_run_directory(tmp_path):
    rows = [_row(1), _row(2, val_loss=1.0)]
    _write(tmp_path / "metrics.jsonl", rows, tail="\n")  # a blank line is fine
    assert read_metrics(tmp_path / "metrics.jsonl") == rows
    assert read_metrics(tmp_path) == rows


def test_truncated_last_line_is_skipped_with_a_warning(tmp_path):
    path = _write(tmp_path / "metrics.jsonl", [_row(1), _row(2)], tail='{"step": 3, "lo')
    with pytest.warns(MetricsWarning, match=r"metrics.jsonl:3: truncated last line"):
        rows = read_metrics(path)
    assert [row["step"] for row in rows] == [1, 2]
    assert issubclass(MetricsWarning, CoursekitWarning)


def test_a_bad_line_before_the_last_names_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps(_row(1)) + "\n{oops\n" + json.dumps(_row(2)) + "\n")
    with pytest.raises(MetricsError, match=r"metrics.jsonl:2: not valid JSON"):
        read_metrics(path)
    path.write_text(json.dumps(_row(1)) + "\n[1, 2]\n")
    with pytest.raises(MetricsError, match=r"metrics.jsonl:2: expected a JSON object"):
        read_metrics(path)
    with pytest.raises(MetricsError, match="no such metrics file"):
        read_metrics(tmp_path / "missing.jsonl")


def test_render_metrics_draws_a_finished_run(tmp_path):
    run = tmp_path / "run-7"
    run.mkdir()
    _write(run / "metrics.jsonl", [_row(t) for t in range(1, 6)])
    figure = render_metrics(run / "metrics.jsonl")
    assert figure.get_suptitle().startswith("run-7 — step 5")
    dashboard = Dashboard.from_metrics(run, show=lambda figure: None)
    assert len(dashboard.rows) == 5 and dashboard.title == "run-7"
    assert dashboard._repr_png_().startswith(b"\x89PNG")


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_live_dashboard_is_throttled_by_steps_and_seconds():
    shown, clock = [], _Clock()
    dashboard = Dashboard(every_steps=3, every_seconds=10.0, show=shown.append, clock=clock)
    for step in range(1, 7):
        clock.now = step * 4.0  # 4 s per step
        dashboard.on_step(_row(step))
    # step 1 draws (nothing drawn yet); then ≥ 3 steps and ≥ 10 s: step 4 (12 s later)
    assert dashboard.redraws == 2
    dashboard.on_eval({"step": 6, "val_loss": 0.4})  # merged into step 6's row
    assert len(dashboard.rows) == 6 and dashboard.rows[-1]["val_loss"] == 0.4
    dashboard.on_eval({"step": 7, "val_loss": 0.3})
    assert len(dashboard.rows) == 7
    dashboard.on_end({})
    assert dashboard.redraws == 5 and len(shown) == 5  # every eval and the end redraw
    assert all(isinstance(figure, Figure) for figure in shown)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"every_steps": 0}, "every_steps must be >= 1"), ({"every_seconds": -1}, "every_seconds")],
)
def test_bad_throttle_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Dashboard(**kwargs)


def test_notebook_display_updates_one_output_in_place(monkeypatch):
    import IPython.display

    calls = []

    class Handle:
        def update(self, image):
            calls.append(("update", image.format))

    def display(image, display_id):
        calls.append(("display", display_id))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    dashboard = Dashboard(every_seconds=0.0)
    dashboard.on_step(_row(1))
    dashboard.on_step(_row(2))
    assert calls == [("display", True), ("update", "png")]
    assert isinstance(NotebookDisplay(), NotebookDisplay)
