"""Grade one submission: the rubric's automatic checks, the TA's manual items, lateness.

Automatic checks (rubric ids):

- ``baseline-executed``, ``notebooks-executed``: :mod:`coursekit.grading.runner`;
- ``ruff-check``, ``ruff-format``, ``docstrings``, ``tests-pass``, ``coverage``,
  ``unit-tests-per-enhancement``, ``property-test``, ``falsification-test``,
  ``enhancement-md``: the gates of ``coursekit workspace check --json``, run in the sandbox
  on the submission's copy (full points when the gate passes, else the rubric's partial
  rule from the gate's numbers: :func:`gate_points`);
- ``hidden-checks``, ``bonus-checks``: the hidden reference checks of the chosen tiers
  (:mod:`coursekit.grading.hidden_run`, a fresh sandboxed interpreter, JSON back);
- ``baseline-evidence``, ``benchmark``, ``usage-example``, and the phase notebooks a
  submission lacks: :mod:`coursekit.grading.submission_checks` (run folders verified by
  :func:`coursekit.grading.evidence.verify_run`).

A check the grader cannot score is *pending*: listed as such, counted neither for nor
against. Manual items come from the TA's
``manual.yaml`` (``{learner: {check id: points}}``), pending until filled in.

Example:
    >>> submitted_at(Path("/nonexistent")) is None
    True
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coursekit.errors import CoursekitError
from coursekit.evaluate.sandbox import SandboxLimits, run_sandboxed
from coursekit.grading import rubric as rubrics
from coursekit.grading.hidden_run import hidden_points, protection_note, run_hidden
from coursekit.grading.runner import RunLimits, execute, readable_paths, sandbox_env
from coursekit.grading.submission_checks import (
    baseline_evidence,
    benchmark_evidence,
    missing_phases,
    usage_examples,
)
from coursekit.workspace.layout import load_config
from coursekit.workspace.report import MAX_WORDS, MIN_WORDS

GATES = {
    "ruff check": "ruff-check",
    "ruff format": "ruff-format",
    "docstrings": "docstrings",
    "pytest": "tests-pass",
    "coverage": "coverage",
    "tests per tier": "unit-tests-per-enhancement",
    "property tests": "property-test",
    "falsification tests": "falsification-test",
    "ENHANCEMENT.md": "enhancement-md",
}
"""``workspace check`` gate → rubric check id."""
COVERAGE_GOAL = 95.0
"""Coverage percent that earns full points (the rubric's ``coverage`` rule)."""
TESTS_PER_TIER = 5
"""Unit tests each chosen enhancement needs (the rubric's rule)."""
CHECK_SCRIPT = "import sys\nfrom coursekit.cli import main\nsys.exit(main())"


def submitted_at(submission: Path) -> datetime | None:
    """Return when ``submission`` was handed in: its newest file's modification time (UTC).

    ``workspace.yaml`` cannot carry a time (``WorkspaceConfig`` refuses unknown keys), so the
    time is the newest mtime of the submission's files: keep it when collecting submissions
    (``cp -p``, ``rsync -t``, ``unzip`` keep it). None when it holds no file.

    Example:
        >>> submitted_at(Path("/nonexistent")) is None
        True
    """
    times = [
        p.lstat().st_mtime
        for p in submission.rglob("*")
        if p.is_file() and not _generated(p.relative_to(submission))
    ]
    return datetime.fromtimestamp(max(times), UTC) if times else None


GENERATED = ("__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache", ".ipynb_checkpoints")
"""Folders tools write into a workspace (running its tests, ruff, Jupyter): not handed in."""


def _generated(relative: Path) -> bool:
    """Whether a file was written by a tool rather than by the learner (caches, coverage)."""
    return bool(set(relative.parts) & set(GENERATED)) or relative.name.startswith(".coverage")


def workspace_gates(copy: Path, work: Path, seconds: float) -> dict[str, dict[str, Any]]:
    """Run ``coursekit workspace check --json`` on ``copy`` in the sandbox; gates by name.

    Example:
        >>> workspace_gates(Path("w/submission"), Path("w"), 300)  # doctest: +SKIP
        {'ruff check': {'passed': True, ...}, ...}
    """
    report = work / "gates.json"
    command = ["sh", "-c", 'exec "$@" > "$0"', str(report), sys.executable, "-c", CHECK_SCRIPT]
    command += ["workspace", "check", str(copy), "--json", "--timeout", str(seconds)]
    limits = SandboxLimits(
        wall_seconds=seconds + 60, cpu_seconds=int(seconds) * 2, memory_bytes=6 << 30,
        max_processes=256, output_bytes=64 << 20,
    )  # fmt: skip
    done = run_sandboxed(
        command, directory=work, limits=limits, env=sandbox_env(work), readable=readable_paths()
    )
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        said = done.output.strip().splitlines()[-1:] or [f"exit {done.exit_code}"]
        raise CoursekitError(f"workspace check gave no report ({said[0][:200]})") from None
    return {gate["name"]: gate for gate in data.get("gates", [])}


def grade_submission(
    submission: Path,
    work: Path,
    *,
    rubric: rubrics.Rubric,
    manual: dict[str, Any],
    deadline: datetime | None = None,
    limits: RunLimits | None = None,
    hidden_dir: Path | None = None,
) -> dict[str, Any]:
    """Grade ``submission`` in the empty directory ``work``; a JSON-serialisable row.

    ``hidden_dir``: an instructor's folder of hidden checks replacing coursekit's
    (docs/grading.md, "Hidden checks"); None: coursekit's ``coursekit/grading/hidden/``.

    Example:
        >>> rubric = rubrics.load_rubric()
        >>> grade_submission(Path("ada"), Path("w"), rubric=rubric, manual={})  # doctest: +SKIP
        {'name': 'ada', 'total': 61.0, 'letter': 'D', ...}
    """
    limits = limits or RunLimits()
    notebooks = execute(submission, work, limits)
    copy = work / "submission"
    earned: dict[str, float] = {}
    notes: dict[str, str] = {}
    missing = [f"{phase}*.ipynb: missing from notebooks/" for phase in
               missing_phases(r.name for r in notebooks)]  # fmt: skip
    phase1 = [r for r in notebooks if r.name.startswith("phase1")]
    earned["baseline-executed"] = 3.0 if phase1 and all(r.ok for r in phase1) else 0.0
    notes["baseline-executed"] = "; ".join(r.message for r in phase1 if not r.ok) or (
        "" if phase1 else "no phase1 notebook found in notebooks/"
    )
    done, expected = sum(r.ok for r in notebooks), len(notebooks) + len(missing)
    earned["notebooks-executed"] = round(4.0 * done / expected, 2)
    notes["notebooks-executed"] = "; ".join([r.message for r in notebooks if not r.ok] + missing)
    ok, said = baseline_evidence(copy)
    earned["baseline-evidence"], notes["baseline-evidence"] = (5.0 if ok else 0.0), said
    bench_ok, bench_said = benchmark_evidence(copy)
    full = _points(rubric, "benchmark")
    earned["benchmark"] = full if bench_ok else (full / 2 if bench_ok is False else 0.0)
    notes["benchmark"] = bench_said
    try:
        chosen = load_config(submission).chosen  # the original: the notebooks could edit the copy
        gates = workspace_gates(copy, work, limits.submission_seconds)
    except CoursekitError as error:  # no report: the reason, with what the notebooks did
        ran = [{"name": r.name, "status": r.status, "message": r.message} for r in notebooks]
        evidence = extra_evidence(ok, said, bench_ok, bench_said)
        return {"name": submission.name, "reason": str(error), "checks": [], "final": 0.0,
                "notebooks": ran, "evidence": evidence}  # fmt: skip
    for gate_name, check in GATES.items():
        if gate_name in gates:
            gate = gates[gate_name]
            full = _points(rubric, check)
            earned[check] = gate_points(check, gate, full)
            notes[check] = "" if gate.get("passed") else gate.get("summary", "")
    share, notes["usage-example"] = usage_examples(copy, {t.letter: t.module for t in chosen})
    earned["usage-example"] = round(_points(rubric, "usage-example") * share, 2)
    tiers = [t.letter for t in chosen]
    hidden = run_hidden(copy, work, tiers, seconds=limits.submission_seconds, rubric=rubric,
                        submission=submission, hidden_dir=hidden_dir)  # fmt: skip
    got, said = hidden_points(hidden, rubric, tiers=tiers)
    earned.update(got)
    notes.update(said)
    extra = {
        "hidden": hidden,
        "protection": protection_note(),
        "evidence": extra_evidence(ok, said, bench_ok, bench_said),
        "missing_notebooks": missing,
    }
    row = _row(submission.name, rubric, earned, notes, manual, deadline, submission, notebooks)
    return row | extra


def extra_evidence(ok: bool, said: str, bench_ok: bool | None, bench_said: str) -> dict:
    """Return the row's ``evidence``: the baseline's and the benchmark's verification.

    Example:
        >>> extra_evidence(True, "", None, "missing")["benchmark"]
        {'ok': None, 'message': 'missing'}
    """
    return {
        "baseline": {"ok": ok, "message": said},
        "benchmark": {"ok": bench_ok, "message": bench_said},
    }


def gate_points(check_id: str, gate: dict[str, Any], full: float) -> float:
    """Return the points of a ``workspace check`` gate under its rubric check's partial rule.

    A passed gate earns ``full``; a failed one what its numbers earn: ``ruff-check`` 1 point
    less per problem, ``docstrings`` and ``tests-pass`` the share documented or passing,
    ``coverage`` ``full × percent / 95``, ``unit-tests-per-enhancement`` the share of tiers
    with 5 tests, ``enhancement-md`` 1 less per section problem and 2 less when the length is
    out of range; any other gate 0.

    Example:
        >>> gate_points("ruff-check", {"passed": False, "numbers": {"problems": 2}}, 6.0)
        4.0
        >>> gate_points("coverage", {"passed": False, "numbers": {"percent": 47.5}}, 8.0)
        4.0
    """
    if gate.get("passed"):
        return float(full)
    n = gate.get("numbers") or {}
    share = None
    if check_id == "ruff-check" and "problems" in n:
        share = (full - n["problems"]) / full
    elif check_id == "docstrings" and n.get("public"):
        share = 1 - n["undocumented"] / n["public"]
    elif check_id == "tests-pass" and "passed" in n:
        ran = n["passed"] + n.get("failed", 0) + n.get("not run", 0)
        share = n["passed"] / ran if ran and not n.get("collect_errors") else 0.0
    elif check_id == "coverage" and "percent" in n:
        share = n["percent"] / COVERAGE_GOAL
    elif check_id == "unit-tests-per-enhancement" and n.get("per_tier"):
        counts = list(n["per_tier"].values())
        share = sum(count >= TESTS_PER_TIER for count in counts) / len(counts)
    elif check_id == "enhancement-md" and "words" in n:
        fits = MIN_WORDS <= n["words"] <= MAX_WORDS
        share = (full - n.get("section_problems", 0) - (0 if fits else 2)) / full
    if share is None or not math.isfinite(share):
        return 0.0
    return round(full * min(1.0, max(0.0, share)), 2)


def _points(rubric: rubrics.Rubric, check_id: str) -> float:
    return next(k.points for c in rubric.categories for k in c.checks if k.id == check_id)


def _row(name, rubric, earned, notes, manual, deadline, submission, notebooks) -> dict[str, Any]:
    """Assemble the row: checks with points and messages, categories, total, lateness."""
    mine = manual.get(name) or {}
    checks, categories, pending = [], {}, []
    for category in rubric.categories:
        got: dict[str, float] = {}
        for check in category.checks:
            if check.kind == "manual" and check.id in mine:
                got[check.id] = float(mine[check.id])
            elif check.id in earned:
                got[check.id] = float(earned[check.id])
            else:
                pending.append(check.id)
                checks.append({"id": check.id, "points": None, "of": check.points,
                               "message": "pending (" + check.kind + ")"})  # fmt: skip
                continue
            full = got[check.id] >= check.points
            message = (
                "" if full else f"{check.message} ({notes.get(check.id, '')})".replace(" ()", "")
            )
            checks.append({"id": check.id, "points": got[check.id], "of": check.points,
                           "message": message})  # fmt: skip
        categories[category.id] = rubrics.category_score(category, got)
    points = rubrics.total(categories, rubric)
    when = submitted_at(submission)
    late = rubrics.late_penalty(when, deadline, rubric) if deadline and when else None
    final = late.apply(points) if late else points
    ran = [{"name": r.name, "status": r.status, "message": r.message} for r in notebooks]
    return {
        "name": name, "categories": categories, "total": points,
        "late_days": late.days if late else 0, "late_points": late.points if late else 0.0,
        "final": final, "letter": rubrics.band(final, rubric), "pending": pending,
        "checks": checks, "notebooks": ran, "reason": "",
        "submitted_at": when.isoformat() if when else None,
    }  # fmt: skip
