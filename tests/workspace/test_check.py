"""End to end: new → fill in → check passes; then each test-run gate failing on its own."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from coursekit.cli import main
from coursekit.workspace.check import check_workspace
from coursekit.workspace.layout import new_workspace
from coursekit.workspace.testrun import pytest_gate, run_tests
from tests.workspace import complete
from tests.workspace.conftest import notebook, write

pytestmark = pytest.mark.slow  # each check runs ruff and the learner's pytest in children

GATES = [
    "ruff check",
    "ruff format",
    "pytest",
    "coverage",
    "docstrings",
    "tests per tier",
    "property tests",
    "falsification tests",
    "ENHANCEMENT.md",
]


@pytest.fixture(scope="module")
def passing(tmp_path_factory) -> tuple[int, dict]:
    """``coursekit workspace check --json`` on a completed workspace: (exit status, JSON)."""
    root = tmp_path_factory.mktemp("check")
    write(root / "src" / "phase1_x.ipynb", notebook("x = 1"))
    workspace = new_workspace(root / "ws", name="ada", notebooks=root / "src")
    complete.fill(workspace)
    buffer = io.StringIO()  # capsys is function-scoped
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(buffer):
        patch.setenv("PYTEST_ADDOPTS", "--collect-only")  # the check must not inherit it
        status = main(["workspace", "check", str(workspace), "--json"])
    return status, json.loads(buffer.getvalue())


def test_the_completed_workspace_passes_every_gate(passing):
    status, report = passing
    assert status == 0 and report["passed"] is True
    assert [gate["name"] for gate in report["gates"]] == GATES
    assert all(gate["passed"] for gate in report["gates"]), report["gates"]
    numbers = {gate["name"]: gate["numbers"] for gate in report["gates"]}
    assert numbers["tests per tier"] == {"per_tier": {"A": 5, "E": 5}}
    assert numbers["pytest"]["passed"] == 11 and numbers["pytest"]["failed"] == 0
    assert numbers["coverage"]["percent"] == 100.0
    assert numbers["property tests"]["tests"] == [
        "tests/test_e_dora.py::test_norm_scales_with_the_matrix"
    ]
    assert numbers["falsification tests"]["tests"] == [
        "tests/test_a_rank_ablation.py::test_falsify_the_grid_has_at_most_five_ranks"
    ]
    assert report["name"] == "ada" and report["tiers"] == ["A", "E"]


def test_a_fresh_workspace_fails_with_zero_tests_and_says_why(fresh):
    report = check_workspace(fresh)
    gates = {gate.name: gate for gate in report.gates}
    assert not report.passed
    assert gates["ruff check"].passed and gates["ruff format"].passed
    assert gates["tests per tier"].numbers == {"per_tier": {"A": 0, "E": 0}}
    assert gates["pytest"].summary.startswith("0 passed, 0 failed, 2 files skipped")
    assert "(no code in enhancements/ yet)" in gates["coverage"].summary
    text = report.format()
    assert text.splitlines()[-1] == "FAIL  2 of 9 gates passed"
    assert "        Tier E: 0 passing test functions in tests/test_e_*.py (needs 5)" in text


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def _failing_test(root: Path) -> None:
    (root / "tests" / "test_extra.py").write_text("def test_wrong():\n    assert 1 == 2\n")


def _uncovered_code(root: Path) -> None:
    path = root / "enhancements" / "a_rank_ablation.py"
    extra = '\n\ndef halve(rank: int) -> int:\n    """Half the rank."""\n'
    extra += "    if rank % 2:\n        raise ValueError(rank)\n    return rank // 2\n"
    path.write_text(path.read_text() + extra)


def _four_tests_for_e(root: Path) -> None:
    _edit(root / "tests" / "test_e_dora.py", "def test_zero_column():", "def _zero_column():")


def _no_property(root: Path) -> None:
    test = root / "tests" / "test_e_dora.py"
    _edit(
        test,
        "from hypothesis import given, settings\nfrom hypothesis import strategies as st\n",
        "",
    )
    _edit(test, "@settings(deadline=None)\n", "")
    given = "@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=8), st.floats(0, 10))"
    _edit(test, given, '@pytest.mark.parametrize(("column", "factor"), [([1.0, -2.0], 3.0)])')


def _no_falsification(root: Path) -> None:
    test = root / "tests" / "test_a_rank_ablation.py"
    _edit(test, "from coursekit.experiments.falsify import falsify\n", "")
    _edit(test, 'verdict = falsify("the default grid has at most 5 ranks", len(ranks()), 5)\n'
          "    assert verdict.holds", "assert len(ranks()) <= 5")  # fmt: skip


@pytest.mark.parametrize(
    ("gate", "breaks", "summary"),
    [
        ("pytest", _failing_test, "11 passed, 1 failed in"),
        ("coverage", _uncovered_code, "80.8% of enhancements/ (needs 95%)"),
        ("tests per tier", _four_tests_for_e, "A: 5, E: 4 (needs 5 each)"),
        ("property tests", _no_property, "0 passing hypothesis property tests (needs 1)"),
        ("falsification tests", _no_falsification, "0 passing falsification tests (needs 1)"),
    ],
)
def test_each_test_run_gate_fails_on_its_own(completed, gate, breaks, summary):
    breaks(completed)
    report = check_workspace(completed)
    failed = [g for g in report.gates if not g.passed]
    assert [g.name for g in failed] == [gate], [g.line() for g in failed]
    assert summary in failed[0].summary
    assert report.format().splitlines()[-1] == "FAIL  8 of 9 gates passed"


def test_a_test_file_that_does_not_import_fails_pytest(completed):
    (completed / "tests" / "test_e_more.py").write_text("import no_such_module\n")
    run = run_tests(completed)
    gate = pytest_gate(run)
    assert not gate.passed and gate.numbers["collect_errors"] == 1
    assert gate.details[0].startswith("tests/test_e_more.py: ")
    assert gate.numbers["passed"] == 0 and gate.numbers["not run"] == 11  # pytest stops


def test_the_recorder_counts_each_verdict_once_and_marks_properties(completed):
    run = run_tests(completed)
    rows = {row["nodeid"].split("::")[1]: row for row in run.tests}
    assert rows["test_falsify_the_grid_has_at_most_five_ranks"]["verdicts"] == 1
    assert rows["test_norm_scales_with_the_matrix"]["property"] is True
    assert sum(row["verdicts"] for row in run.tests) == 1


def test_a_hanging_test_run_is_killed_after_the_timeout(completed):
    (completed / "tests" / "test_hang.py").write_text(
        "import time\n\n\ndef test_hang():\n    time.sleep(600)\n"
    )
    run = run_tests(completed, timeout=2)
    assert run.exitstatus == -1 and run.problem == "the tests did not finish in 2 s (killed)"


def test_check_without_a_workspace_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["workspace", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"coursekit workspace check: error: {tmp_path}/workspace.yaml: not found")


def test_new_on_a_non_empty_directory_is_one_line_and_exit_2(fresh, capsys):
    assert main(["workspace", "new", str(fresh), "--name", "ada"]) == 2
    assert capsys.readouterr().err == (
        f"coursekit workspace new: error: {fresh}: already exists and is not empty; workspace "
        "new never overwrites, choose a new directory\n"
    )


def test_new_refuses_a_bad_tier_list(tmp_path, capsys):
    assert main(["workspace", "new", str(tmp_path / "w"), "--name", "ada", "--tiers", "A"]) == 2
    assert "have no Advanced tier: add one of E, F, G, H" in capsys.readouterr().err


def test_new_and_release_commands(tmp_path, solutions, capsys):
    argv = ["workspace", "new", str(tmp_path / "w"), "--name", "bo", "--tiers", "c,h"]
    assert main([*argv, "--notebooks", str(solutions)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"workspace for bo (tiers C, H) written to {tmp_path / 'w'}"
    )
    assert (tmp_path / "w" / "enhancements" / "h_curriculum.py").is_file()
    assert main(["workspace", "release", str(solutions), str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [Path(line).name for line in printed] == sorted(p.name for p in solutions.iterdir())
