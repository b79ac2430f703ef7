"""The quality gates that read a workspace's files: ruff, docstrings and ``ENHANCEMENT.md``.

Each gate returns a :class:`Gate`: PASS or FAIL, a one-line summary with its numbers, the
details a learner needs to fix it (``file:line: what``) and the numbers as data for the
grader. ruff runs in a child process with the course's rules
(``coursekit/workspace/templates/ruff.toml``, whatever the workspace's own ``ruff.toml``
says); docstrings are read with ``ast``, so no learner code is imported or run here. The
gates that run the learner's tests are in :mod:`coursekit.workspace.testrun`.

Guide: docs/course.md ("Your workspace").

Example:
    >>> gate = Gate(name="demo", passed=True, summary="0 problems")
    >>> gate.line()
    'PASS  demo                     0 problems'
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit.workspace.layout import PACKAGE, REPORT_FILE, TESTS_DIR, template_path
from coursekit.workspace.report import MAX_WORDS, MIN_WORDS, count_words, section_problems

RUFF_TIMEOUT_S = 120.0
"""Seconds a ruff run may take before the gate fails."""


@dataclass(frozen=True, kw_only=True)
class Gate:
    """The outcome of one quality gate."""

    name: str
    """The gate, e.g. ``"ruff check"``."""
    passed: bool
    """True when the gate is met."""
    summary: str
    """One line with the numbers, e.g. ``"96.2% of enhancements/ (needs 95%)"``."""
    details: tuple[str, ...] = ()
    """What to fix, one item per line (``file:line: problem``); empty when it passes."""
    numbers: dict[str, Any] = field(default_factory=dict)
    """The measured numbers as plain data (for ``--json`` and the grader)."""

    def line(self) -> str:
        """Return ``PASS|FAIL  <name padded>  <summary>``."""
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name:<24} {self.summary}"

    def to_dict(self) -> dict[str, Any]:
        """Return the gate as plain data."""
        return {
            "name": self.name,
            "passed": self.passed,
            "summary": self.summary,
            "details": list(self.details),
            "numbers": dict(self.numbers),
        }


def lint_targets(root: Path) -> list[str]:
    """Return the workspace's code directories that exist: ``enhancements`` and ``tests``."""
    return [name for name in (PACKAGE, TESTS_DIR) if (root / name).is_dir()]


def _ruff(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ruff <args>`` in ``root`` with the course's config, no cache."""
    config = str(template_path("ruff.toml"))
    command = [sys.executable, "-m", "ruff", *args, "--config", config, "--no-cache"]
    return subprocess.run(
        [*command, *lint_targets(root)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=RUFF_TIMEOUT_S,
        check=False,
    )


def ruff_check_gate(root: Path) -> Gate:
    """``ruff check`` finds no problem in ``enhancements/`` and ``tests/``.

    Example:
        >>> ruff_check_gate(workspace).summary  # doctest: +SKIP
        '0 problems in enhancements/, tests/'
    """
    done = _ruff(root, "check", "--output-format", "json", "--quiet")
    try:
        problems = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        problems = None
    if done.returncode not in (0, 1) or not isinstance(problems, list):
        return _ruff_failed("ruff check", done)
    details = tuple(
        f"{_relative(p['filename'], root)}:{p['location']['row']}:{p['location']['column']}: "
        f"{p['code']} {p['message']}"
        for p in problems
    )
    where = ", ".join(f"{name}/" for name in lint_targets(root)) or "nothing (no code yet)"
    return Gate(
        name="ruff check",
        passed=not problems and bool(lint_targets(root)),
        summary=f"{len(problems)} problems in {where}",
        details=details,
        numbers={"problems": len(problems)},
    )


def ruff_format_gate(root: Path) -> Gate:
    """``ruff format --check`` would reformat no file.

    Example:
        >>> ruff_format_gate(workspace).summary  # doctest: +SKIP
        '0 files to reformat'
    """
    done = _ruff(root, "format", "--check", "--output-format", "json")
    try:
        problems = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        problems = None
    if done.returncode not in (0, 1) or not isinstance(problems, list):
        return _ruff_failed("ruff format", done)
    files = tuple(dict.fromkeys(_relative(p["filename"], root) for p in problems))
    return Gate(
        name="ruff format",
        passed=done.returncode == 0 and not files and bool(lint_targets(root)),
        summary=f"{len(files)} files to reformat" + (" (run: make format)" if files else ""),
        details=files,
        numbers={"files_to_reformat": len(files)},
    )


def _relative(filename: str, root: Path) -> str:
    """``filename`` (as ruff prints it) relative to the workspace when it lies inside it."""
    path = Path(filename).resolve()
    return (
        str(path.relative_to(root.resolve())) if path.is_relative_to(root.resolve()) else filename
    )


def _ruff_failed(name: str, done: subprocess.CompletedProcess[str]) -> Gate:
    """A gate for a ruff run that could not judge (not installed, a syntax error, a crash)."""
    message = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
    if "No module named ruff" in done.stderr:
        message = ["ruff is not installed in this environment: pip install ruff"]
    return Gate(name=name, passed=False, summary=f"ruff exited {done.returncode}",
                details=tuple(message[-10:]), numbers={"exit_status": done.returncode})  # fmt: skip


def undocumented(path: Path, root: Path) -> tuple[int, list[str]]:
    """Return (public definitions, ``file:line: name`` of those without a docstring).

    Public: a module-level function or class, or a method of a public class, whose name does
    not start with ``_``. Nested functions are not counted.

    Example:
        >>> undocumented(Path("enhancements/e_dora.py"), Path("."))  # doctest: +SKIP
        (3, ['enhancements/e_dora.py:12: function dora_forward'])
    """
    relative = path.relative_to(root)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(relative))
    except (SyntaxError, UnicodeDecodeError, ValueError) as error:
        line = getattr(error, "lineno", None) or 1
        return 1, [f"{relative}:{line}: cannot parse ({type(error).__name__})"]
    found: list[str] = []
    total = 0
    for node, kind in _public_definitions(tree):
        total += 1
        if ast.get_docstring(node) is None:
            found.append(f"{relative}:{node.lineno}: {kind} {node.name}")
    return total, found


def _public_definitions(tree: ast.Module) -> list[tuple[Any, str]]:
    """The public functions and classes of a module, and the public methods of its classes."""
    kinds = {ast.FunctionDef: "function", ast.AsyncFunctionDef: "function", ast.ClassDef: "class"}
    found = []
    for node in tree.body:
        if type(node) not in kinds or node.name.startswith("_"):
            continue
        found.append((node, kinds[type(node)]))
        if isinstance(node, ast.ClassDef):
            found += [
                (child, "method")
                for child in node.body
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                and not child.name.startswith("_")
            ]
    return found


def docstring_gate(root: Path) -> Gate:
    """Every public function, class and method in ``enhancements/`` has a docstring.

    Example:
        >>> docstring_gate(workspace).summary  # doctest: +SKIP
        '7 of 7 public functions and classes documented'
    """
    total, missing = 0, []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        count, found = undocumented(path, root)
        total, missing = total + count, missing + found
    return Gate(
        name="docstrings",
        passed=total > 0 and not missing,
        summary=f"{total - len(missing)} of {total} public functions and classes documented"
        + ("" if total else " (no public code in enhancements/ yet)"),
        details=tuple(f"{item}: no docstring" for item in missing),
        numbers={"public": total, "undocumented": len(missing)},
    )


def report_gate(root: Path) -> Gate:
    """``ENHANCEMENT.md`` has 500-1000 words and every required section, filled in.

    Example:
        >>> report_gate(workspace).summary  # doctest: +SKIP
        '612 words (500-1000), 8 of 8 sections filled in'
    """
    path = root / REPORT_FILE
    if not path.is_file():
        return Gate(name=REPORT_FILE, passed=False, summary=f"{REPORT_FILE} is missing",
                    numbers={"words": 0})  # fmt: skip
    text = path.read_text(encoding="utf-8", errors="replace")
    words, problems = count_words(text), section_problems(text)
    fits = MIN_WORDS <= words <= MAX_WORDS
    details = [] if fits else [f"{words} words: write between {MIN_WORDS} and {MAX_WORDS}"]
    return Gate(
        name=REPORT_FILE,
        passed=fits and not problems,
        summary=f"{words} words ({MIN_WORDS}-{MAX_WORDS}), {len(problems)} section problems",
        details=tuple(details + problems),
        numbers={"words": words, "section_problems": len(problems)},
    )
