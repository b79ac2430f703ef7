"""``CheckResult``: the verdict of one exercise check, and ``CheckFailed``, how a check says no.

A check is a sequence of named sub-checks; the first that fails stops it with a message
naming what differs (a shape, a value at an index with both values, a property and its
counterexample). The result crosses the process boundary as JSON (``to_json`` /
``from_json``), never as a pickle.

Guide: docs/exercises.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


class CheckFailed(Exception):
    """A sub-check found the learner's answer wrong; the message says what differs."""


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """The outcome of ``coursekit.check``: passed or not, how many checks ran, what differed.

    Example:
        >>> result = CheckResult(exercise="H.pacing", passed=True, checks_passed=5, checks=5)
        >>> print(result)
        ✓ H.pacing: 5 checks passed
        >>> print(CheckResult(exercise="H.pacing", passed=False, checks_passed=1, checks=5,
        ...                   message="returns 1.2 > 1 at step=3, total=4, start=0.5"))
        ✗ H.pacing: returns 1.2 > 1 at step=3, total=4, start=0.5
    """

    exercise: str
    """The exercise id, e.g. ``"E.dora_forward"``."""
    passed: bool
    """True when every check passed."""
    checks_passed: int
    """How many checks passed before the first failure (all of them when ``passed``)."""
    checks: int
    """How many checks the exercise has."""
    message: str = ""
    """What differs, with the failing check's name in parentheses; empty when passed."""

    def __str__(self) -> str:
        if self.passed:
            return f"✓ {self.exercise}: {self.checks} checks passed"
        return f"✗ {self.exercise}: {self.message}"

    def __bool__(self) -> bool:
        return self.passed

    def to_json(self) -> dict[str, Any]:
        """Return the fields as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckResult:
        """Rebuild a result from ``to_json``'s dict, refusing anything else.

        Raises:
            ValueError: ``data`` does not hold exactly the fields with their types.
        """
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or set(data) != set(fields):
            raise ValueError(f"not a CheckResult: {str(data)[:200]}")
        kinds = {"exercise": str, "passed": bool, "checks_passed": int, "checks": int,
                 "message": str}  # fmt: skip
        for name, kind in kinds.items():
            if not isinstance(data[name], kind):
                raise ValueError(f"CheckResult.{name} must be {kind.__name__}: {data[name]!r}")
        return cls(**data)
