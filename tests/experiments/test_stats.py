"""Student's t quantile against printed tables, and the seed statistics."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from coursekit.experiments.stats import incomplete_beta, mean_and_std, t_cdf, t_quantile

# (probability, degrees of freedom, t) from a printed Student's t table (4 decimals).
TABLE = [
    (0.95, 1, 6.3138),
    (0.95, 2, 2.9200),
    (0.95, 3, 2.3534),
    (0.95, 4, 2.1318),
    (0.95, 10, 1.8125),
    (0.95, 30, 1.6973),
    (0.975, 1, 12.7062),
    (0.975, 5, 2.5706),
    (0.975, 10, 2.2281),
    (0.99, 3, 4.5407),
    (0.999, 1, 318.3088),
]


@pytest.mark.parametrize(("probability", "df", "expected"), TABLE)
def test_t_quantile_matches_the_printed_table(probability, df, expected):
    assert t_quantile(probability, df) == pytest.approx(expected, abs=6e-5)


def cornish_fisher(probability: float, df: float) -> float:
    """The t quantile's expansion in 1/ν around the normal quantile (Abramowitz–Stegun 26.7.5)."""
    z = statistics.NormalDist().inv_cdf(probability)
    terms = [
        (z**3 + z) / 4,
        (5 * z**5 + 16 * z**3 + 3 * z) / 96,
        (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
        (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160,
    ]
    return z + sum(term / df ** (i + 1) for i, term in enumerate(terms))


@pytest.mark.parametrize("df", [1e3, 1e4, 1e5, 1e6, 1e7, 1e9])
def test_t_quantile_tends_to_the_normal_quantile(df):
    for probability in (0.9, 0.95, 0.999):
        assert t_quantile(probability, df) == pytest.approx(
            cornish_fisher(probability, df), abs=1e-8
        )
    assert t_quantile(0.5, df) == 0.0


def test_t_cdf_has_the_closed_form_of_one_and_two_degrees_of_freedom():
    for t in (-3.0, -0.5, 0.0, 0.7, 4.0):
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)
        assert t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-12)


def test_incomplete_beta_agrees_with_its_closed_forms():
    # I_x(a, 1) = x^a and I_x(1, b) = 1 − (1 − x)^b
    for x in (0.01, 0.3, 0.5, 0.9, 0.999):
        assert incomplete_beta(2.5, 1.0, x) == pytest.approx(x**2.5, rel=1e-12)
        assert incomplete_beta(1.0, 3.5, x) == pytest.approx(1 - (1 - x) ** 3.5, rel=1e-12)
    assert incomplete_beta(2.0, 2.0, 0.0) == 0.0 and incomplete_beta(2.0, 2.0, 1.0) == 1.0


@settings(max_examples=50, deadline=None)
@given(
    probability=st.floats(0.5, 0.999),
    df=st.floats(0.5, 1e4),
)
@example(probability=0.5000000000000001, df=0.5000000000000001)  # found by CI: 1 − (1 − ε)
def test_t_quantile_inverts_the_distribution_function(probability, df):
    t = t_quantile(probability, df)
    assert t >= 0
    assert t_cdf(t, df) == pytest.approx(probability, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(df=st.floats(0.5, 100), more=st.floats(0.1, 100))
def test_more_degrees_of_freedom_give_a_smaller_quantile(df, more):
    assert t_quantile(0.95, df + more) <= t_quantile(0.95, df) + 1e-9


@pytest.mark.parametrize(("probability", "df"), [(0.4, 3), (1.0, 3), (0.95, 0), (0.95, math.nan)])
def test_t_quantile_refuses_what_it_cannot_compute(probability, df):
    with pytest.raises(ValueError, match="t_quantile needs"):
        t_quantile(probability, df)


def test_mean_and_std_use_the_sample_standard_deviation():
    assert mean_and_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_and_std([4.0]) == (4.0, None)
    with pytest.raises(ValueError, match="at least one value"):
        mean_and_std([])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.01, 100), min_size=2, max_size=8), st.randoms())
def test_the_order_of_the_seeds_does_not_matter(values, rng):
    shuffled = list(values)
    rng.shuffle(shuffled)
    assert mean_and_std(shuffled) == mean_and_std(values)
