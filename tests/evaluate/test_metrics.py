"""Wilson intervals and pass@k: known values, invariants, and the estimator's definition."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit.evaluate import metrics
from coursekit.evaluate.metrics import Rate, mean_pass_at_k, pass_at_k, wilson_interval


def test_known_wilson_values():
    """0/10 has the textbook upper bound 0.2775; 5/10 is symmetric about 0.5."""
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(1 - high) and low == pytest.approx(0.2366, abs=1e-4)


@given(total=st.integers(1, 5000), data=st.data())
def test_interval_contains_the_rate_and_shrinks_with_n(total, data):
    successes = data.draw(st.integers(0, total))
    low, high = wilson_interval(successes, total)
    assert 0.0 <= low <= successes / total <= high <= 1.0
    low4, high4 = wilson_interval(4 * successes, 4 * total)
    assert high4 - low4 < high - low


def test_empty_and_bad_counts():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert Rate(successes=0, total=0).value == 0.0
    for successes, total in ((3, 2), (-1, 4), (0, -1)):
        with pytest.raises(ValueError, match="0 <= successes <= total"):
            Rate(successes=successes, total=total)
    assert str(Rate(successes=1, total=4)).startswith("1/4 = 25.0% [")


@given(n=st.integers(1, 40), data=st.data())
def test_pass_at_k_equals_the_combinatorial_definition(n, data):
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    expected = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@given(n=st.integers(2, 40), data=st.data())
def test_pass_at_k_grows_with_k_and_c(n, data):
    c = data.draw(st.integers(0, n - 1))
    k = data.draw(st.integers(1, n - 1))
    assert pass_at_k(n, c, k) <= pass_at_k(n, c, k + 1)
    assert pass_at_k(n, c, k) <= pass_at_k(n, c + 1, k)


def test_pass_at_1_is_the_pass_rate_and_bad_arguments_raise():
    assert pass_at_k(20, 7, 1) == pytest.approx(7 / 20)
    assert mean_pass_at_k([(4, 1), (4, 3)], 1) == pytest.approx(0.5)
    assert mean_pass_at_k([], 1) == 0.0
    for n, c, k in ((3, 1, 0), (3, 1, 4), (3, 4, 1)):
        with pytest.raises(ValueError, match="pass_at_k needs"):
            pass_at_k(n, c, k)


def test_docstring_examples():
    assert doctest.testmod(metrics).failed == 0
