"""Callbacks: the protocol, fan-out and metrics.jsonl."""

from __future__ import annotations

import json

import pytest

from coursekit.train.callbacks import (
    BaseCallback,
    Callback,
    CallbackList,
    MetricsLogger,
    read_metrics,
)


class Recorder(BaseCallback):
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def on_step(self, row):
        self.calls.append(("step", row))

    def on_eval(self, row):
        self.calls.append(("eval", row))

    def on_end(self, summary):
        self.calls.append(("end", summary))


def test_base_callback_satisfies_the_protocol_and_does_nothing() -> None:
    base = BaseCallback()
    assert isinstance(base, Callback)
    base.on_step({"step": 1})
    base.on_eval({"step": 1})
    base.on_end({})


def test_callback_list_fans_out_copies_in_order() -> None:
    first, second = Recorder(), Recorder()
    fan = CallbackList([first, second])
    row = {"step": 1, "loss": 2.0}
    fan.on_step(row)
    fan.on_eval({"step": 1, "val_loss": 3.0})
    fan.on_end({"steps": 1})
    assert [c[0] for c in first.calls] == ["step", "eval", "end"] == [c[0] for c in second.calls]
    first.calls[0][1]["loss"] = 99.0
    assert row["loss"] == 2.0 and second.calls[0][1]["loss"] == 2.0


def test_callback_list_rejects_a_non_callback() -> None:
    with pytest.raises(TypeError, match="not a Callback"):
        CallbackList([object()])


def test_metrics_logger_appends_rows_and_truncates_on_resume(tmp_path) -> None:
    path = tmp_path / "metrics.jsonl"
    logger = MetricsLogger(path)
    logger.truncate_after(0)  # no file yet: nothing to do
    for step in range(1, 5):
        logger.on_step({"step": step, "loss": 1.0 / step, "lr": 0.1})
    logger.on_eval({"step": 4, "val_loss": 0.5})
    with path.open("a") as handle:
        handle.write('{"step": 5, "lo')  # a torn line from a killed run
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 4]
    logger.truncate_after(2)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]


def test_metrics_logger_rejects_unknown_keys(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown keys"):
        MetricsLogger(tmp_path / "m.jsonl").on_step({"step": 1, "accuracy": 1.0})
