from __future__ import annotations

import io

import pytest

from coursekit.display.progress import ProgressBar, format_postfix


def _rows(n):
    return [
        {"step": t, "loss": 3.0 - t / 10, "lr": 1e-4, "tokens_per_s": 1234.5, "grad_norm": 1.0}
        for t in range(1, n + 1)
    ]


def test_bar_counts_steps_and_shows_metrics_and_eta():
    out = io.StringIO()
    bar = ProgressBar(total_steps=4, file=out, description="fit")
    for row in _rows(2):
        bar.on_step(row)
    assert bar.steps_done == 2
    bar.on_eval({"step": 2, "val_loss": 2.75})
    assert bar.postfix() == "loss=2.800, val=2.750, lr=1.00e-04, tok/s=1,234"
    bar.on_eval({"step": 2})  # a row without val_loss leaves the shown one
    bar.on_step(_rows(3)[-1])
    bar.on_end({"steps": 3})
    text = out.getvalue()
    assert "fit" in text and "3/4" in text and "val=2.750" in text
    assert "<" in text  # tqdm's "elapsed<remaining" ETA field


def test_resumed_bar_starts_at_the_resume_step():
    out = io.StringIO()
    bar = ProgressBar(total_steps=10, start_step=7, file=out)
    bar.on_step(_rows(8)[-1])
    assert bar.steps_done == 8
    bar.on_end({})
    assert "8/10" in out.getvalue()


def test_disabled_bar_writes_nothing():
    out = io.StringIO()
    bar = ProgressBar(total_steps=3, file=out, disable=True)
    bar.on_step(_rows(1)[0])
    bar.on_end({})
    assert out.getvalue() == ""


def test_default_bar_uses_tqdm_auto(capsys):
    bar = ProgressBar(total_steps=2)
    bar.on_step(_rows(1)[0])
    bar.on_end({})
    assert "1/2" in capsys.readouterr().err


def test_postfix_formats_only_known_numeric_metrics():
    assert format_postfix({"loss": 1.0, "lr": None, "other": 3}) == "loss=1.000"
    assert format_postfix({}) == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"total_steps": 0}, "total_steps must be >= 1"), ({"start_step": 5}, "start_step")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProgressBar(**{"total_steps": 4, **kwargs})
