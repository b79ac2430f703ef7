"""The memory claim: "the memory estimate bounds actual use within 20%".

With E the estimated and M the measured peak bytes of a configuration, two readings:

- ``"bound"`` (the default, the claim's words): E is an upper bound of M, and a tight one,
  M ≤ E ≤ (1+τ)·M; an under-estimate by any amount falsifies it;
- ``"within"``: |E − M| ≤ τ·M, the two-sided check of ``coursekit memory validate``.

The claim is about every configuration given: one that disagrees falsifies it.

Guide: docs/experiments.md. Imported by :mod:`coursekit.experiments.falsify`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from coursekit.experiments.verdict import EvidenceError, Verdict, finite

Reading = Literal["bound", "within"]


@dataclass(frozen=True)
class _Reading:
    """One reading of "the estimate bounds use": its claim, rule and per-point finding."""

    claim: str
    rule: str
    agrees: str
    """The finding of a configuration that agrees with the claim."""
    miss: Callable[[float, float, float], str | None]
    """(E, M, τ) → why the point falsifies the claim, or None when it agrees."""


def _bound_miss(estimated: float, measured: float, tau: float) -> str | None:
    if estimated < measured:
        return "under-estimate"
    if estimated > (1 + tau) * measured:
        return f"more than {tau * 100:g}% above"
    return None


def _within_miss(estimated: float, measured: float, tau: float) -> str | None:
    if abs(estimated - measured) > tau * measured:
        return f"{'over' if estimated > measured else 'under'} by more than {tau * 100:g}%"
    return None


_READINGS: dict[str, _Reading] = {
    "bound": _Reading(
        claim="the memory estimate bounds actual use within {pct} (M ≤ E ≤ {factor}·M)",
        rule="falsified when E < M or E > {factor}·M for some configuration",
        agrees="bounds",
        miss=_bound_miss,
    ),
    "within": _Reading(
        claim="the memory estimate is within {pct} of actual use (|E − M| ≤ {tau}·M)",
        rule="falsified when |E − M| > {tau}·M for some configuration",
        agrees="within",
        miss=_within_miss,
    ),
}


def memory_estimate_bounds_use(
    estimated_bytes: Mapping[str, float] | float,
    measured_bytes: Mapping[str, float] | float,
    tolerance: float = 0.20,
    *,
    reading: Reading = "bound",
) -> Verdict:
    """Test "the memory estimate bounds actual use within 20%" on one or more configurations.

    ``reading="bound"`` (the default): the estimate E is an upper bound of the measured peak
    M, and a tight one: M ≤ E ≤ (1+τ)·M for every configuration. ``reading="within"``: the
    two-sided |E − M| ≤ τ·M that ``coursekit memory validate`` checks (an under-estimate
    within τ passes). The evidence has E, M, E/M and (E − M)/M for each configuration.

    Args:
        estimated_bytes: E, one number or configuration name → bytes.
        measured_bytes: M, of the same kind (the same names when a mapping).
        tolerance: τ, how far above M (or from M, when ``"within"``) E may lie.
        reading: ``"bound"`` or ``"within"``, as above.

    Raises:
        EvidenceError: a byte count that is not a finite number > 0, mappings that name
            different configurations, a negative τ, or an unknown reading.

    Example:
        >>> estimates = {"lora-r8": 33.0e6, "full": 45.0e6}
        >>> verdict = memory_estimate_bounds_use(estimates, {"lora-r8": 32.3e6, "full": 46.0e6})
        >>> verdict.holds, [row["finding"] for row in verdict.evidence]
        (False, ['bounds', 'under-estimate'])
    """
    where = "memory_estimate_bounds_use"
    if reading not in _READINGS:
        raise EvidenceError(f"{where}: reading must be one of {list(_READINGS)} (got {reading!r})")
    tau = finite(tolerance, f"{where}: tolerance")
    if tau < 0:
        raise EvidenceError(f"{where}: tolerance must be >= 0 (got {tau!r})")
    pairs = _byte_pairs(estimated_bytes, measured_bytes, where)
    check = _READINGS[reading]
    rows = [
        {
            "configuration": name,
            "estimated_bytes": estimated,
            "measured_bytes": measured,
            "ratio": estimated / measured,
            "relative_error": (estimated - measured) / measured,
            "finding": check.miss(estimated, measured, tau) or check.agrees,
        }
        for name, (estimated, measured) in pairs.items()
    ]
    failed = [row for row in rows if row["finding"] != check.agrees]
    words = {"pct": f"{tau * 100:g}%", "factor": f"{1 + tau:g}", "tau": f"{tau:g}"}
    return Verdict(
        claim=check.claim.format(**words),
        holds=not failed,
        rule=check.rule.format(**words),
        evidence=tuple(rows),
        explanation=_memory_explanation(rows, failed),
    )


def _byte_pairs(estimated: Any, measured: Any, where: str) -> dict[str, tuple[float, float]]:
    """Return name → (E, M), checked: the same names, every count a finite number > 0."""
    if not isinstance(estimated, Mapping) and not isinstance(measured, Mapping):
        estimated, measured = {"config": estimated}, {"config": measured}
    if not (isinstance(estimated, Mapping) and isinstance(measured, Mapping)):
        raise EvidenceError(
            f"{where}: give two numbers or two mappings of name → bytes, not one of each"
        )
    if set(estimated) != set(measured) or not estimated:
        only_e, only_m = set(estimated) - set(measured), set(measured) - set(estimated)
        raise EvidenceError(
            f"{where}: the estimates and measurements must name the same configurations, at "
            f"least one (only estimated: {sorted(map(str, only_e))}; only measured: "
            f"{sorted(map(str, only_m))})"
        )
    pairs = {}
    for name in estimated:
        counts = []
        for what, source in (("estimated_bytes", estimated), ("measured_bytes", measured)):
            count = finite(source[name], f"{where}: {what}[{name!r}]")
            if count <= 0:
                raise EvidenceError(f"{where}: {what}[{name!r}] must be > 0 (got {count!r})")
            counts.append(count)
        pairs[str(name)] = (counts[0], counts[1])
    return pairs


def _memory_explanation(
    rows: Sequence[Mapping[str, Any]], failed: Sequence[Mapping[str, Any]]
) -> str:
    low = min(row["ratio"] for row in rows)
    high = max(row["ratio"] for row in rows)
    span = f"E/M from {low:.3f} to {high:.3f}" if len(rows) > 1 else f"E/M = {low:.3f}"
    if not failed:
        return f"Not falsified: all {len(rows)} configuration(s) agree with the claim ({span})."
    misses = "; ".join(
        f"{row['configuration']} (E/M = {row['ratio']:.3f}: {row['finding']})" for row in failed
    )
    return (
        f"Falsified by {len(failed)} of {len(rows)} configuration(s): {misses}. Over all, {span}."
    )
