"""A pytest plugin that ``workspace check`` loads into the learner's test run (a child process).

Loaded with ``-p coursekit.workspace.pytest_plugin``; it does nothing unless the environment
variable :data:`REPORT_ENV` names a file. Then it writes there, as JSON, one row per test:

- ``nodeid``, ``path`` (relative to the rootdir), ``function`` (the node id without its
  parametrization, so a parametrized function is one function);
- ``outcome``: ``"passed"``, ``"failed"`` (setup, call or teardown), ``"skipped"`` or
  ``"not run"``;
- ``property``: the test is a hypothesis test (``hypothesis.is_hypothesis_test``);
- ``verdicts``: how many :class:`coursekit.experiments.verdict.Verdict` the test built while
  it ran (a falsification test builds at least one);

plus the collection errors, the files skipped as a whole and pytest's exit status. The
checker reads this JSON and never imports the learner's code itself.

Example:
    >>> function_of("test_e_dora.py::test_scale[4-8]")
    'test_e_dora.py::test_scale'
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

REPORT_ENV = "COURSEKIT_WORKSPACE_REPORT"
"""The environment variable naming the JSON file the plugin writes."""


def function_of(nodeid: str) -> str:
    """Return a node id without its parametrization suffix (``[...]``)."""
    return nodeid.split("[", 1)[0]


def _is_property(item: pytest.Item) -> bool:
    """True when the test function is wrapped by hypothesis's ``@given``."""
    try:
        from hypothesis import is_hypothesis_test
    except ImportError:  # pragma: no cover - hypothesis is a dev dependency of coursekit
        return False
    return bool(is_hypothesis_test(getattr(item, "obj", None)))


class Recorder:
    """Collects each test's outcome, kind and verdict count; writes them at the session's end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tests: dict[str, dict[str, Any]] = {}
        self.collect_errors: list[str] = []
        self.skipped_files: list[str] = []
        self.verdicts = 0
        self._original: Any = None

    def pytest_configure(self, config: pytest.Config) -> None:
        """Count every ``Verdict`` built, by wrapping its ``__post_init__``."""
        from coursekit.experiments.verdict import Verdict

        original = self._original = Verdict.__post_init__
        recorder = self

        def counted(verdict: Verdict) -> None:
            original(verdict)
            recorder.verdicts += 1

        Verdict.__post_init__ = counted  # type: ignore[method-assign]

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Put ``Verdict.__post_init__`` back."""
        from coursekit.experiments.verdict import Verdict

        if self._original is not None:
            Verdict.__post_init__ = self._original  # type: ignore[method-assign]

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Remember files that failed to collect (an import error) or were skipped whole."""
        if report.failed:
            lines = str(report.longrepr).strip().splitlines()
            self.collect_errors.append(f"{report.nodeid}: {lines[-1] if lines else 'error'}")
        elif report.skipped and report.nodeid:
            self.skipped_files.append(report.nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Count the verdicts built while the test body runs."""
        before = self.verdicts
        try:
            return (yield)
        finally:
            self._row(item)["verdicts"] += self.verdicts - before

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Fold setup, call and teardown reports into one outcome per test."""
        row = self.tests.setdefault(report.nodeid, self._new_row(report.nodeid, report.location[0]))
        if report.failed:
            row["outcome"] = "failed"
        elif report.skipped and row["outcome"] != "failed":
            row["outcome"] = "skipped"
        elif report.when == "call" and report.passed and row["outcome"] == "pending":
            row["outcome"] = "passed"

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Record which collected tests are hypothesis properties."""
        for item in items:
            self._row(item)["property"] = _is_property(item)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Write the JSON report."""
        for row in self.tests.values():
            if row["outcome"] == "pending":
                row["outcome"] = "not run"  # deselected, or the session stopped first
        report = {
            "exitstatus": int(exitstatus),
            "collect_errors": self.collect_errors,
            "skipped_files": self.skipped_files,
            "tests": list(self.tests.values()),
        }
        self.path.write_text(json.dumps(report, indent=1), encoding="utf-8")

    def _row(self, item: pytest.Item) -> dict[str, Any]:
        path = str(item.path.relative_to(item.config.rootpath))
        return self.tests.setdefault(item.nodeid, self._new_row(item.nodeid, path))

    @staticmethod
    def _new_row(nodeid: str, path: str) -> dict[str, Any]:
        return {
            "nodeid": nodeid,
            "path": path,
            "function": function_of(nodeid),
            "outcome": "pending",
            "property": False,
            "verdicts": 0,
        }


def pytest_configure(config: pytest.Config) -> None:
    """Register a :class:`Recorder` when :data:`REPORT_ENV` is set (pytest calls this)."""
    target = os.environ.get(REPORT_ENV)
    if target:
        recorder = Recorder(Path(target))
        # pytest_configure is a historic hook: pytest calls the recorder's own at once
        config.pluginmanager.register(recorder, "coursekit-workspace-recorder")
