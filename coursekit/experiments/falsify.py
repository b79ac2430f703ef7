"""Falsification helpers: state a claim that could be false, measure, and return the verdict.

Each helper takes a hypothesis and its measurements and returns a
:class:`~coursekit.experiments.verdict.Verdict`: the
claim, whether it ``holds``, the decision ``rule`` as an equation, the numbers behind it (one
row per comparison) and a paragraph saying what they show. A falsified claim is a result
like any other: it is returned with its numbers, never raised or hidden.

======================================  ===================================================
helper                                  falsified when
======================================  ===================================================
:func:`falsify`                         x > θ (``direction="<="``) or x < θ (``">="``)
:func:`rank_does_not_decrease_quality`  for some consecutive ranks r < r′, with seed means
                                        m, m′, sample std s, s′ and seed counts n, n′:
                                        m′ − (1+τ)·m > t_{c,ν} · √(s′²/n′ + (1+τ)²·s²/n)
:func:`memory_estimate_bounds_use`      for some configuration, E < M or E > (1+τ)·M
                                        (``reading="within"``: |E − M| > τ·M)
======================================  ===================================================

The rank rule is a one-sided Welch test of the claim's own boundary m′ ≤ (1+τ)·m: a rank
falsifies only when its excess over the allowance is beyond what the seeds' spread explains
(c = 0.95 by default, ν the Welch–Satterthwaite degrees of freedom; :mod:`.rank`). The
memory rule and its two readings are in :mod:`.memory_bound`. This module holds the generic
:func:`falsify` and gathers the helpers, so one import serves a notebook or a test.

Example:
    >>> verdict = falsify("the validation loss is below 2", 1.7, 2.0)
    >>> verdict.holds, verdict.status
    (True, 'NOT FALSIFIED')
    >>> rank_does_not_decrease_quality({4: [2.0, 2.1], 8: [2.6, 2.7]}).status
    'FALSIFIED'

Guide: docs/experiments.md. Used in Phase 4 (validation) and by the learner workspace's tests.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Literal

from coursekit.experiments.memory_bound import memory_estimate_bounds_use
from coursekit.experiments.rank import rank_does_not_decrease_quality
from coursekit.experiments.verdict import EvidenceError, Verdict, finite

__all__ = [
    "EvidenceError",
    "Verdict",
    "falsify",
    "memory_estimate_bounds_use",
    "rank_does_not_decrease_quality",
]

Direction = Literal["<=", ">="]

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}


def falsify(
    claim: str,
    measure: Callable[[], float] | float,
    threshold: float,
    *,
    direction: Direction = "<=",
) -> Verdict:
    """Measure x and test the claim x ≤ θ (``direction="<="``) or x ≥ θ (``">="``).

    The claim holds at x = θ exactly. The threshold and direction are checked before
    ``measure`` runs, so a typo fails before an expensive measurement; an exception raised by
    ``measure`` propagates (a failed measurement is not a verdict). The evidence row holds x,
    θ, the direction and the margin (θ − x for ``"<="``, x − θ for ``">="``; ≥ 0 when it holds).

    Args:
        claim: the hypothesis in words, e.g. "rank 16's validation loss is below 2.0".
        measure: a function returning the measured number, or the number itself.
        threshold: θ, the boundary the claim states.
        direction: ``"<="`` (x must not exceed θ) or ``">="`` (x must reach θ).

    Raises:
        EvidenceError: an empty claim, an unknown direction, or a threshold or measurement
            that is not a finite number (NaN, infinity, a string, a tensor, a bool).

    Example:
        >>> print(falsify("compile rate at least 0.5", lambda: 0.41, 0.5, direction=">="))
        FALSIFIED: compile rate at least 0.5
        rule: falsified when x < θ
        measured  direction  threshold  margin
            0.41  >=               0.5   -0.09
        The measurement 0.41 falls short of the threshold 0.5 by 0.09: the claim is falsified.
    """
    if not isinstance(claim, str) or not claim.strip():
        raise EvidenceError(
            f"falsify: claim must be a sentence that could be false (got {claim!r})"
        )
    if direction not in _COMPARISONS:
        raise EvidenceError(
            f"falsify: direction must be one of {list(_COMPARISONS)} (got {direction!r})"
        )
    limit = finite(threshold, "falsify: threshold")
    where = "falsify: the value measure() returned" if callable(measure) else "falsify: measure"
    measured = finite(measure() if callable(measure) else measure, where)
    holds = _COMPARISONS[direction](measured, limit)
    margin = limit - measured if direction == "<=" else measured - limit
    if holds:
        explanation = (
            f"The measurement {measured:g} is within the threshold {limit:g} "
            f"(x {direction} θ, margin {margin:g}): the claim is not falsified."
        )
    else:
        how = "exceeds" if direction == "<=" else "falls short of"
        explanation = (
            f"The measurement {measured:g} {how} the threshold {limit:g} by {-margin:g}: "
            "the claim is falsified."
        )
    return Verdict(
        claim=claim,
        holds=holds,
        rule=f"falsified when x {'>' if direction == '<=' else '<'} θ",
        evidence=(
            {"measured": measured, "direction": direction, "threshold": limit, "margin": margin},
        ),
        explanation=explanation,
    )
