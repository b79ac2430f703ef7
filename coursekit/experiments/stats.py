"""Seed statistics for falsification: sample mean and spread, and Student's t quantile.

The rank verdict of :mod:`coursekit.experiments.falsify` compares seed means with Welch's
test, which needs the quantile of Student's t distribution at a fractional number of degrees
of freedom ν (Welch–Satterthwaite). coursekit does not depend on scipy, so the quantile is
computed here from the distribution function

    F(t; ν) = 1 − ½·I_{ν/(ν+t²)}(ν/2, ½)   for t ≥ 0,

where I_x(a, b) is the regularized incomplete beta function, evaluated by its continued
fraction (Numerical Recipes, 3rd ed., §6.4) and inverted by bisection. The tests check it
against printed t tables.

Example:
    >>> round(t_quantile(0.95, 4), 4), round(t_quantile(0.975, 10), 4)
    (2.1318, 2.2281)
    >>> mean_and_std([1.0, 2.0, 3.0])
    (2.0, 1.0)

Guide: docs/experiments.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

_EPSILON = 1e-15
_TINY = 1e-300
_MAX_TERMS = 300


def mean_and_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Return (x̄, s): the mean and the sample standard deviation (n − 1), None when n = 1.

    Both are exact up to one rounding (``statistics.fmean`` and ``statistics.stdev`` sum
    exactly), so the order of the values never changes them.

    Raises:
        ValueError: ``values`` is empty.

    Example:
        >>> mean_and_std([3.0])
        (3.0, None)
    """
    if not values:
        raise ValueError("mean_and_std needs at least one value")
    mean = statistics.fmean(values)
    if len(values) == 1:
        return mean, None
    return mean, statistics.stdev(values)


def t_quantile(probability: float, df: float) -> float:
    """Return t with F(t; ν) = ``probability`` for Student's t with ν = ``df`` > 0.

    Only the upper half is needed (one-sided bounds): ``probability`` is in [0.5, 1), so the
    result is ≥ 0; t_{0.5} = 0 for every ν, and t → the normal quantile as ν → ∞. Accurate
    to about 1e-8 for ν up to 10⁹ (the log-gamma difference in :func:`incomplete_beta` is
    taken from Stirling's series for large arguments; seed counts never come near).

    Raises:
        ValueError: ``probability`` outside [0.5, 1) or ``df`` not a finite number > 0.

    Example:
        >>> round(t_quantile(0.95, 1), 3), round(t_quantile(0.95, 1e6), 3)
        (6.314, 1.645)
    """
    if not 0.5 <= probability < 1:
        raise ValueError(f"t_quantile needs a probability in [0.5, 1) (got {probability!r})")
    if not (math.isfinite(df) and df > 0):
        raise ValueError(f"t_quantile needs degrees of freedom > 0 (got {df!r})")
    if probability == 0.5:
        return 0.0
    high = 1.0
    while t_cdf(high, df) < probability:
        high *= 2
    low = 0.0
    for _ in range(200):  # bisection; 200 halvings reach the float resolution of any bracket
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if t_cdf(middle, df) < probability:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def t_cdf(t: float, df: float) -> float:
    """Return F(t; ν) = P(T ≤ t) for Student's t with ν = ``df`` degrees of freedom.

    Example:
        >>> t_cdf(0.0, 3), round(t_cdf(1.0, 1), 6)
        (0.5, 0.75)
    """
    a, b = df / 2, 0.5
    x, y = df / (df + t * t), t * t / (df + t * t)  # y = 1 − x, without cancellation
    if x < (a + 1) / (a + b + 2):
        tail = 0.5 * incomplete_beta(a, b, x)
        return 1 - tail if t >= 0 else tail
    # near t = 0: F = ½ ± ½·I_y(½, ν/2), so a tiny |t| keeps its digits instead of 1 − (1 − ε)
    half_mass = 0.5 * incomplete_beta(b, a, y)
    return 0.5 + half_mass if t >= 0 else 0.5 - half_mass


def incomplete_beta(a: float, b: float, x: float) -> float:
    """Return the regularized incomplete beta function I_x(a, b), for a, b > 0, x in [0, 1].

    I_x(a, b) = B(x; a, b) / B(a, b), from its continued fraction, which converges fast for
    x < (a + 1)/(a + b + 2); above that, the symmetry I_x(a, b) = 1 − I_{1−x}(b, a) is used.

    Example:
        >>> incomplete_beta(1.0, 1.0, 0.25), incomplete_beta(2.0, 3.0, 1.0)
        (0.25, 1.0)
    """
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    big, small = max(a, b), min(a, b)
    log_beta = _log_gamma_ratio(big, small) - math.lgamma(small)  # log Γ(a+b) − log Γ(a) − log Γ(b)
    log_front = log_beta + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _beta_fraction(b, a, 1 - x) / b


def _log_gamma_ratio(a: float, b: float) -> float:
    """Return log Γ(a+b) − log Γ(a), for a ≥ b > 0, without cancelling two huge log-gammas.

    For a ≥ 1000 the difference of Stirling's series, (a+b−½)·log1p(b/a) + b·log a − b +
    [1/(12(a+b)) − 1/(12a)] − [1/(360(a+b)³) − 1/(360a³)], whose next term is below 1e-15;
    below that, ``math.lgamma`` is small enough to subtract directly.
    """
    if a < 1000:
        return math.lgamma(a + b) - math.lgamma(a)
    c = a + b
    series = (1 / (12 * c) - 1 / (12 * a)) - (1 / (360 * c**3) - 1 / (360 * a**3))
    return (c - 0.5) * math.log1p(b / a) + b * math.log(a) - b + series


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) by the modified Lentz method (NR §6.4)."""
    c, d = 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > _TINY else _TINY)
    fraction = d
    for m in range(1, _MAX_TERMS + 1):
        even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        for term in (even, odd):
            d = 1 + term * d
            d = 1 / (d if abs(d) > _TINY else _TINY)
            c = 1 + term / c
            c = c if abs(c) > _TINY else _TINY
            fraction *= c * d
        if abs(c * d - 1) < _EPSILON:
            break
    return fraction
