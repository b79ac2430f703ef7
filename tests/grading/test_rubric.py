"""The rubric as data: the shipped file, located errors, and the grade arithmetic's laws."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from coursekit.errors import CoursekitError
from coursekit.grading.rubric import (
    LatePenalty,
    band,
    category_score,
    default_rubric_path,
    late_penalty,
    load_rubric,
    total,
)

RUBRIC = load_rubric()
DEADLINE = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
BASE = ["baseline", "code-quality", "test-coverage", "enhancement-quality", "documentation"]


def test_the_shipped_rubric_is_the_course_rubric() -> None:
    points = {c.name: (c.points, c.bonus) for c in RUBRIC.categories}
    assert points == {
        "Baseline run": (10, False), "Code quality": (25, False), "Test coverage": (25, False),
        "Enhancement quality": (25, False), "Documentation": (15, False), "Bonus": (10, True),
    }  # fmt: skip
    assert [(b.letter, b.min) for b in RUBRIC.bands] == [
        ("A", 90), ("B", 80), ("C", 70), ("D", 60), ("F", 0),
    ]  # fmt: skip
    assert (RUBRIC.late.points_per_day, RUBRIC.late.max_days, RUBRIC.bonus_cap) == (10, 3, 10)
    assert RUBRIC.max_total == 110
    kinds = {k.kind for c in RUBRIC.categories for k in c.checks}
    assert kinds == {"auto", "manual"}
    ids = [k.id for c in RUBRIC.categories for k in c.checks]
    assert {"baseline-evidence", "ruff-check", "ruff-format", "coverage", "hidden-checks"} <= set(
        ids
    )


def write_rubric(tmp_path, edit) -> str:
    data = yaml.safe_load(default_rubric_path().read_text())
    edit(data)
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def line_of(path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_bad_yaml_is_a_file_line_error(tmp_path) -> None:
    path = tmp_path / "rubric.yaml"
    path.write_text("name: x\ncategories: [\n  {id: a\n")
    with pytest.raises(CoursekitError, match=rf"^{path}:\d+: cannot read the config \(YAML"):
        load_rubric(path)


def test_a_bad_check_is_named_with_its_line(tmp_path) -> None:
    def edit(data) -> None:
        data["categories"][1]["checks"][2]["points"] = -7

    path = write_rubric(tmp_path, edit)
    with pytest.raises(CoursekitError) as error:
        load_rubric(path)
    message = str(error.value)
    line = line_of(path, "points: -7")
    assert message.startswith(f"{path}:{line}: Rubric.categories[1].checks[2]: Check.points must")
    assert message.endswith("fix the rubric") and "\n" not in message


def test_points_that_do_not_add_up_and_an_unknown_key_are_located(tmp_path) -> None:
    def more(data) -> None:
        data["categories"][4]["points"] = 16

    path = write_rubric(tmp_path, more)
    with pytest.raises(CoursekitError, match=r"Category 'documentation': its checks' points add"):
        load_rubric(path)

    def typo(data) -> None:
        data["categories"][0]["checks"][0]["pionts"] = 3

    path = write_rubric(tmp_path, typo)
    with pytest.raises(CoursekitError, match=rf":{line_of(path, '- id: baseline-executed')}: "):
        load_rubric(path)


def test_rubric_wide_rules(tmp_path) -> None:
    def doubled(data) -> None:
        data["categories"][1]["checks"][1]["id"] = "ruff-check"

    with pytest.raises(CoursekitError, match="check id 'ruff-check' appears twice"):
        load_rubric(write_rubric(tmp_path, doubled))

    def unordered(data) -> None:
        data["bands"][0]["min"] = 75

    with pytest.raises(CoursekitError, match="bands must go from the highest min down"):
        load_rubric(write_rubric(tmp_path, unordered))


def test_total_caps_the_bonus_and_refuses_unknown_or_excess_scores() -> None:
    full = {c: RUBRIC.category(c).points for c in BASE}
    assert total(full, RUBRIC) == 100
    assert total({**full, "bonus": 25}, RUBRIC) == 110
    with pytest.raises(ValueError, match="unknown category 'style'"):
        total({"style": 1}, RUBRIC)
    with pytest.raises(ValueError, match=r"category 'baseline' scored 11, outside \[0, 10\]"):
        total({"baseline": 11}, RUBRIC)
    with pytest.raises(ValueError, match="unknown baseline check 'ruff-check'"):
        category_score(RUBRIC.category("baseline"), {"ruff-check": 1})


def test_late_penalty_by_started_day() -> None:
    at = lambda hours: late_penalty(DEADLINE + timedelta(hours=hours), DEADLINE, RUBRIC)  # noqa: E731
    assert at(-5) == LatePenalty(days=0, points=0, zero=False)
    assert at(0) == LatePenalty(days=0, points=0, zero=False)
    assert at(0.01) == LatePenalty(days=1, points=10, zero=False)
    assert at(48) == LatePenalty(days=2, points=20, zero=False)
    assert at(72) == LatePenalty(days=3, points=30, zero=False)
    assert at(72.01).zero and at(72.01).apply(110) == 0
    with pytest.raises(ValueError, match="has no time zone"):
        late_penalty(datetime(2026, 12, 2), DEADLINE, RUBRIC)


scores = st.fixed_dictionaries(
    {c: st.floats(0, RUBRIC.category(c).points) for c in BASE},
    optional={"bonus": st.floats(0, 30)},
)
lateness = st.floats(-1e6, 1e7, allow_nan=False)


@given(scores)
def test_total_is_within_range_and_the_bonus_never_counts_more_than_the_cap(points) -> None:
    value = total(points, RUBRIC)
    base = sum(v for k, v in points.items() if k != "bonus")
    assert 0 <= value <= 110
    assert value == pytest.approx(base + min(points.get("bonus", 0), 10))


@given(st.floats(0, 110))
def test_bands_partition_zero_to_one_hundred_ten(points) -> None:
    containing = [
        b.letter for b, upper in zip(RUBRIC.bands, [110.0, 90, 80, 70, 60], strict=True)
        if b.min <= points and (points < upper or upper == 110.0)
    ]  # fmt: skip
    assert containing == [band(points, RUBRIC)]


@given(st.floats(0, 110), st.floats(0, 110))
def test_bands_are_monotone(a, b) -> None:
    low, high = sorted((a, b))
    assert band(high, RUBRIC) <= band(low, RUBRIC)  # 'A' < 'B' < ... < 'F'


def test_band_refuses_totals_out_of_range() -> None:
    for bad in (-0.5, 110.5, float("nan")):
        with pytest.raises(ValueError, match=r"a total must be in \[0, 110\]"):
            band(bad, RUBRIC)


@given(lateness, lateness, st.floats(0, 110))
def test_late_penalty_is_monotone_never_negative_and_zero_after_three_days(s1, s2, points) -> None:
    early, late = sorted((s1, s2))
    first, second = (late_penalty(DEADLINE + timedelta(seconds=s), DEADLINE, RUBRIC)
                     for s in (early, late))  # fmt: skip
    assert first.days <= second.days and first.points <= second.points
    assert second.apply(points) <= first.apply(points)
    assert 0 <= second.apply(points) <= points
    if late > 3 * 86400:
        assert second.zero and second.apply(points) == 0
    if late <= 0:
        assert second.apply(points) == points
