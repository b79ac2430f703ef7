"""The fixture class (tests/fixtures/class/make_class.py) graded once: every learner's table.

The class is built and graded once per session, by a process tests/conftest.py starts at
the beginning of the session (``grade_in_background.py``: ``grade_class(..., workers=1)``), each
learner's checks then asserted exactly against ``EXPECTED``, each entry derived from the
rubric in its comment.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

from coursekit.evaluate import jail
from coursekit.exercises import solutions
from coursekit.grading.batch import RESULT, read_rows
from tests.conftest import FIXTURE_CLASS_KEY

NEEDS_BWRAP = jail.available("bubblewrap")
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "class"
INSTRUCTOR = FIXTURE.parents[2] / "notebooks" / "instructor" / "grade_class.ipynb"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make = _load(FIXTURE / "make_class.py", "make_class")

# The rubric (coursekit/grading/rubric.yaml): baseline 10 = executed 3 + evidence 5 +
# observations 2 (manual); code quality 25 = ruff-check 6 + ruff-format 4 + docstrings 7 +
# notebooks-executed 4 + idiomatic 4 (manual); test coverage 25 = tests-pass 6 + coverage 8 +
# unit tests 4 + property 3 + falsification 4; enhancement quality 25 = hidden-checks 12 +
# benchmark 6 + meaningful 7 (manual); documentation 15 = enhancement-md 5 + usage-example 3
# + clarity 4 (manual) + justification 3 (manual); bonus 10 = bonus-checks 6 +
# bonus-documented 4 (manual), capped at +10.
# None = pending (manual). With every manual item pending, a complete submission earns
# 3 + 5 + (6 + 4 + 7 + 4) + (6 + 8 + 4 + 3 + 4) + (12 + 6) + (5 + 3) = 80, a B; the bonus
# (no tier I-L chosen) earns 0.
MANUAL = {
    "baseline-observations", "idiomatic", "meaningful", "clarity", "justification",
    "bonus-documented",
}  # fmt: skip
ALL_AUTO = {
    "baseline-executed": 3.0, "baseline-evidence": 5.0,
    "ruff-check": 6.0, "ruff-format": 4.0, "docstrings": 7.0, "notebooks-executed": 4.0,
    "tests-pass": 6.0, "coverage": 8.0, "unit-tests-per-enhancement": 4.0,
    "property-test": 3.0, "falsification-test": 4.0, "hidden-checks": 12.0, "benchmark": 6.0,
    "enhancement-md": 5.0, "usage-example": 3.0, "bonus-checks": 0.0,
}  # fmt: skip

EXPECTED = {
    # everything right: every automatic check full, 80, B.
    "complete": {**ALL_AUTO, "total": 80.0, "late_days": 0, "final": 80.0, "letter": "B"},
    # no phase4_validation.ipynb: notebooks-executed = 4 x 3/4 = 3 (a missing phase counts as
    # a notebook that did not run); no before/after pair: benchmark 0. 80 - 1 - 6 = 73, C.
    "no-phase4": {
        **ALL_AUTO,
        "notebooks-executed": 3.0,
        "benchmark": 0.0,
        "total": 73.0,
        "late_days": 0,
        "final": 73.0,
        "letter": "C",
    },
    # its weak tests pass, but 3 of E's 7 hidden checks fail (bias untouched, parity on random
    # shapes, gradient w.r.t. m): hidden-checks = 6 (C: 5 of 5) + 6 x 4/7 = 9.43; 77.43, C.
    "failing-enhancement": {
        **ALL_AUTO,
        "hidden-checks": 9.43,
        "total": 77.43,
        "late_days": 0,
        "final": 77.43,
        "letter": "C",
    },
    # 51.2 % covered (21 of 41 statements and branches): coverage = 8 x 51.2 / 95 = 4.31;
    # 80 - 8 + 4.31 = 76.31, C.
    "low-coverage": {
        **ALL_AUTO,
        "coverage": 4.31,
        "total": 76.31,
        "late_days": 0,
        "final": 76.31,
        "letter": "C",
    },
    # complete, 30 h late = 2 started days = 20 points: 80 - 20 = 60, D.
    "late": {**ALL_AUTO, "total": 80.0, "late_days": 2, "final": 60.0, "letter": "D"},
    # the edited loss fails the baseline evidence: 80 - 5 = 75, C (its benchmark pair is
    # complete's, unedited, so it verifies).
    "forged": {
        **ALL_AUTO,
        "baseline-evidence": 0.0,
        "total": 75.0,
        "late_days": 0,
        "final": 75.0,
        "letter": "C",
    },
}


@pytest.fixture(scope="session")
def background(request) -> Path:
    """The folder the background grading writes (tests/conftest.py started it), once done."""
    if NEEDS_BWRAP:
        pytest.skip(f"needs bubblewrap ({NEEDS_BWRAP})")
    started = request.config.stash.get(FIXTURE_CLASS_KEY, None)
    if started is None:  # run alone (e.g. -k): grade here, in the foreground
        out = request.config._tmp_path_factory.mktemp("fixture-class")
        started = (out, subprocess.Popen([sys.executable, str(FIXTURE / "grade_in_background.py"),
                                          str(out)]))  # fmt: skip
        request.config.stash[FIXTURE_CLASS_KEY] = started
    out, process = started
    process.wait(timeout=1800)
    done = json.loads((out / "done.json").read_text())
    assert done["ok"], done.get("error")
    return out


@pytest.fixture(scope="session")
def fixture_class(background) -> Path:
    """The six submissions, generated once (by the background process)."""
    return background / "class"


@pytest.fixture(scope="session")
def graded(background) -> tuple[Path, dict[str, dict]]:
    """(the grades folder, {learner: row}) of the class graded once."""
    out = background / "grades"
    return out, {row["name"]: row for row in read_rows(out)}


@pytest.mark.slow  # the class's 13 nano runs: ~25 s, once per session
def test_the_generator_writes_six_distinct_real_submissions(fixture_class):
    assert sorted(p.name for p in fixture_class.iterdir()) == sorted(make.LEARNERS)
    for name in make.LEARNERS:
        manifests = sorted((fixture_class / name / "runs").glob("**/manifest.json"))
        assert len(manifests) == (1 if name == "no-phase4" else 3), name
    notebooks = sorted(p.name for p in (fixture_class / "no-phase4" / "notebooks").iterdir())
    assert notebooks == ["phase1_baseline.ipynb", "phase2_analysis.ipynb", "phase3_core.ipynb"]
    reports = {n: (fixture_class / n / "ENHANCEMENT.md").read_text() for n in make.LEARNERS}
    assert len(set(reports.values())) == len(reports)


def _adapters(root: Path) -> set[str]:
    return {
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (root / "runs").glob("**/adapter_model.safetensors")
    }


@pytest.mark.slow  # the class's 13 nano runs: ~25 s, once per session
def test_only_forged_shares_adapters_and_it_shares_completes(fixture_class):
    found = {name: _adapters(fixture_class / name) for name in make.LEARNERS}
    assert found["forged"] == found["complete"] and len(found["complete"]) == 3
    others = [found[n] for n in make.LEARNERS if n not in ("forged", "complete")]
    everyone = [found["complete"], *others]
    assert sum(len(s) for s in everyone) == len(set().union(*everyone))  # pairwise disjoint


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = text.lower().split()
    return {tuple(words[i : i + 5]) for i in range(len(words) - 4)}


@pytest.mark.slow  # the class's 13 nano runs: ~25 s, once per session
def test_enhancement_reports_are_not_near_duplicates(fixture_class):
    shingles = {
        n: _shingles((fixture_class / n / "ENHANCEMENT.md").read_text()) for n in make.LEARNERS
    }
    names = list(make.LEARNERS)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            jaccard = len(shingles[a] & shingles[b]) / len(shingles[a] | shingles[b])
            assert jaccard < 0.1, (a, b, jaccard)


@pytest.mark.slow  # the class's 13 nano runs: ~25 s, once per session
def test_failing_enhancement_scales_the_bias_and_the_others_do_not(fixture_class):
    torch.manual_seed(0)
    x, W0, b = torch.randn(3, 4), torch.randn(5, 4), torch.randn(5)
    A, B, m = torch.randn(2, 4), torch.randn(5, 2), torch.rand(5) + 0.5
    reference = solutions.dora_forward(x, W0, b, A, B, m, 2.0)
    for name in make.LEARNERS:
        module = _load(fixture_class / name / "enhancements" / "e_dora.py", f"e_dora_{name}")
        same = torch.allclose(module.dora_forward(x, W0, b, A, B, m, 2.0), reference, atol=1e-6)
        assert same == (name != "failing-enhancement"), name
        # ...while without a bias every learner's forward is the reference's (weak tests pass)
        assert torch.allclose(
            module.dora_forward(x, W0, None, A, B, m, 2.0),
            solutions.dora_forward(x, W0, None, A, B, m, 2.0),
            atol=1e-6,
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", make.LEARNERS)
def test_each_learners_row_is_the_expected_one(graded, name):
    row = graded[1][name]
    assert row["reason"] == ""
    expected = EXPECTED[name]
    got = {c["id"]: c["points"] for c in row["checks"]}
    assert {k: v for k, v in got.items() if v is not None} == {
        k: v for k, v in expected.items() if k in got
    }
    assert set(row["pending"]) == MANUAL
    summary = {k: row[k] for k in ("total", "late_days", "final", "letter")}
    assert summary == {k: expected[k] for k in summary}
    assert row["late_points"] == 10.0 * row["late_days"]


@pytest.mark.slow
def test_the_forged_loss_is_named_by_line_and_step(graded):
    checks = {c["id"]: c for c in graded[1]["forged"]["checks"]}
    message = checks["baseline-evidence"]["message"]
    assert f"line {make.FORGED_STEP + 1} (step {make.FORGED_STEP}) was edited" in message
    assert "not re-run: the run's files differ from manifest.json" in message


@pytest.mark.slow
def test_every_notebook_ran_and_results_are_on_disk(graded):
    out, rows = graded
    for name, row in rows.items():
        statuses = {nb["name"]: nb["status"] for nb in row["notebooks"]}
        assert set(statuses.values()) == {"executed"}, name
        assert len(statuses) == (3 if name == "no-phase4" else 4)
        assert json.loads((out / name / RESULT).read_text())["final"] == row["final"]
    assert (out / "grades.csv").read_text().count("\n") == 1 + len(make.LEARNERS)


@pytest.mark.slow
def test_the_same_adapter_flag_pairs_complete_and_forged(graded):
    rows = graded[1]
    flagged = {name for name, row in rows.items() if row["flags"]}
    assert flagged == {"complete", "forged"}
    assert any("forged" in flag for flag in rows["complete"]["flags"])


@pytest.mark.slow
def test_the_instructor_notebook_shows_the_graded_class(graded, fixture_class, tmp_path):
    """It runs on the graded class and resumes: no submission is graded again.

    Needs coursekit.grading.report (pass_rates, distribution_figure, feedback_html): until
    that module is merged this test fails in the notebook's import cell.
    """
    import papermill

    out, rows = graded
    stamps = {name: (out / name / RESULT).stat().st_mtime_ns for name in rows}
    executed = tmp_path / "grade_class.ipynb"
    papermill.execute_notebook(
        str(INSTRUCTOR),
        str(executed),
        parameters={
            "submissions": str(fixture_class),
            "grades": str(out),
            "workers": 2,
            "deadline": make.DEADLINE.isoformat(),
            "learner": "forged",
        },
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
    )
    assert {name: (out / name / RESULT).stat().st_mtime_ns for name in rows} == stamps
    outputs = [
        output
        for cell in nbformat.read(executed, as_version=4).cells
        for output in cell.get("outputs", [])
    ]
    shown = "\n".join(str(output.get("data", {})) for output in outputs)
    assert all(name in shown for name in make.LEARNERS)  # the grades table
    assert any("image/png" in output.get("data", {}) for output in outputs)  # the distribution
    assert "baseline-evidence" in shown  # a pass rate, and forged's feedback
