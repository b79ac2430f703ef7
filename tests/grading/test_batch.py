"""coursekit.grading.batch and score: a small class graded in parallel, resumed, regraded."""

from __future__ import annotations

import csv
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit.errors import CoursekitError
from coursekit.evaluate import jail
from coursekit.grading import score
from coursekit.grading.batch import RESULT, feedback, grade_class, load_manual
from coursekit.grading.runner import RunLimits
from coursekit.grading.score import GATES, gate_points, submitted_at
from coursekit.workspace.layout import new_workspace
from tests.workspace import complete
from tests.workspace.conftest import notebook, write

NEEDS_BWRAP = jail.available("bubblewrap")
DEADLINE = datetime(2026, 12, 1, 17, tzinfo=UTC)
LIMITS = RunLimits(cell_seconds=20, submission_seconds=180)


def _touch_all(root: Path, moment: datetime) -> None:
    for path in root.rglob("*"):
        os.utime(path, (moment.timestamp(), moment.timestamp()), follow_symlinks=False)


@pytest.fixture
def klass(tmp_path) -> Path:
    """ada: complete, 2 days late; bob: no workspace.yaml and a notebook that calls sys.exit."""
    solutions = tmp_path / "solutions"
    for name in ("phase1_baseline", "phase2_analysis", "phase3_core", "phase4_validation"):
        write(solutions / f"{name}.ipynb", notebook("x = 1", "print(x)"))
    ada = new_workspace(
        tmp_path / "class" / "ada", name="ada", tiers=("A", "E"), notebooks=solutions
    )
    complete.fill(ada)
    _touch_all(ada, DEADLINE + timedelta(hours=30))
    bob = tmp_path / "class" / "bob"
    write(
        bob / "notebooks" / "phase1_baseline.ipynb",
        notebook("a = 1", "import sys; sys.exit(0)", "b = 2"),
    )
    return tmp_path / "class"


def test_submitted_at_is_the_newest_mtime(tmp_path):
    (tmp_path / "a").write_text("x")
    moment = datetime(2026, 1, 2, 3, tzinfo=UTC)
    os.utime(tmp_path / "a", (moment.timestamp(), moment.timestamp()))
    assert submitted_at(tmp_path) == moment
    assert submitted_at(tmp_path / "empty") is None
    for cache in ("__pycache__/x.pyc", ".pytest_cache/v/y", ".coverage", "tests/.hypothesis/z"):
        (tmp_path / cache).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / cache).write_text("written by running the tests")  # now: not handed in
    assert submitted_at(tmp_path) == moment


def test_manual_yaml_must_map_learners_to_scores(tmp_path):
    (tmp_path / "manual.yaml").write_text("ada: 3\n")
    with pytest.raises(CoursekitError, match=r"manual\.yaml: must map each learner"):
        load_manual(tmp_path)


def test_feedback_shows_a_failure_reason_and_no_hidden_source():
    text = feedback({"name": "eve", "reason": "workspace check gave no report", "checks": []})
    assert "Grading failed: workspace check gave no report" in text


def test_grade_class_refuses_a_missing_folder_and_an_unknown_learner(tmp_path):
    with pytest.raises(CoursekitError, match="not a folder of submissions"):
        grade_class(tmp_path / "none", tmp_path / "out")
    (tmp_path / "class" / "ada").mkdir(parents=True)
    with pytest.raises(CoursekitError, match="--only zed: no such submission"):
        grade_class(tmp_path / "class", tmp_path / "out", only="zed")


def _scored_without_sandbox(submission, work, *, rubric, manual, deadline, limits, hidden_dir):
    """grade_submission's row with no automatic check run: only manual items and lateness."""
    return score._row(submission.name, rubric, {}, {}, manual, deadline, submission, [])


def test_resume_regrade_and_manual_scores_that_survive_it(tmp_path, monkeypatch):
    import coursekit.grading.batch as batch

    for name in ("ada", "bob"):
        (tmp_path / "class" / name).mkdir(parents=True)
        (tmp_path / "class" / name / "x").write_text("work")
    monkeypatch.setattr(batch, "grade_submission", _scored_without_sandbox)
    out = tmp_path / "grades"
    first = {r["name"]: r for r in grade_class(tmp_path / "class", out, workers=2)}
    assert first["ada"]["reason"] == "" and "clarity" in first["ada"]["pending"]
    stamp = (out / "ada" / RESULT).stat().st_mtime_ns
    grade_class(tmp_path / "class", out, workers=2)  # resumed: nothing to do
    assert (out / "ada" / RESULT).stat().st_mtime_ns == stamp
    (out / "manual.yaml").write_text("ada: {clarity: 3, justification: 2}\n")
    grade_class(tmp_path / "class", out)  # still resumed: a manual score needs --regrade
    assert (out / "ada" / RESULT).stat().st_mtime_ns == stamp
    [again] = grade_class(tmp_path / "class", out, only="ada", regrade=True)
    checks = {c["id"]: c["points"] for c in again["checks"]}
    assert (checks["clarity"], checks["justification"]) == (3.0, 2.0)
    assert again["total"] == first["ada"]["total"] + 5.0 and "clarity" not in again["pending"]
    assert json.loads((out / "bob" / RESULT).read_text())["total"] == first["bob"]["total"]
    assert (out / "manual.yaml").read_text() == "ada: {clarity: 3, justification: 2}\n"
    (out / "manual.yaml").write_text("ada: {clarity: 9}\n")  # over the check's 4 points
    [bad] = grade_class(tmp_path / "class", out, only="ada", regrade=True)
    assert "clarity" in bad["reason"], bad["reason"]


@pytest.mark.heavy  # the sandboxed twin of the test above and of test_fixture_class.py
@pytest.mark.skipif(bool(NEEDS_BWRAP), reason=f"needs bubblewrap ({NEEDS_BWRAP})")
def test_a_class_graded_resumed_and_regraded(klass, tmp_path):
    out = tmp_path / "grades"
    rows = {
        r["name"]: r for r in grade_class(klass, out, workers=2, deadline=DEADLINE, limits=LIMITS)
    }
    ada, bob = rows["ada"], rows["bob"]
    assert ada["reason"] == "" and (ada["late_days"], ada["late_points"]) == (2, 20.0)
    auto = {c["id"]: c["points"] for c in ada["checks"]}
    assert (
        auto["notebooks-executed"] == 4.0 and auto["ruff-check"] == 6.0 and auto["coverage"] == 8.0
    )
    assert auto["baseline-evidence"] == 0.0 and auto["clarity"] is None  # no run; manual pending
    assert auto["benchmark"] == 0.0 and ada["evidence"]["benchmark"]["ok"] is None
    assert auto["usage-example"] == 1.5  # a python block names a_rank_ablation, none e_dora
    assert ada["final"] == ada["total"] - 20.0
    assert "workspace.yaml: not found" in bob["reason"]  # a row, not a failed batch
    assert [n["status"] for n in bob["notebooks"]] == ["stopped"]  # still says what ran
    table = {row["name"]: row for row in csv.DictReader((out / "grades.csv").open())}
    assert set(table) == {"ada", "bob"} and table["bob"]["reason"] == bob["reason"]
    assert "| notebooks-executed | 4 / 4 |" in (out / "ada" / "feedback.md").read_text()
    stamp = (out / "ada" / RESULT).stat().st_mtime_ns
    grade_class(klass, out, workers=2, deadline=DEADLINE, limits=LIMITS)  # resumed: nothing to do
    assert (out / "ada" / RESULT).stat().st_mtime_ns == stamp
    (out / "manual.yaml").write_text("ada: {clarity: 3, justification: 2}\n")
    again = grade_class(klass, out, only="ada", regrade=True, deadline=DEADLINE, limits=LIMITS)
    checks = {c["id"]: c["points"] for c in again[0]["checks"]}
    assert (checks["clarity"], checks["justification"]) == (3.0, 2.0)
    assert again[0]["total"] == ada["total"] + 5.0
    assert json.loads((out / "ada" / RESULT).read_text())["total"] == again[0]["total"]
    assert (out / "manual.yaml").read_text() == "ada: {clarity: 3, justification: 2}\n"


def test_cli_refuses_a_deadline_without_time_zone(tmp_path, capsys):
    from coursekit.cli import main

    (tmp_path / "class").mkdir()
    code = main(
        ["grade", str(tmp_path / "class"), "--out", str(tmp_path / "o"), "--deadline", "2026-12-01"]
    )
    assert code == 2 and "has no time zone" in capsys.readouterr().err


@given(
    check=st.sampled_from(sorted(GATES.values())),
    passed=st.booleans(),
    numbers=st.fixed_dictionaries(
        {},
        optional={
            "problems": st.integers(0, 50),
            "public": st.integers(0, 20),
            "undocumented": st.integers(0, 20),
            "passed": st.integers(0, 20),
            "failed": st.integers(0, 20),
            "percent": st.floats(0, 100),
            "per_tier": st.dictionaries(st.sampled_from("AE"), st.integers(0, 9)),
            "words": st.integers(0, 2000),
            "section_problems": st.integers(0, 9),
        },
    ),
)
def test_gate_points_stay_within_the_check_and_a_pass_earns_all(check, passed, numbers):
    numbers.setdefault("undocumented", 0)
    numbers["undocumented"] = min(numbers["undocumented"], numbers.get("public", 0))
    got = gate_points(check, {"passed": passed, "numbers": numbers}, 6.0)
    assert 0.0 <= got <= 6.0
    assert got == 6.0 or not passed


def test_gate_points_follow_the_partial_rules():
    def points(check, **numbers):
        return gate_points(check, {"passed": False, "numbers": numbers}, 8.0)

    assert points("docstrings", public=4, undocumented=1) == 6.0
    assert points("tests-pass", passed=3, failed=1) == 6.0
    assert points("tests-pass", passed=3, failed=0, collect_errors=1) == 0.0
    assert points("unit-tests-per-enhancement", per_tier={"A": 5, "E": 4}) == 4.0
    assert points("enhancement-md", words=400, section_problems=1) == 5.0
    assert points("ruff-format", files_to_reformat=1) == 0.0


def _die(submission, *args):
    os._exit(3)  # a worker killed mid-grading (out of memory, a signal)


def test_a_dead_worker_becomes_a_row_not_a_failed_batch(tmp_path, monkeypatch):
    import coursekit.grading.batch as batch

    for name in ("ada", "bob"):
        (tmp_path / "class" / name).mkdir(parents=True)
    monkeypatch.setattr(batch, "_grade_one", _die)
    rows = grade_class(tmp_path / "class", tmp_path / "out", workers=2)
    assert [r["name"] for r in rows] == ["ada", "bob"]
    assert all("process for this submission died" in r["reason"] for r in rows)
    table = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert [r["name"] for r in table] == ["ada", "bob"]
