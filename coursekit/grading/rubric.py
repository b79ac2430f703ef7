"""The course rubric as data: ``rubric.yaml`` as frozen dataclasses, and the grade arithmetic.

The rubric (docs/course.md): Baseline run 10, Code quality 25, Test coverage 25, Enhancement
quality 25, Documentation 15, Bonus +10. Each category is split into checks (points, ``auto``
or ``manual``, the rule for full points, the rule for partial points, the learner's message).
The arithmetic is pure functions of the rubric:

- ``total = Σ base categories + min(bonus, bonus_cap)``, in [0, 100 + bonus_cap];
- ``band(total)``: the first band whose ``min`` ≤ total (A ≥ 90, B ≥ 80, C ≥ 70, D ≥ 60, F);
- lateness ``d`` = started days after the deadline, ⌈(submitted − deadline) / 1 day⌉;
  ``penalty = points_per_day · d`` for ``d ≤ max_days``, and the total is 0 after that;
  the final total is ``max(0, total − penalty)``.

Example:
    >>> rubric = load_rubric()
    >>> [(c.id, c.points) for c in rubric.categories][:2]
    [('baseline', 10.0), ('code-quality', 25.0)]
    >>> band(total({"baseline": 10, "code-quality": 25, "test-coverage": 25,
    ...             "enhancement-quality": 20, "documentation": 10, "bonus": 12}, rubric), rubric)
    'A'

Guide: docs/grading.md ("The rubric").
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from coursekit import codec
from coursekit.errors import CoursekitError

Kind = Literal["auto", "manual"]
ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
DAY = timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class Check:
    """One gradable item of a category."""

    id: str
    """Lower-case slug, unique in the rubric (``ruff-check``)."""
    points: float
    """Full points of the check (> 0)."""
    kind: Kind
    """``auto``: scored by the grader; ``manual``: scored by a TA in ``manual.yaml``."""
    rule: str
    """What earns full points."""
    partial: str = ""
    """How fewer points are given; empty: all or nothing."""
    message: str
    """What the learner reads when the check is not fully met: what is wrong, what to do."""

    def __post_init__(self) -> None:
        """Validate: a slug id, positive finite points, a rule and a message."""
        codec.check_types(self)
        codec.check_rules(self, [
            ("id", bool(ID.match(self.id)), "must be a lower-case slug (a-z, 0-9, -)"),
            ("points", 0 < self.points < math.inf, "must be > 0 and finite"),
            ("rule", bool(self.rule.strip()), "must say what earns full points"),
            ("message", bool(self.message.strip()), "must say what the learner should do"),
        ])  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Category:
    """A rubric category: its points are the sum of its checks'."""

    id: str
    """Lower-case slug (``test-coverage``); the key of a category in scores."""
    name: str
    """The course's name for it (``Test coverage``)."""
    points: float
    """Full points of the category."""
    bonus: bool = False
    """A bonus category: it adds on top of the base total, at most ``bonus_cap``; it may score
    more than its points (each extra Tier-3 enhancement is graded by its checks)."""
    covers: str = ""
    """The course's criteria, in words."""
    checks: tuple[Check, ...]
    """The checks; their points add up to ``points``."""

    def __post_init__(self) -> None:
        """Validate: a slug id, at least one check, checks' points summing to ``points``."""
        codec.check_types(self)
        codec.check_rules(self, [
            ("id", bool(ID.match(self.id)), "must be a lower-case slug (a-z, 0-9, -)"),
            ("points", 0 < self.points < math.inf, "must be > 0 and finite"),
            ("checks", bool(self.checks), "must list at least one check"),
        ])  # fmt: skip
        summed = sum(check.points for check in self.checks)
        if not math.isclose(summed, self.points):
            raise ValueError(
                f"Category {self.id!r}: its checks' points add up to {summed:g}, not its "
                f"{self.points:g} points; make them agree"
            )


@dataclass(frozen=True, kw_only=True)
class Band:
    """A letter grade and the lowest total that earns it."""

    letter: str
    """The letter (A..F)."""
    min: float
    """The lowest total of the band (inclusive)."""

    def __post_init__(self) -> None:
        """Validate: a non-empty letter and a finite minimum >= 0."""
        codec.check_types(self)
        codec.check_rules(self, [
            ("letter", bool(self.letter.strip()), "must not be empty"),
            ("min", 0 <= self.min < math.inf, "must be >= 0 and finite"),
        ])  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class LatePolicy:
    """Points lost per started day after the deadline, and after how many days it is zero."""

    points_per_day: float = 10.0
    """Points subtracted per started day late."""
    max_days: int = 3
    """Days a late submission is still graded; later ones score 0."""

    def __post_init__(self) -> None:
        """Validate: points per day >= 0, max_days >= 0."""
        codec.check_types(self)
        codec.check_rules(self, [
            ("points_per_day", 0 <= self.points_per_day < math.inf, "must be >= 0 and finite"),
            ("max_days", self.max_days >= 0, "must be >= 0"),
        ])  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Rubric:
    """The whole rubric: categories, bands, late policy and the bonus cap."""

    name: str
    """The course's name."""
    categories: tuple[Category, ...]
    """Base categories (adding up to 100) and bonus ones."""
    bands: tuple[Band, ...]
    """Letter bands from the highest ``min`` down to the one at 0."""
    late: LatePolicy = dataclasses.field(default_factory=LatePolicy)
    """The late policy."""
    bonus_cap: float = 10.0
    """Most bonus points counted."""

    def __post_init__(self) -> None:
        """Validate ids, the 100 base points, the bonus cap and the bands' order."""
        codec.check_types(self)
        codec.check_rules(self, [
            ("bonus_cap", 0 <= self.bonus_cap < math.inf, "must be >= 0 and finite"),
            ("bands", bool(self.bands) and self.bands[-1].min == 0, "must end with a band at 0"),
        ])  # fmt: skip
        for name, ids in (
            ("category", [c.id for c in self.categories]),
            ("check", [k.id for c in self.categories for k in c.checks]),
        ):
            doubled = sorted({i for i in ids if ids.count(i) > 1})
            if doubled:
                raise ValueError(f"Rubric: {name} id {doubled[0]!r} appears twice; rename one")
        if not math.isclose(self.base_points, 100):
            raise ValueError(f"Rubric: the base categories add up to {self.base_points:g}, not 100")
        mins = [b.min for b in self.bands]
        if any(high <= low for high, low in itertools.pairwise(mins)):
            raise ValueError(f"Rubric.bands must go from the highest min down (got {mins})")

    @property
    def base_points(self) -> float:
        """Sum of the base (non-bonus) categories' points."""
        return sum(c.points for c in self.categories if not c.bonus)

    @property
    def max_total(self) -> float:
        """The highest total: base points + ``bonus_cap``."""
        return self.base_points + self.bonus_cap

    def category(self, category_id: str) -> Category:
        """Return the category with this id (KeyError names the known ones)."""
        for category in self.categories:
            if category.id == category_id:
                return category
        raise KeyError(f"no category {category_id!r}; known: {[c.id for c in self.categories]}")


def default_rubric_path() -> Path:
    """Return the path of the shipped ``rubric.yaml`` (package data of coursekit.grading)."""
    return Path(str(resources.files("coursekit.grading") / "rubric.yaml"))


def load_rubric(path: str | os.PathLike[str] | None = None) -> Rubric:
    """Read and validate a rubric file (the shipped ``rubric.yaml`` when None).

    Raises:
        CoursekitError: one line, ``file:line: what is wrong; the fix``, for YAML that does
            not parse, an unknown key, a wrong type or a broken rule (points that do not add
            up, a doubled id...), at the deepest item that fails.

    Example:
        >>> load_rubric().max_total
        110.0
    """
    path = Path(path) if path is not None else default_rubric_path()
    try:
        return codec.from_yaml(Rubric, path)
    except CoursekitError as error:
        raise CoursekitError(_located(path) or str(error)) from None


def _located(path: Path) -> str | None:
    """Return ``file:line: message`` for the deepest list item that fails to build, or None."""
    try:
        text = path.read_text(encoding="utf-8")
        node, data = yaml.compose(text), yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None  # codec's message already names the file (and the line)
    found = _deepest(Rubric, data, node, "Rubric")
    if found is None:
        return None
    line, where, message = found
    return f"{path}:{line}: {where}: {message}; fix the rubric"


def _deepest(cls: type, data: Any, node: Any, where: str) -> tuple[int, str, str] | None:
    """Walk ``cls``'s fields that list configs; return (line, where, message) of the deepest."""
    if not isinstance(data, Mapping) or not isinstance(node, yaml.MappingNode):
        return None
    hints = typing.get_type_hints(cls)
    keys = {key.value: (key, value) for key, value in node.value}
    for field in dataclasses.fields(cls):
        item_cls = typing.get_args(hints[field.name])[:1]
        entries = data.get(field.name)
        nested = bool(item_cls) and dataclasses.is_dataclass(item_cls[0])
        if not nested or not isinstance(entries, list):
            continue
        items = keys[field.name][1].value if field.name in keys else []
        for index, (entry, item) in enumerate(zip(entries, items, strict=False)):
            here = f"{where}.{field.name}[{index}]"
            deeper = _deepest(item_cls[0], entry, item, here)
            if deeper is not None:
                return deeper
            try:
                codec.from_dict(item_cls[0], entry, where=f"{here}.")
            except (ValueError, TypeError) as error:
                return _key_line(item, str(error)), here, " ".join(str(error).split())
    return None


def _key_line(node: Any, message: str) -> int:
    """The line of the key of ``node`` that ``message`` names, else of ``node`` itself."""
    for key, _ in getattr(node, "value", []):
        if re.search(rf"\.{re.escape(str(key.value))}\b", message):
            return key.start_mark.line + 1
    return node.start_mark.line + 1


def category_score(category: Category, earned: Mapping[str, float]) -> float:
    """Return a category's points: the sum of its checks' earned points (missing: 0).

    Raises:
        ValueError: an unknown check id, or a check's points outside [0, its points].

    Example:
        >>> c = load_rubric().category("baseline")
        >>> category_score(c, {"baseline-executed": 3, "baseline-evidence": 5})
        8.0
    """
    return _sum_within({k.id: k.points for k in category.checks}, earned, f"{category.id} check")


def _sum_within(full: Mapping[str, float], earned: Mapping[str, float], what: str) -> float:
    for key, value in earned.items():
        if key not in full:
            raise ValueError(f"unknown {what} {key!r}; known: {list(full)}")
        if not 0 <= value <= full[key]:
            raise ValueError(f"{what} {key!r} scored {value!r}, outside [0, {full[key]:g}]")
    return float(sum(earned.values()))


def total(scores: Mapping[str, float], rubric: Rubric) -> float:
    """Return Σ base categories + min(Σ bonus categories, ``bonus_cap``).

    Args:
        scores: points per category id (a missing category scores 0).
        rubric: the rubric.

    Raises:
        ValueError: an unknown category, or a score outside [0, the category's points]
            (a bonus category: below 0).

    Example:
        >>> total({"baseline": 10, "bonus": 16}, load_rubric())
        20.0
    """
    full = {c.id: math.inf if c.bonus else c.points for c in rubric.categories}
    _sum_within(full, scores, "category")
    bonus_ids = {c.id for c in rubric.categories if c.bonus}
    base = sum(v for k, v in scores.items() if k not in bonus_ids)
    bonus = sum(v for k, v in scores.items() if k in bonus_ids)
    return float(base + min(bonus, rubric.bonus_cap))


def band(points: float, rubric: Rubric) -> str:
    """Return the letter of the first band whose ``min`` is at most ``points``.

    Raises:
        ValueError: ``points`` outside [0, ``rubric.max_total``].

    Example:
        >>> rubric = load_rubric()
        >>> band(90, rubric), band(89.5, rubric), band(0, rubric)
        ('A', 'B', 'F')
    """
    if not 0 <= points <= rubric.max_total:
        raise ValueError(f"a total must be in [0, {rubric.max_total:g}] (got {points!r})")
    return next(b.letter for b in rubric.bands if points >= b.min)


@dataclass(frozen=True, kw_only=True)
class LatePenalty:
    """What lateness costs: started days late, points subtracted, or a zero."""

    days: int
    """Started days after the deadline (0 when on time)."""
    points: float
    """Points subtracted (``points_per_day · days`` while ``days ≤ max_days``)."""
    zero: bool
    """True when ``days > max_days``: the total is 0."""

    def apply(self, points: float) -> float:
        """Return the total after the penalty: 0 when ``zero``, else max(0, points − penalty).

        Example:
            >>> LatePenalty(days=2, points=20, zero=False).apply(15)
            0.0
        """
        return 0.0 if self.zero else max(0.0, float(points) - self.points)


def late_penalty(submitted: datetime, deadline: datetime, rubric: Rubric) -> LatePenalty:
    """Return the penalty of a submission at ``submitted`` for ``deadline`` (started days).

    Both datetimes must carry a time zone (a naive one is ambiguous across machines).

    Raises:
        ValueError: a naive datetime.

    Example:
        >>> from datetime import timezone
        >>> deadline = datetime(2026, 12, 1, 17, tzinfo=timezone.utc)
        >>> late_penalty(deadline + timedelta(hours=25), deadline, load_rubric())
        LatePenalty(days=2, points=20.0, zero=False)
    """
    for name, moment in (("submitted", submitted), ("deadline", deadline)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"late_penalty: {name} {moment.isoformat()} has no time zone; add one")
    days = max(0, math.ceil((submitted - deadline) / DAY))
    policy = rubric.late
    zero = days > policy.max_days
    return LatePenalty(days=days, points=policy.points_per_day * min(days, policy.max_days),
                       zero=zero)  # fmt: skip
