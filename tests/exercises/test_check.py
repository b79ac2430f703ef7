"""``coursekit.check`` end to end: the learner's code runs in a subprocess with a timeout and
only JSON comes back. The pacing exercise (no torch) keeps each run near a second."""

from __future__ import annotations

import linecache

import pytest

import coursekit
from coursekit.errors import CoursekitError

NOTEBOOK_CELL = """\
import math as m
LIMIT = 1.0
history = [1, 2, 3]  # a global the checker cannot send, and the function does not use

def clip(value):
    return min(LIMIT, value)

def pacing(step, total_steps, start_fraction):
    print("debug output the checker discards")
    return clip(start_fraction + m.sqrt(step / total_steps) * (1 - start_fraction))

def hang(step, total_steps, start_fraction):
    while True:
        pass

def boom(step, total_steps, start_fraction):
    raise ValueError(f"start_fraction {start_fraction} is too small")

def leave(step, total_steps, start_fraction):
    import os
    os._exit(3)

def overshoot(step, total_steps, start_fraction):
    return start_fraction + 1.2 * step * (1 - start_fraction) / total_steps
"""


def notebook_cell(source: str, name: str = "<ipython-input-1-0123456789ab>") -> dict:
    """Run ``source`` as IPython runs a cell: module ``__main__``, lines in linecache only."""
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    namespace = {"__name__": "__main__"}
    exec(compile(source, name, "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def cell() -> dict:
    return notebook_cell(NOTEBOOK_CELL)


def test_a_notebook_function_with_helpers_passes_and_prints_one_line(cell, capsys) -> None:
    result = coursekit.check("H.pacing", cell["pacing"])
    assert result.passed, result.message
    assert capsys.readouterr().out == "✓ H.pacing: 5 checks passed\n"


def test_a_wrong_answer_fails_through_the_subprocess(cell) -> None:
    result = coursekit.check("H.pacing", cell["overshoot"], quiet=True)
    assert result.message == (
        "returns 1.198 > 1 at step=1, total_steps=1, start_fraction=0.01 "
        "(check: stays in [start_fraction, 1])"
    )
    assert (result.checks_passed, result.checks) == (2, 5)


def test_a_hanging_function_times_out_naming_the_check(cell) -> None:
    result = coursekit.check("H.pacing", cell["hang"], timeout_s=6, quiet=True)
    assert not result.passed
    assert result.message == (
        "timed out after 6 s in check 'returns a number' (0 of 5 passed): your code did not "
        "return (an endless loop?)"
    )


def test_a_raising_function_reports_type_and_message(cell) -> None:
    result = coursekit.check("H.pacing", cell["boom"], quiet=True)
    assert result.message == (
        "your code raised ValueError: start_fraction 0.2 is too small (check: returns a number)"
    )


def test_a_function_that_exits_is_reported(cell) -> None:
    result = coursekit.check("H.pacing", cell["leave"], quiet=True)
    assert result.message.startswith("the checking process exited with code 3")
    assert "in check 'returns a number' (0 of 5 passed)" in result.message


def test_unknown_exercise_and_wrong_parts_are_refused(cell) -> None:
    with pytest.raises(
        CoursekitError, match=r"no exercise 'H\.pace'; choose one of C\.lr_suggester"
    ):
        coursekit.check("H.pace", cell["pacing"])
    with pytest.raises(CoursekitError, match=r"J.resume_state takes 2 part\(s\)"):
        coursekit.check("J.resume_state", cell["pacing"])


def test_lambdas_and_closures_are_refused_with_the_fix() -> None:
    with pytest.raises(CoursekitError, match="not a named function or class: define it with def"):
        coursekit.check("H.pacing", lambda step, total, start: 1.0)

    def outer(top):
        def pacing(step, total_steps, start_fraction):
            return top

        return pacing

    with pytest.raises(
        CoursekitError,
        match=r"uses variables of an enclosing function \(top\): define it at the top",
    ):
        coursekit.check("H.pacing", outer(1.0))
