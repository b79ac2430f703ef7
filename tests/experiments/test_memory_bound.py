"""The memory claim: both readings, both outcomes, the flips at the bounds, bad input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.experiments.falsify import EvidenceError, memory_estimate_bounds_use

byte_counts = st.integers(1, 2**40)


def test_estimates_that_bound_use_within_twenty_percent_hold():
    verdict = memory_estimate_bounds_use(
        {"a": 110, "b": 100, "c": 120}, {"a": 100, "b": 100, "c": 100}
    )
    assert verdict.holds and verdict.status == "NOT FALSIFIED"
    assert [row["ratio"] for row in verdict.evidence] == [1.1, 1.0, 1.2]
    assert [row["finding"] for row in verdict.evidence] == ["bounds"] * 3
    assert verdict.evidence[0]["estimated_bytes"] == 110  # bytes stay ints
    assert verdict.claim == ("the memory estimate bounds actual use within 20% (M ≤ E ≤ 1.2·M)")
    assert "E/M from 1.000 to 1.200" in verdict.explanation


def test_an_under_estimate_or_a_loose_bound_falsifies_and_is_named():
    verdict = memory_estimate_bounds_use(
        {"lora": 99, "dora": 150, "full": 105}, {"lora": 100, "dora": 100, "full": 100}
    )
    assert not verdict.holds
    assert [row["finding"] for row in verdict.evidence] == [
        "under-estimate",
        "more than 20% above",
        "bounds",
    ]
    assert verdict.evidence[0]["relative_error"] == pytest.approx(-0.01)
    assert verdict.explanation.startswith("Falsified by 2 of 3 configuration(s): lora (E/M = 0.990")
    assert "dora (E/M = 1.500: more than 20% above)" in verdict.explanation
    assert str(verdict).startswith("FALSIFIED: the memory estimate bounds actual use")


def test_the_within_reading_accepts_a_small_under_estimate():
    measured = {"lora": 100.0, "full": 100.0}
    assert not memory_estimate_bounds_use({"lora": 90.0, "full": 100.0}, measured).holds
    within = memory_estimate_bounds_use({"lora": 90.0, "full": 100.0}, measured, reading="within")
    assert within.holds and within.rule == "falsified when |E − M| > 0.2·M for some configuration"
    far = memory_estimate_bounds_use({"lora": 75.0, "full": 125.0}, measured, reading="within")
    assert [row["finding"] for row in far.evidence] == [
        "under by more than 20%",
        "over by more than 20%",
    ]


def test_one_pair_of_numbers_is_one_configuration():
    verdict = memory_estimate_bounds_use(1.5e9, 1.4e9, tolerance=0.1)
    assert verdict.holds and verdict.evidence[0]["configuration"] == "config"
    assert verdict.evidence[0]["ratio"] == pytest.approx(1.5 / 1.4)
    assert "E/M = 1.071" in verdict.explanation


@settings(max_examples=100, deadline=None)
@given(measured=byte_counts, tolerance=st.floats(0.0, 1.0))
def test_holds_flips_exactly_at_both_ends_of_the_bound(measured, tolerance):
    top = (1 + tolerance) * measured
    for estimated, holds in [
        (measured, True),
        (math.nextafter(measured, -math.inf), False),
        (top, True),
        (math.nextafter(top, math.inf), False),
    ]:
        assert memory_estimate_bounds_use(estimated, measured, tolerance).holds is holds


@settings(max_examples=100, deadline=None)
@given(
    pairs=st.dictionaries(
        st.text(min_size=1, max_size=8), st.tuples(byte_counts, byte_counts), min_size=1, max_size=6
    ),
    tolerance=st.floats(0.0, 1.0),
    power=st.integers(-10, 10),
)
def test_the_verdict_depends_on_the_ratios_only(pairs, tolerance, power):
    estimated = {name: e for name, (e, _) in pairs.items()}
    measured = {name: m for name, (_, m) in pairs.items()}
    verdict = memory_estimate_bounds_use(estimated, measured, tolerance)
    scale = 2.0**power  # exact: the comparisons do not change
    scaled = memory_estimate_bounds_use(
        {n: e * scale for n, e in estimated.items()},
        {n: m * scale for n, m in measured.items()},
        tolerance,
    )
    assert scaled.holds == verdict.holds
    assert [r["ratio"] for r in scaled.evidence] == [r["ratio"] for r in verdict.evidence]
    assert verdict.holds == all(e >= m and e <= (1 + tolerance) * m for e, m in pairs.values())
    if verdict.holds:  # a tight bound is always within τ
        assert memory_estimate_bounds_use(estimated, measured, tolerance, reading="within").holds


@pytest.mark.slow
def test_coursekits_own_estimate_is_within_twenty_percent_of_a_real_measurement():
    """A real check: estimate and measure one small LoRA point (a few seconds on one core)."""
    from coursekit.recipes.memory_validate import FAST_GRID, validate

    (row,) = validate(FAST_GRID[:1])
    verdict = memory_estimate_bounds_use(
        {row.name: row.estimated_bytes}, {row.name: row.measured_bytes}, reading="within"
    )
    assert verdict.holds, str(verdict)
    assert verdict.evidence[0]["relative_error"] == pytest.approx(row.relative_error)


@pytest.mark.parametrize(
    ("estimated", "measured", "named"),
    [
        (math.nan, 100, "estimated_bytes['config'] must be a finite number (got nan)"),
        (100, math.inf, "measured_bytes['config'] must be a finite number (got inf)"),
        (100, 0, "measured_bytes['config'] must be > 0 (got 0)"),
        (-5, 100, "estimated_bytes['config'] must be > 0 (got -5)"),
        ("100", 100, "estimated_bytes['config'] must be a finite number (got '100': str)"),
        (True, 100, "got True: bool"),
        ({"a": 1}, 1, "two numbers or two mappings"),
        ({"a": 1, "b": 2}, {"a": 1, "c": 2}, "only estimated: ['b']; only measured: ['c']"),
        ({}, {}, "at least one"),
    ],
)
def test_bad_byte_counts_are_refused_in_one_line_naming_them(estimated, measured, named):
    with pytest.raises(EvidenceError) as raised:
        memory_estimate_bounds_use(estimated, measured)
    message = str(raised.value)
    assert message.startswith("memory_estimate_bounds_use: ")
    assert named in message and "\n" not in message


def test_bad_options_are_refused():
    with pytest.raises(EvidenceError, match=r"tolerance must be >= 0 \(got -0.2\)"):
        memory_estimate_bounds_use(1, 1, -0.2)
    with pytest.raises(EvidenceError, match=r"reading must be one of \['bound', 'within'\]"):
        memory_estimate_bounds_use(1, 1, reading="upper")  # type: ignore[arg-type]
