"""``coursekit workspace check``: every quality gate of the course, PASS or FAIL with numbers.

The gates, in order (docs/course.md, Phase 3 and 4):

==========================  ===========================================================
gate                        passes when
==========================  ===========================================================
ruff check                  no problem in ``enhancements/`` and ``tests/`` (course rules)
ruff format                 ``ruff format --check`` would change no file
pytest                      every test passes, at least one ran, every test file imports
coverage                    ≥ 95% of ``enhancements/`` (lines and branches)
docstrings                  every public function, class and method in ``enhancements/``
tests per tier              ≥ 5 passing test functions in ``tests/test_<x>_*.py`` per tier
property tests              ≥ 1 passing hypothesis ``@given`` test
falsification tests         ≥ 1 passing test that builds a ``Verdict``
ENHANCEMENT.md              500-1000 words, every required section filled in
==========================  ===========================================================

The learner's code runs only in child processes (ruff, pytest); this process reads files
and JSON. The exit status of the command is 0 only when every gate passes.

Guide: docs/course.md ("Your workspace").

Example:
    >>> report = check_workspace("my-workspace")  # doctest: +SKIP
    >>> print(report.format())  # doctest: +SKIP
    coursekit workspace check: ada (tiers A, E) in my-workspace
    PASS  ruff check               0 problems in enhancements/, tests/
    ...
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit.workspace.gates import (
    Gate,
    docstring_gate,
    report_gate,
    ruff_check_gate,
    ruff_format_gate,
)
from coursekit.workspace.layout import WorkspaceConfig, load_config
from coursekit.workspace.testrun import (
    coverage_gate,
    falsification_gate,
    property_gate,
    pytest_gate,
    run_tests,
    tier_tests_gate,
)


@dataclass(frozen=True, kw_only=True)
class CheckReport:
    """All gates of one workspace."""

    workspace: Path
    """The workspace checked."""
    config: WorkspaceConfig
    """Its ``workspace.yaml``."""
    gates: tuple[Gate, ...]
    """The gates, in the order of the module's table."""

    @property
    def passed(self) -> bool:
        """True when every gate passed."""
        return all(gate.passed for gate in self.gates)

    def format(self) -> str:
        """Return the report as text: a header, one line per gate with its details, a total."""
        tiers = ", ".join(self.config.tiers)
        lines = [
            f"coursekit workspace check: {self.config.name} (tiers {tiers}) in {self.workspace}"
        ]
        for gate in self.gates:
            lines.append(gate.line())
            lines += [f"        {detail}" for detail in gate.details[:20]]
            if len(gate.details) > 20:
                lines.append(f"        ... and {len(gate.details) - 20} more")
        passed = sum(gate.passed for gate in self.gates)
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"{verdict}  {passed} of {len(self.gates)} gates passed")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data (``--json``; the grader's input)."""
        return {
            "workspace": str(self.workspace),
            "name": self.config.name,
            "tiers": list(self.config.tiers),
            "coursekit_version": self.config.coursekit_version,
            "passed": self.passed,
            "gates": [gate.to_dict() for gate in self.gates],
        }

    def to_json(self) -> str:
        """Return :meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)


def check_workspace(
    directory: str | os.PathLike[str] = ".", *, timeout: float = 600.0
) -> CheckReport:
    """Run every gate on the workspace in ``directory``.

    Args:
        directory: a workspace made by ``coursekit workspace new``.
        timeout: seconds the learner's test run may take.

    Raises:
        CoursekitError: ``directory`` has no valid ``workspace.yaml``.
    """
    root = Path(directory)
    config = load_config(root)
    run = run_tests(root, timeout=timeout)
    gates = (
        ruff_check_gate(root),
        ruff_format_gate(root),
        pytest_gate(run),
        coverage_gate(run),
        docstring_gate(root),
        tier_tests_gate(run, config),
        property_gate(run),
        falsification_gate(run),
        report_gate(root),
    )
    return CheckReport(workspace=root, config=config, gates=gates)
