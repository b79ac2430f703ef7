"""The rank claim: "a higher rank does not decrease quality", judged on seed means.

Ranks are sorted; each rank r′ is compared with the previous rank r. With seed means m, m′,
sample standard deviations s, s′ and seed counts n, n′, the step falsifies the claim when

    m′ − (1+τ)·m > t_{c,ν} · √(s′²/n′ + (1+τ)²·s²/n),

a one-sided Welch test of the claim's own boundary m′ ≤ (1+τ)·m at confidence c, with ν from
Welch–Satterthwaite: ν = (a + b)² / (a²/(n′−1) + b²/(n−1)), a = s′²/n′, b = (1+τ)²·s²/n.
Testing the boundary, not "no change", is what keeps a true claim from being falsified more
often than about 1 − c of the time: a test of m′ = m would reject a rank 10% worse, exactly
at the allowance, about half the time.

Guide: docs/experiments.md. Imported by :mod:`coursekit.experiments.falsify`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

from coursekit.experiments.stats import mean_and_std, t_quantile
from coursekit.experiments.verdict import EvidenceError, Scalar, Verdict, finite


def rank_does_not_decrease_quality(
    losses_by_rank: Mapping[int, Sequence[float] | float],
    tolerance: float = 0.10,
    *,
    confidence: float = 0.95,
) -> Verdict:
    """Test "a higher rank does not decrease quality" on final losses over seeds.

    Ranks are sorted; each rank r′ is compared with the previous one r by seed means. The
    step falsifies the claim when m′ − (1+τ)·m > t_{c,ν}·√(s′²/n′ + (1+τ)²·s²/n): the mean
    loss rose more than τ above the previous rank's, by more than the one-sided Welch bound
    of the seeds' spread (ν by Welch–Satterthwaite). A rank with one seed has no spread
    (s = None in the evidence) and adds nothing under the root; with one seed on both sides
    the step is judged on the two losses alone, and the explanation says so.

    Args:
        losses_by_rank: rank → final losses of its seeds (a bare number is one seed).
        tolerance: τ, the relative rise allowed (0.10: within 10% of the previous rank).
        confidence: c, the one-sided confidence of the spread bound, in [0.5, 1) (0.5: no
            allowance for the spread).

    Raises:
        EvidenceError: fewer than two ranks, a rank that is not an int ≥ 1, a rank without
            losses, a loss that is not a finite number > 0, or τ or c out of range.

    Example:
        >>> verdict = rank_does_not_decrease_quality({4: [2.0, 2.1, 1.9], 8: [2.1, 2.3, 2.2]})
        >>> verdict.holds, round(verdict.evidence[0]["relative_change"], 3)
        (True, 0.1)
        >>> rank_does_not_decrease_quality({4: 2.0, 8: 1.8, 16: 2.5}).holds
        False
    """
    where = "rank_does_not_decrease_quality"
    tau = finite(tolerance, f"{where}: tolerance")
    level = finite(confidence, f"{where}: confidence")
    if tau < 0:
        raise EvidenceError(f"{where}: tolerance must be >= 0 (got {tau!r})")
    if not 0.5 <= level < 1:
        raise EvidenceError(f"{where}: confidence must be in [0.5, 1) (got {level!r})")
    losses = _losses_by_rank(losses_by_rank, where)
    steps = [_rank_step(r, s, losses[r], losses[s], tau, level) for r, s in pairwise(losses)]
    return Verdict(
        claim=(
            "a higher rank does not decrease quality (each rank's mean loss at most "
            f"{1 + tau:g}× the previous rank's, beyond the seeds' spread)"
        ),
        holds=not any(step["decreases_quality"] for step in steps),
        rule=(
            f"step r→r′ falsifies when m′ − {1 + tau:g}·m > t_{{{level:g},ν}}·"
            f"√(s′²/n′ + {1 + tau:g}²·s²/n)  (seed means m, sample std s, n seeds; Welch)"
        ),
        evidence=tuple(steps),
        explanation=_rank_explanation(steps, tau, level),
    )


def _losses_by_rank(data: Any, where: str) -> dict[int, tuple[float, ...]]:
    """Validate rank → losses; return them sorted by rank, each as a tuple of floats."""
    if not isinstance(data, Mapping) or len(data) < 2:
        raise EvidenceError(
            f"{where} needs a mapping of at least two ranks to losses (got {data!r})"
        )
    losses: dict[int, tuple[float, ...]] = {}
    for rank, values in data.items():
        if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or rank < 1:
            raise EvidenceError(f"{where}: rank {rank!r} must be an int >= 1")
        seeds = [values] if isinstance(values, numbers.Number) else values
        if isinstance(seeds, str | bytes | Mapping) or not isinstance(seeds, Iterable):
            raise EvidenceError(f"{where}: rank {rank}'s losses must be a list (got {values!r})")
        row = tuple(
            float(finite(x, f"{where}: rank {rank}'s loss #{i}")) for i, x in enumerate(seeds)
        )
        if not row:
            raise EvidenceError(f"{where}: rank {rank} has no losses; give one per seed")
        low = min(row)
        if low <= 0:
            raise EvidenceError(
                f"{where}: rank {rank}'s loss {low!r} must be > 0 (a cross-entropy)"
            )
        losses[int(rank)] = row
    return dict(sorted(losses.items()))


def _rank_step(
    rank: int,
    next_rank: int,
    before: Sequence[float],
    after: Sequence[float],
    tau: float,
    level: float,
) -> dict[str, Scalar]:
    """One step of the rank claim: the numbers and whether the higher rank falsifies it."""
    mean, std = mean_and_std(before)
    next_mean, next_std = mean_and_std(after)
    scale = 1 + tau
    a = 0.0 if next_std is None else next_std**2 / len(after)  # Var(m′)
    b = 0.0 if std is None else scale**2 * std**2 / len(before)  # Var((1+τ)·m)
    spread = math.sqrt(a + b)
    df, bound = None, 0.0
    if spread > 0:  # Welch–Satterthwaite, written with weights a/(a+b) so it cannot underflow
        wa, wb = a / (a + b), b / (a + b)
        df = 1 / (
            (wa * wa / (len(after) - 1) if a else 0.0) + (wb * wb / (len(before) - 1) if b else 0.0)
        )
        bound = t_quantile(level, df) * spread
    excess = next_mean - scale * mean
    return {
        "rank_from": rank,
        "rank_to": next_rank,
        "mean_from": mean,
        "mean_to": next_mean,
        "std_from": std,
        "std_to": next_std,
        "n_from": len(before),
        "n_to": len(after),
        "relative_change": (next_mean - mean) / mean,
        "excess": excess,
        "bound": bound,
        "df": df,
        "decreases_quality": excess > bound,
    }


def _rank_explanation(steps: Sequence[Mapping[str, Any]], tau: float, level: float) -> str:
    """One paragraph on the rank verdict: which steps falsify, which are only suggestive."""
    allowed = f"{tau * 100:g}%"

    def step(row: Mapping[str, Any]) -> str:
        return (
            f"rank {row['rank_to']}'s mean loss {row['mean_to']:.4g} (n={row['n_to']}) is "
            f"{row['relative_change']:+.1%} against rank {row['rank_from']}'s "
            f"{row['mean_from']:.4g} (n={row['n_from']}); its excess over the {allowed} "
            f"allowance is {row['excess']:.3g} against a spread bound of {row['bound']:.3g}"
        )

    failed = [row for row in steps if row["decreases_quality"]]
    if failed:
        text = "Falsified: " + "; ".join(step(row) for row in failed) + "."
    else:
        worst = max(steps, key=lambda row: row["relative_change"])
        text = (
            f"Not falsified: no rank's mean loss rose more than {allowed} above the previous "
            f"rank's beyond the one-sided {level:.0%} Welch bound of the seeds' spread; the "
            f"largest change was {worst['relative_change']:+.1%} (rank {worst['rank_from']} → "
            f"{worst['rank_to']})."
        )
    unclear = [row for row in steps if not row["decreases_quality"] and row["excess"] > 0]
    if unclear:
        text += (
            " Above the allowance but within the spread, so not falsified on this evidence: "
            + "; ".join(step(row) for row in unclear)
            + "; more seeds would decide."
        )
    flat = [f"{r['rank_from']} → {r['rank_to']}" for r in steps if r["df"] is None]
    if flat:
        text += (
            f" Steps {', '.join(flat)} have no measured spread (a single seed, or identical "
            "losses): they are judged on the means alone."
        )
    if any(r["n_from"] == 1 or r["n_to"] == 1 for r in steps):
        text += " A rank with one seed has no error bar: run two or more seeds per rank."
    return text
