"""Rates with honest uncertainty: Wilson 95% intervals and the unbiased pass@k estimator.

A rate measured on n samples is reported with its Wilson score interval (Wilson 1927), which
unlike the normal approximation p ± z·√(p(1−p)/n) stays inside [0, 1] and keeps its coverage
near 0 and 1, where generated-test pass rates live:

    centre = (p + z²/2n) / (1 + z²/n),   half = z·√(p(1−p)/n + z²/4n²) / (1 + z²/n).

pass@k with n ≥ k samples per problem of which c pass is the unbiased estimator of Chen et
al. 2021 (arXiv 2107.03374, §2.1): pass@k = 1 − C(n−c, k) / C(n, k), computed as a product to
stay exact for large n.

Example:
    >>> rate = Rate(successes=12, total=41)
    >>> round(rate.value, 3), tuple(round(x, 3) for x in rate.interval)
    (0.293, (0.176, 0.445))
    >>> round(pass_at_k(n=10, c=3, k=1), 6), round(pass_at_k(n=10, c=3, k=5), 6)
    (0.3, 0.916667)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054
"""The standard normal's 97.5% quantile: a two-sided 95% interval."""


def wilson_interval(successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """Return the Wilson score interval (low, high) of successes/total; (0, 1) when total = 0.

    Raises:
        ValueError: counts that are negative, or successes > total.
    """
    if total < 0 or not 0 <= successes <= max(total, 0):
        raise ValueError(f"wilson_interval needs 0 <= successes <= total (got {successes}/{total})")
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    # At p = 0 (or 1) the bound is exactly 0 (or 1); rounding must not move it off the rate.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == total else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True, kw_only=True)
class Rate:
    """A count of successes out of a total, with its Wilson 95% interval."""

    successes: int
    """How many samples passed the stage."""
    total: int
    """How many samples were measured."""

    def __post_init__(self) -> None:
        wilson_interval(self.successes, self.total)  # validates the counts

    @property
    def value(self) -> float:
        """The rate, successes / total (0 when nothing was measured)."""
        return self.successes / self.total if self.total else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        """The Wilson 95% interval of ``value``."""
        return wilson_interval(self.successes, self.total)

    def __str__(self) -> str:
        low, high = self.interval
        return f"{self.successes}/{self.total} = {self.value:.1%} [{low:.1%}, {high:.1%}]"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Return the unbiased pass@k = 1 − C(n−c, k)/C(n, k) for one problem.

    Args:
        n: samples generated for the problem (n ≥ k).
        c: samples that passed (0 ≤ c ≤ n).
        k: the budget of attempts.

    Raises:
        ValueError: k < 1, n < k, or c outside 0..n.
    """
    if k < 1 or n < k or not 0 <= c <= n:
        raise ValueError(f"pass_at_k needs 1 <= k <= n and 0 <= c <= n (got n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    # C(n−c, k)/C(n, k) = Π_{i=n−c+1}^{n} (1 − k/i)
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Return pass@k averaged over problems, each given as (n, c); 0 for no problems."""
    if not counts:
        return 0.0
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)
