"""The gates that run the learner's tests: pytest, coverage, per tier, property, falsification.

The learner's tests run once, in a child process (``python -m pytest tests`` in the
workspace, its own process group, killed after a timeout), with coverage of
``enhancements/`` and :mod:`coursekit.workspace.pytest_plugin`, which writes one JSON row
per test. The checker reads that JSON and the coverage JSON; it never imports the learner's
code. Coverage uses the course's settings (line and branch coverage of ``enhancements/``,
only ``# pragma: no cover`` excluded), not the workspace's own.

How tests are counted:

- **per tier**: a test belongs to tier X when its file is named ``test_<x>_*.py`` (any
  folder under ``tests/``); a tier needs :data:`MIN_TESTS_PER_TIER` test *functions* that
  passed (a parametrized function counts once, and only if none of its cases failed);
- **property test**: a passing test decorated with hypothesis's ``@given``;
- **falsification test**: a passing test that built at least one
  :class:`~coursekit.experiments.verdict.Verdict` while it ran, i.e. it called
  ``falsify``, ``rank_does_not_decrease_quality`` or ``memory_estimate_bounds_use``.

Guide: docs/course.md ("Your workspace").

Example:
    >>> run = TestRun(exitstatus=0, tests=({"function": "t.py::a", "outcome": "passed",
    ...     "path": "test_e_x.py", "property": True, "verdicts": 0},))
    >>> property_gate(run).summary
    '1 passing hypothesis property tests (needs 1)'
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit.workspace.gates import Gate
from coursekit.workspace.layout import PACKAGE, TESTS_DIR, WorkspaceConfig
from coursekit.workspace.pytest_plugin import REPORT_ENV

MIN_COVERAGE = 95.0
"""Percent of ``enhancements/`` (lines and branches) the tests must cover (the course's gate)."""
MIN_TESTS_PER_TIER = 5
"""Passing test functions each chosen tier needs (the course: at least 5 per enhancement)."""
PYTEST_ARGS = ("-q", "--no-header", "-p", "no:cacheprovider", "-p", "no:nbval",
               "-p", "coursekit.workspace.pytest_plugin")  # fmt: skip
"""The child's pytest options: no cache folder in the workspace, no notebook plugin (slow to
import, and notebooks are not the package's tests), the recording plugin."""
COVERAGE_RC = """\
[run]
source = {package}
branch = True
data_file = {data}
[report]
exclude_lines =
    pragma: no cover
"""


@dataclass(frozen=True, kw_only=True)
class TestRun:
    """What the child pytest run reported (rows as :mod:`.pytest_plugin` writes them)."""

    __test__ = False  # not a pytest test class

    exitstatus: int
    """pytest's exit status (0: all passed); -1 when it did not finish."""
    tests: tuple[dict[str, Any], ...] = ()
    """One row per test: nodeid, path, function, outcome, property, verdicts."""
    collect_errors: tuple[str, ...] = ()
    """Test files that failed to import, with the last line of the error."""
    skipped_files: tuple[str, ...] = ()
    """Test files skipped as a whole (a starter file's ``pytest.skip``)."""
    coverage: dict[str, Any] | None = None
    """coverage.py's JSON report, or None when there is none."""
    seconds: float = 0.0
    """Wall time of the run."""
    problem: str = ""
    """Why there are no results (a timeout, no pytest-cov ...); empty when there are."""
    output: str = ""
    """The end of pytest's output, for the learner."""

    def passing_functions(self, keep: Any = None) -> set[str]:
        """Test functions with a passed case and no failed one (``keep(row)`` filters rows)."""
        outcomes: dict[str, set[str]] = defaultdict(set)
        for row in self.tests:
            if keep is None or keep(row):
                outcomes[row["function"]].add(row["outcome"])
        return {
            name for name, seen in outcomes.items() if "passed" in seen and "failed" not in seen
        }


def run_tests(root: Path, *, timeout: float = 600.0) -> TestRun:
    """Run the workspace's tests in a child pytest with coverage and the recording plugin.

    Args:
        root: the workspace.
        timeout: seconds before the child and everything it started are killed.

    Example:
        >>> run_tests(workspace).exitstatus  # doctest: +SKIP
        0
    """
    if not (root / TESTS_DIR).is_dir():
        return TestRun(exitstatus=-1, problem=f"{TESTS_DIR}/ is missing")
    with_cov = importlib.util.find_spec("pytest_cov") is not None
    with tempfile.TemporaryDirectory(prefix="coursekit-check-") as tmp:
        report, cov_json = Path(tmp) / "tests.json", Path(tmp) / "coverage.json"
        rc = Path(tmp) / "coveragerc"
        rc.write_text(COVERAGE_RC.format(package=PACKAGE, data=Path(tmp) / ".coverage"))
        command = [sys.executable, "-m", "pytest", TESTS_DIR, *PYTEST_ARGS]
        if with_cov:
            command += [f"--cov={PACKAGE}", f"--cov-config={rc}", "--cov-report=",
                        f"--cov-report=json:{cov_json}"]  # fmt: skip
        start = time.perf_counter()
        status, output = _run_child(command, root, _child_env(report), timeout)
        seconds = time.perf_counter() - start
        if status is None:
            problem = f"the tests did not finish in {timeout:.0f} s (killed)"
            return TestRun(exitstatus=-1, seconds=seconds, output=output, problem=problem)
        if not report.is_file():
            return TestRun(exitstatus=status, seconds=seconds, output=output,
                           problem=f"pytest exited {status} before reporting any test")  # fmt: skip
        data = json.loads(report.read_text(encoding="utf-8"))
        coverage = json.loads(cov_json.read_text()) if cov_json.is_file() else None
    return TestRun(
        exitstatus=status,
        tests=tuple(data["tests"]),
        collect_errors=tuple(data["collect_errors"]),
        skipped_files=tuple(data["skipped_files"]),
        coverage=coverage,
        seconds=seconds,
        output=output,
        problem="" if with_cov else "pytest-cov is not installed: pip install pytest-cov",
    )


def _child_env(report: Path) -> dict[str, str]:
    """This environment without settings that would change the course's run, plus the report.

    Dropped: ``PYTEST_ADDOPTS`` (extra options such as ``--collect-only``) and coverage's
    ``COV_CORE_*`` / ``COVERAGE_*`` variables (a parent run's coverage of the child).
    """
    keep = {
        name: value
        for name, value in os.environ.items()
        if name != "PYTEST_ADDOPTS" and not name.startswith(("COV_CORE_", "COVERAGE_"))
    }
    return keep | {REPORT_ENV: str(report)}


def _run_child(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> tuple[int | None, str]:
    """Run ``command`` in its own process group; return (exit status or None, output tail)."""
    child = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        return None, output[-4000:]
    return child.returncode, output[-4000:]


def _no_results(name: str, run: TestRun) -> Gate:
    return Gate(name=name, passed=False, summary=f"no test results ({run.problem})")


def pytest_gate(run: TestRun) -> Gate:
    """All tests pass: pytest exits 0, at least one test passed, every test file imports."""
    if not run.tests and run.problem:
        lines = run.output.strip().splitlines()[-15:]
        return Gate(name="pytest", passed=False, summary=run.problem, details=tuple(lines),
                    numbers={"exit_status": run.exitstatus})  # fmt: skip
    counts = {k: sum(r["outcome"] == k for r in run.tests)
              for k in ("passed", "failed", "skipped", "not run")}  # fmt: skip
    failed = tuple(f"{r['nodeid']}: failed" for r in run.tests if r["outcome"] == "failed")
    errors = tuple(f"{e} (cannot be collected)" for e in run.collect_errors)
    ok = run.exitstatus == 0 and counts["passed"] > 0 and not failed and not errors
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n or k in ("passed", "failed"))
    if errors:
        summary += f", {len(errors)} files not collected"
    if run.skipped_files:
        summary += f", {len(run.skipped_files)} files skipped"
    return Gate(
        name="pytest",
        passed=ok,
        summary=f"{summary} in {run.seconds:.1f} s"
        + ("" if counts["passed"] else " (no test passed)"),
        details=failed + errors + tuple(f"{f}: skipped (a TODO?)" for f in run.skipped_files),
        numbers=counts
        | {
            "collect_errors": len(errors),
            "skipped_files": len(run.skipped_files),
            "exit_status": run.exitstatus,
        },
    )


def coverage_gate(run: TestRun) -> Gate:
    """The tests cover at least 95% of ``enhancements/`` (lines and branches)."""
    totals = (run.coverage or {}).get("totals")
    if totals is None:
        return (
            _no_results("coverage", run)
            if run.problem
            else Gate(name="coverage", passed=False, summary="no coverage data was written")
        )
    percent, statements = float(totals["percent_covered"]), int(totals["num_statements"])
    details = tuple(
        f"{name}: {info['summary']['percent_covered']:.1f}%, lines not run: "
        + (", ".join(map(str, info["missing_lines"])) or "none (branches)")
        for name, info in sorted(run.coverage["files"].items())
        if info["summary"]["percent_covered"] < MIN_COVERAGE
    )
    empty = " (no code in enhancements/ yet)" if statements == 0 else ""
    return Gate(
        name="coverage",
        passed=percent >= MIN_COVERAGE and statements > 0,
        summary=f"{percent:.1f}% of {PACKAGE}/ (needs {MIN_COVERAGE:.0f}%){empty}",
        details=details,
        numbers={"percent": round(percent, 2), "statements": statements},
    )


def tier_tests_gate(run: TestRun, config: WorkspaceConfig) -> Gate:
    """Each chosen tier has at least 5 passing test functions in its ``test_<x>_*.py`` files."""
    counts = {
        tier.letter: len(run.passing_functions(
            lambda row, prefix=tier.test_prefix: Path(row["path"]).name.startswith(prefix)))
        for tier in config.chosen
    }  # fmt: skip
    short = tuple(
        f"Tier {letter}: {n} passing test functions in {TESTS_DIR}/test_{letter.lower()}_*.py "
        f"(needs {MIN_TESTS_PER_TIER})"
        for letter, n in counts.items()
        if n < MIN_TESTS_PER_TIER
    )
    return Gate(
        name="tests per tier",
        passed=not short,
        summary=", ".join(f"{letter}: {n}" for letter, n in counts.items())
        + f" (needs {MIN_TESTS_PER_TIER} each)",
        details=short,
        numbers={"per_tier": counts},
    )


def property_gate(run: TestRun) -> Gate:
    """At least one hypothesis property test passes."""
    found = run.passing_functions(lambda row: row["property"])
    return _at_least_one("property tests", found, "hypothesis property tests",
                         "decorate a test with hypothesis's @given")  # fmt: skip


def falsification_gate(run: TestRun) -> Gate:
    """At least one falsification test (one that builds a ``Verdict``) passes."""
    found = run.passing_functions(lambda row: row["verdicts"] > 0)
    return _at_least_one("falsification tests", found, "falsification tests",
                         "test a claim with coursekit.experiments.falsify.falsify")  # fmt: skip


def _at_least_one(name: str, found: set[str], what: str, fix: str) -> Gate:
    return Gate(
        name=name,
        passed=bool(found),
        summary=f"{len(found)} passing {what} (needs 1)",
        details=() if found else (f"none found: {fix} (docs/course.md, 'Your workspace')",),
        numbers={"count": len(found), "tests": sorted(found)},
    )
