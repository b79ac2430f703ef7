"""``Verdict``: a claim, whether it survived its test, the rule, the numbers and their reading.

Every helper of :mod:`coursekit.experiments.falsify` returns one. A verdict cannot be built
without numbers: ``evidence`` must hold at least one row, each a mapping of names to plain,
finite scalars (``int``, ``float``, ``str``, ``bool`` or ``None``), so ``to_dict`` is
JSON-ready and ``from_dict`` reads it back equal. Rows are read-only once built.

Example:
    >>> verdict = Verdict(
    ...     claim="the loss is below 2",
    ...     holds=False,
    ...     rule="falsified when x > θ",
    ...     evidence=({"measured": 2.5, "threshold": 2.0},),
    ...     explanation="2.5 exceeds 2 by 0.5.",
    ... )
    >>> print(verdict.to_markdown())
    **FALSIFIED**: the loss is below 2
    <BLANKLINE>
    Rule: falsified when x > θ
    <BLANKLINE>
    | measured | threshold |
    |---:|---:|
    | 2.5 | 2 |
    <BLANKLINE>
    2.5 exceeds 2 by 0.5.
    >>> Verdict.from_dict(verdict.to_dict()) == verdict
    True

Guide: docs/experiments.md.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from coursekit.errors import CoursekitError, cannot_write
from coursekit.io import write_json

Scalar = int | float | str | bool | None
"""What an evidence cell holds: plain data that ``json`` writes and reads back."""


class EvidenceError(CoursekitError, ValueError):
    """Evidence a helper cannot judge: NaN, infinity, a non-number, an unknown option."""


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The outcome of testing a claim that could be false, with the numbers that decided it."""

    claim: str
    """The hypothesis, stated so that it could be false."""
    holds: bool
    """False when the evidence falsified the claim."""
    rule: str
    """The decision rule, as an equation: what would falsify the claim."""
    evidence: tuple[Mapping[str, Scalar], ...]
    """The measured numbers, one row per comparison (plain data, read-only)."""
    explanation: str
    """One paragraph: what the numbers show, in words."""

    def __post_init__(self) -> None:
        """Refuse a verdict without a claim, a rule, an explanation or numbers."""
        for name in ("claim", "rule", "explanation"):
            text = getattr(self, name)
            if not isinstance(text, str) or not text.strip():
                raise EvidenceError(f"Verdict.{name} must be a non-empty string (got {text!r})")
        if not isinstance(self.holds, bool):
            raise EvidenceError(f"Verdict.holds must be True or False (got {self.holds!r})")
        if isinstance(self.evidence, Mapping | str) or not self.evidence:
            raise EvidenceError("Verdict.evidence must hold at least one row of numbers")
        rows = tuple(MappingProxyType(_row(row, i)) for i, row in enumerate(self.evidence))
        object.__setattr__(self, "evidence", rows)

    @property
    def status(self) -> str:
        """``"NOT FALSIFIED"`` when the claim holds, else ``"FALSIFIED"``."""
        return "NOT FALSIFIED" if self.holds else "FALSIFIED"

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as plain data (``json.dumps`` writes it, ``from_dict`` reads it)."""
        return {
            "claim": self.claim,
            "holds": self.holds,
            "status": self.status,
            "rule": self.rule,
            "evidence": [dict(row) for row in self.evidence],
            "explanation": self.explanation,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Rebuild a verdict from :meth:`to_dict`'s layout (``status`` is derived, not read).

        Raises:
            EvidenceError: a field is missing or not of its kind.
        """
        names = ("claim", "holds", "rule", "evidence", "explanation")
        missing = [name for name in names if name not in data]
        if missing:
            raise EvidenceError(f"a verdict needs the field(s) {missing} (got {sorted(data)})")
        return cls(**{name: data[name] for name in names})

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` atomically; return the path.

        Raises:
            CoursekitError: ``path`` cannot be written (its folder is missing, say); the
                message names the path and the reason.
        """
        try:
            return write_json(path, self.to_dict())
        except OSError as error:
            raise cannot_write(path, "the verdict", error) from None

    def to_markdown(self) -> str:
        """Return the status and claim, the rule, the evidence table and the explanation."""
        columns = _columns(self.evidence)
        header = "| " + " | ".join(columns) + " |"
        align = "|" + "|".join(":---" if _is_text(self.evidence, c) else "---:" for c in columns)
        body = [
            "| " + " | ".join(_cell(row.get(c)).replace("|", "\\|") for c in columns) + " |"
            for row in self.evidence
        ]
        table = "\n".join([header, align + "|", *body])
        return (
            f"**{self.status}**: {self.claim}\n\nRule: {self.rule}\n\n{table}\n\n{self.explanation}"
        )

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return (
            f"{self.status}: {self.claim}\nrule: {self.rule}\n"
            f"{text_table(self.evidence)}\n{self.explanation}"
        )


def _row(row: Any, index: int) -> dict[str, Scalar]:
    """Return a copy of ``row`` after checking it is a non-empty mapping of finite scalars."""
    if not isinstance(row, Mapping) or not row:
        raise EvidenceError(f"Verdict.evidence[{index}] must be a non-empty mapping of numbers")
    for key, value in row.items():
        plain = value is None or isinstance(value, str | bool | int | float)
        if not isinstance(key, str) or not plain:
            raise EvidenceError(f"Verdict.evidence[{index}][{key!r}] is not plain data: {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise EvidenceError(f"Verdict.evidence[{index}][{key!r}] is {value!r}, not a number")
    return dict(row)


def text_table(rows: Sequence[Mapping[str, Scalar]]) -> str:
    """Return ``rows`` as aligned text: numbers right, text left, floats to 4 digits.

    Example:
        >>> print(text_table([{"name": "a", "ratio": 1.23456}, {"name": "bb", "ratio": 10.0}]))
        name  ratio
        a     1.235
        bb       10
    """
    columns = _columns(rows)
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    left = [_is_text(rows, column) for column in columns]

    def line(values: Sequence[str]) -> str:
        padded = (
            v.ljust(w) if text else v.rjust(w)
            for v, w, text in zip(values, widths, left, strict=True)
        )
        return "  ".join(padded).rstrip()

    return "\n".join([line(columns), *(line(values) for values in cells)])


def finite(value: Any, where: str) -> int | float:
    """Return ``value`` as a plain int or float; refuse bools, non-numbers, NaN and infinity.

    Raises:
        EvidenceError: "<where> must be a finite number (got ...)"; for an object with an
            ``item`` method (a tensor, a numpy array) the message suggests ``.item()``.

    Example:
        >>> finite(3, "x"), finite(2.5, "x")
        (3, 2.5)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        shown = " ".join(repr(value).split())[:60]
        hint = "; call .item() on a tensor" if hasattr(value, "item") else ""
        raise EvidenceError(
            f"{where} must be a finite number (got {shown}: {type(value).__name__}){hint}"
        )
    number = int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(number, float) and not math.isfinite(number):
        raise EvidenceError(f"{where} must be a finite number (got {number!r})")
    return number


def _columns(rows: Sequence[Mapping[str, Scalar]]) -> list[str]:
    """The rows' keys in order of first appearance."""
    return list(dict.fromkeys(key for row in rows for key in row))


def _is_text(rows: Sequence[Mapping[str, Scalar]], column: str) -> bool:
    return all(isinstance(row.get(column), str) for row in rows)


def _cell(value: Scalar) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
