"""Checks of the Advanced exercise H (a curriculum pacing function); imports no torch.

H.pacing — ``pacing(step, total_steps, start_fraction) -> c``, the fraction of the
    easiest-first pool available at step t: c(0) = c₀, c₀ ≤ c(t) ≤ 1, c(t + 1) ≥ c(t) and
    c(T) = 1; properties searched with hypothesis over 1 ≤ T ≤ 1000 and c₀ ∈ {0.01, …, 1}.
    ``coursekit.data.curriculum.PACINGS`` (linear, root, step) all pass.

Without torch the checking process starts in about a second.

Guide: docs/exercises.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import MappingProxyType

from hypothesis import strategies as st

from coursekit.exercises.compare import counterexample, fail, number
from coursekit.exercises.registry import Check

Pacing = Callable[[int, int, float], float]
_RUNS = st.integers(1, 1000).flatmap(
    lambda total: st.tuples(st.integers(0, total), st.just(total), st.integers(1, 100))
)
"""(step, total_steps, start_fraction in hundredths) with 0 ≤ step ≤ total_steps."""


def _search(runs: st.SearchStrategy, fails: Callable[[tuple[int, int, int]], bool]):
    """The simplest run (step, total, start in hundredths) where ``fails``; 100 tries."""
    return counterexample(runs, fails, examples=100)


def _value(pacing: Pacing, step: int, total: int, start: float) -> float:
    c = pacing(step, total, start)
    if hasattr(c, "item") and not isinstance(c, int | float):
        c = c.item()  # a 0-d tensor or numpy scalar
    if isinstance(c, bool) or not isinstance(c, int | float) or not math.isfinite(c):
        raise fail(
            f"returns {c!r} at step={step}, total_steps={total}, start_fraction="
            f"{start}, expected a finite float",
            "returns a number",
        )
    return float(c)


def _pacing_number(pacing: Pacing) -> None:
    """c(t) is a finite float."""
    _value(pacing, 3, 10, 0.2)


def _pacing_starts(pacing: Pacing) -> None:
    """c(0) = c₀: training starts on the easiest start_fraction of the data."""
    found = _search(
        _RUNS,
        lambda r: not math.isclose(_value(pacing, 0, r[1], r[2] / 100), r[2] / 100, rel_tol=1e-9),
    )
    if found is not None:
        _, total, start = found[0], found[1], found[2] / 100
        raise fail(
            f"c(0) = {number(_value(pacing, 0, total, start))} at total_steps={total}, "
            f"start_fraction={start}, expected {start}",
            "starts at start_fraction",
        )


def _pacing_bounded(pacing: Pacing) -> None:
    """c₀ ≤ c(t) ≤ 1 for every step."""

    def outside(run: tuple[int, int, int]) -> bool:
        c, start = _value(pacing, run[0], run[1], run[2] / 100), run[2] / 100
        return not start - 1e-12 <= c <= 1 + 1e-12

    found = _search(_RUNS, outside)
    if found is not None:
        step, total, start = found[0], found[1], found[2] / 100
        c = _value(pacing, step, total, start)
        bound = "> 1" if c > 1 else f"< start_fraction {start}"
        raise fail(
            f"returns {number(c)} {bound} at step={step}, total_steps={total}, "
            f"start_fraction={start}",
            "stays in [start_fraction, 1]",
        )


def _pacing_monotone(pacing: Pacing) -> None:
    """c(t + 1) ≥ c(t): the pool of samples never shrinks."""
    runs = _RUNS.filter(lambda r: r[0] < r[1])

    def drops(run: tuple[int, int, int]) -> bool:
        step, total, start = run[0], run[1], run[2] / 100
        return _value(pacing, step + 1, total, start) < _value(pacing, step, total, start) - 1e-12

    found = _search(runs, drops)
    if found is not None:
        step, total, start = found[0], found[1], found[2] / 100
        now, then = _value(pacing, step, total, start), _value(pacing, step + 1, total, start)
        raise fail(
            f"c({step + 1}) = {number(then)} < c({step}) = {number(now)} at total_steps="
            f"{total}, start_fraction={start}",
            "never decreases",
        )


def _pacing_reaches_one(pacing: Pacing) -> None:
    """c(T) = 1: by the last step every sample is in the pool."""
    found = _search(
        _RUNS, lambda r: not math.isclose(_value(pacing, r[1], r[1], r[2] / 100), 1.0, rel_tol=1e-9)
    )
    if found is not None:
        total, start = found[1], found[2] / 100
        raise fail(
            f"c({total}) = {number(_value(pacing, total, total, start))} at total_steps="
            f"{total}, start_fraction={start}, expected 1.0",
            "reaches 1 at the last step",
        )


CHECKS: MappingProxyType[str, tuple[Check, ...]] = MappingProxyType(
    {
        "H.pacing": (
            ("returns a number", _pacing_number),
            ("starts at start_fraction", _pacing_starts),
            ("stays in [start_fraction, 1]", _pacing_bounded),
            ("never decreases", _pacing_monotone),
            ("reaches 1 at the last step", _pacing_reaches_one),
        ),
    }
)
"""Exercise id → its ordered checks."""
