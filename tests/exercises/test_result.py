"""``CheckResult``: its one-line verdict and its JSON form (the only thing the child sends)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit.exercises.compare import number
from coursekit.exercises.result import CheckResult

RESULTS = st.builds(
    CheckResult,
    exercise=st.text(min_size=1),
    passed=st.booleans(),
    checks_passed=st.integers(0, 20),
    checks=st.integers(0, 20),
    message=st.text(),
)


@given(RESULTS)
def test_json_round_trip(result: CheckResult) -> None:
    assert CheckResult.from_json(result.to_json()) == result


@pytest.mark.parametrize(
    "data",
    [
        {"exercise": "H.pacing", "passed": "yes", "checks_passed": 0, "checks": 5, "message": ""},
        {"exercise": "H.pacing", "passed": True, "checks_passed": 5, "checks": 5},
        {"exercise": "H.pacing", "passed": True, "checks_passed": 5, "checks": 5, "message": "",
         "extra": 1},
        ["not", "a", "dict"],
    ],
)  # fmt: skip
def test_from_json_refuses_anything_else(data) -> None:
    with pytest.raises(ValueError):
        CheckResult.from_json(data)


def test_verdict_lines() -> None:
    passed = CheckResult(exercise="E.dora_forward", passed=True, checks_passed=7, checks=7)
    assert str(passed) == "✓ E.dora_forward: 7 checks passed" and passed
    failed = CheckResult(
        exercise="E.dora_forward", passed=False, checks_passed=2, checks=7,
        message="output differs at index (0, 3): yours 0.1234, expected 0.5678 "
        "(check: bias untouched)",
    )  # fmt: skip
    assert str(failed) == (
        "✗ E.dora_forward: output differs at index (0, 3): yours 0.1234, expected 0.5678 "
        "(check: bias untouched)"
    )
    assert not failed


@given(st.floats(-1e300, 1e300))
def test_number_is_close_to_the_value(value: float) -> None:
    assert float(number(value)) == pytest.approx(value, rel=1e-3, abs=1e-4)
