"""Sending code as source: what is sent, how it is rebuilt, classes defined in a notebook."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from coursekit.exercises import run_checks
from coursekit.exercises.transport import package, rebuild
from tests.exercises.test_check import notebook_cell

RECORDER_CELL = """\
from coursekit.train.callbacks import BaseCallback as Base
import torch

SKIP = "step"

class Recorder(Base):
    def __init__(self):
        self.history, self.summary = {}, None

    def on_step(self, row):
        for name, value in row.items():
            if name != SKIP:
                self.history.setdefault(name, []).append((row[SKIP], value))

    on_eval = on_step

    def on_end(self, summary):
        self.summary = summary
"""


def test_a_notebook_class_is_sent_with_its_base_and_globals() -> None:
    recorder = notebook_cell(RECORDER_CELL, "<ipython-input-2-fedcba987654>")["Recorder"]
    payload = json.loads(json.dumps(package(recorder)))  # it crosses the process as JSON
    assert payload["source"].startswith("class Recorder(Base):")
    sent = {entry["name"]: entry for entry in payload["globals"]}
    base = {"module": "coursekit.train.callbacks", "qualname": "BaseCallback"}
    assert sent["Base"] == {"kind": "attr", "name": "Base", **base}
    assert sent["SKIP"] == {"kind": "value", "name": "SKIP", "value": "step"}
    rebuilt = rebuild(payload)
    assert rebuilt is not recorder and rebuilt.__module__ == "__learner__"
    assert run_checks("I.metrics_callback", [rebuilt]).passed


def test_helpers_are_sent_recursively_and_unsendable_globals_left_out() -> None:
    cell = notebook_cell(
        "import math\nSCALE = 2\nTABLE = [1, 2]\n"
        "def inner(x):\n    return math.floor(x) * SCALE\n"
        "def outer(x):\n    return inner(x) + 1\n",
        "<ipython-input-3-aaaaaaaaaaaa>",
    )
    payload = package(cell["outer"])
    kinds = {entry["name"]: entry["kind"] for entry in payload["globals"]}
    assert kinds == {"inner": "source", "math": "module", "SCALE": "value"}
    assert rebuild(payload)(2.7) == 5


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.text(), st.booleans(), st.none()))
def test_scalar_globals_arrive_unchanged(value) -> None:
    def echo():
        return CONSTANT  # noqa: F821

    echo.__globals__["CONSTANT"] = value
    try:
        payload = json.loads(json.dumps(package(echo)))
        assert rebuild(payload)() == value
    finally:
        del echo.__globals__["CONSTANT"]
