"""The generic ``falsify``: both outcomes, the flip at the threshold, and bad input refused."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.experiments.falsify import EvidenceError, falsify

finite_floats = st.floats(-1e12, 1e12, allow_nan=False)


def test_a_claim_that_holds():
    verdict = falsify("the validation loss is at most 2", lambda: 1.75, 2.0)
    assert verdict.holds and verdict.status == "NOT FALSIFIED"
    assert dict(verdict.evidence[0]) == {
        "measured": 1.75,
        "direction": "<=",
        "threshold": 2.0,
        "margin": 0.25,
    }
    assert "1.75" in verdict.explanation and "not falsified" in verdict.explanation


def test_a_claim_that_is_falsified_is_returned_with_its_numbers():
    verdict = falsify("the compile rate is at least 0.5", 0.41, 0.5, direction=">=")
    assert not verdict.holds and verdict.status == "FALSIFIED"
    assert verdict.evidence[0]["measured"] == 0.41
    assert verdict.evidence[0]["margin"] == pytest.approx(-0.09)
    assert verdict.rule == "falsified when x < θ"
    assert "falls short of the threshold 0.5 by 0.09" in verdict.explanation
    assert str(verdict).startswith("FALSIFIED: the compile rate is at least 0.5")


def test_measure_runs_once_and_its_own_failure_propagates():
    calls = []

    def measure() -> float:
        calls.append(1)
        return 3

    assert falsify("x is at least 3", measure, 3, direction=">=").holds
    assert calls == [1]

    def broken() -> float:
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        falsify("x is below 3", broken, 3)


@settings(max_examples=100, deadline=None)
@given(threshold=finite_floats, direction=st.sampled_from(["<=", ">="]))
def test_holds_flips_exactly_at_the_threshold(threshold, direction):
    inside = -math.inf if direction == "<=" else math.inf
    just_inside = math.nextafter(threshold, inside)
    just_outside = math.nextafter(threshold, -inside)
    assert falsify("at the boundary", threshold, threshold, direction=direction).holds
    assert falsify("just inside", just_inside, threshold, direction=direction).holds
    assert not falsify("just outside", just_outside, threshold, direction=direction).holds


@settings(max_examples=100, deadline=None)
@given(measured=finite_floats, threshold=finite_floats, direction=st.sampled_from(["<=", ">="]))
def test_the_margin_is_non_negative_exactly_when_the_claim_holds(measured, threshold, direction):
    verdict = falsify("a claim", measured, threshold, direction=direction)
    assert verdict.holds == (verdict.evidence[0]["margin"] >= 0)
    assert verdict.evidence[0]["measured"] == measured
    flipped = falsify(
        "the opposite", measured, threshold, direction={"<=": ">=", ">=": "<="}[direction]
    )
    assert verdict.holds or flipped.holds  # one of x ≤ θ and x ≥ θ is always true


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (("", 1.0, 2.0), "claim"),
        ((None, 1.0, 2.0), "claim"),
        (("c", float("nan"), 2.0), "falsify: measure must be a finite number (got nan)"),
        (
            ("c", lambda: float("inf"), 2.0),
            "the value measure() returned must be a finite number (got inf)",
        ),
        (("c", lambda: "0.4", 2.0), "got '0.4': str"),
        (("c", lambda: None, 2.0), "got None: NoneType"),
        (("c", lambda: True, 2.0), "got True: bool"),
        (("c", 1.0, float("nan")), "falsify: threshold must be a finite number (got nan)"),
        (("c", 1.0, "2"), "falsify: threshold"),
    ],
)
def test_bad_input_is_refused_in_one_line_naming_it(arguments, named):
    with pytest.raises(EvidenceError) as raised:
        falsify(*arguments)
    message = str(raised.value)
    assert named in message and "\n" not in message


def test_an_unknown_direction_is_refused_before_measuring():
    def measure() -> float:
        pytest.fail("the measurement ran before the direction was checked")

    with pytest.raises(EvidenceError, match=r"direction must be one of \['<=', '>='\] \(got '<'\)"):
        falsify("x is below 3", measure, 3.0, direction="<")  # type: ignore[arg-type]
    with pytest.raises(EvidenceError, match="threshold"):
        falsify("x is below 3", measure, math.nan)


def test_a_tensor_measurement_is_refused_with_the_fix():
    torch = pytest.importorskip("torch")
    with pytest.raises(EvidenceError, match=r"\.item\(\)"):
        falsify("loss below 2", lambda: torch.tensor(1.5), 2.0)
    assert falsify("loss below 2", lambda: torch.tensor(1.5).item(), 2.0).holds
