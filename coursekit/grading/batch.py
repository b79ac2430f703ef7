"""Grade a class: every submission folder, in parallel, resumable, one row each.

``grade_class(submissions, out)`` grades each folder of ``submissions`` (its name is the
learner's) in a process pool. Per learner it writes ``out/<name>/result.json`` (atomic; the
row, also the resume marker) and ``out/<name>/feedback.md`` (each check's name, points and
message); then ``out/grades.csv`` (atomic) from every ``result.json``. A submission that
fails, hangs or attacks the grader becomes a row with its ``reason``; the batch goes on.
``out/manual.yaml`` (``{learner: {check id: points}}``, written by a TA) is read, never
written, so manual scores survive a regrade.

Example:
    >>> grade_class("submissions", "grades", workers=2)  # doctest: +SKIP
    [{'name': 'ada', 'final': 61.0, 'letter': 'D', ...}, ...]
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
import traceback
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from coursekit.errors import CoursekitError
from coursekit.grading import rubric as rubrics
from coursekit.grading.runner import RunLimits
from coursekit.grading.score import grade_submission
from coursekit.io import atomic_open

RESULT = "result.json"
FEEDBACK = "feedback.md"
MANUAL = "manual.yaml"
CSV_FIELDS = ("name", "total", "late_days", "late_points", "final", "letter", "pending", "reason")


def load_manual(out: Path) -> dict[str, Any]:
    """Return ``out/manual.yaml`` as ``{learner: {check id: points}}`` ({} when absent).

    Raises:
        CoursekitError: the file is not such a mapping.

    Example:
        >>> load_manual(Path("/nonexistent"))
        {}
    """
    path = out / MANUAL
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise CoursekitError(f"{path}: not YAML ({str(error).splitlines()[0]}); fix it") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise CoursekitError(f"{path}: must map each learner to {{check id: points}}; fix it")
    return data


def _grade_one(
    submission: Path, out: Path, manual: dict, deadline: datetime | None, limits: RunLimits
) -> dict[str, Any]:
    """Grade one submission in a fresh work directory; any failure becomes the row's reason."""
    rubric = rubrics.load_rubric()
    work = Path(tempfile.mkdtemp(prefix=f"coursekit-grade-{submission.name}-"))
    try:
        row = grade_submission(
            submission, work / "w", rubric=rubric, manual=manual, deadline=deadline, limits=limits
        )
    except Exception as error:  # one submission never fails the batch
        said = str(error).splitlines()[0] if str(error) else type(error).__name__
        row = {"name": submission.name, "reason": said[:300], "checks": [], "final": 0.0}
        row["trace"] = traceback.format_exc(limit=3)[-2000:]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _write_learner(out / submission.name, row)
    return row


def _write_learner(folder: Path, row: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / FEEDBACK) as handle:
        handle.write(feedback(row))
    with atomic_open(folder / RESULT) as handle:
        json.dump(row, handle, indent=2)


def feedback(row: dict[str, Any]) -> str:
    """Return a learner's feedback page (Markdown): total, then each check.

    Example:
        >>> print(feedback({"name": "ada", "reason": "broken", "checks": []}).splitlines()[0])
        # Feedback for ada
    """
    lines = [f"# Feedback for {row['name']}", ""]
    if row.get("reason"):
        lines += [f"Grading failed: {row['reason']}", ""]
    if "total" in row:
        late = f"late penalty {row['late_points']:g} ({row['late_days']} days)"
        lines += [f"Total {row['total']:g}, {late}, final {row['final']:g} ({row['letter']})", ""]
    lines += ["| check | points | message |", "|---|---|---|"]
    for check in row.get("checks", []):
        got = "pending" if check["points"] is None else f"{check['points']:g}"
        lines.append(f"| {check['id']} | {got} / {check['of']:g} | {check['message']} |")
    return "\n".join(lines) + "\n"


def write_csv(out: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``out/grades.csv`` (atomic): one row per learner, the categories after the name.

    Example:
        >>> write_csv(Path(tmp), [{"name": "ada", "reason": "x"}])  # doctest: +SKIP
    """
    categories = [c.id for c in rubrics.load_rubric().categories]
    fields = [CSV_FIELDS[0], *categories, *CSV_FIELDS[1:]]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r["name"]):
        flat = {key: row.get(key, "") for key in CSV_FIELDS}
        flat["pending"] = " ".join(row.get("pending", []))
        flat.update(row.get("categories", {}))
        writer.writerow(flat)
    with atomic_open(out / "grades.csv") as handle:
        handle.write(buffer.getvalue())
    return out / "grades.csv"


def grade_class(
    submissions: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    workers: int = 1,
    deadline: datetime | None = None,
    only: str | None = None,
    regrade: bool = False,
    limits: RunLimits | None = None,
) -> list[dict[str, Any]]:
    """Grade every submission folder of ``submissions`` into ``out``; rows in name order.

    Args:
        submissions: a folder of submission folders (``<learner>/notebooks/...``).
        out: where results, feedback and ``grades.csv`` go (made if missing).
        workers: submissions graded at once (processes).
        deadline: the deadline (with a time zone) for the late penalty; None: no penalty.
        only: grade only the submission of this name.
        regrade: grade again submissions that have a ``result.json``.
        limits: per-submission limits (default :class:`RunLimits`).

    Raises:
        CoursekitError: ``submissions`` is not a folder, or ``only`` names none of them.
    """
    root, target = Path(submissions), Path(out)
    if not root.is_dir():
        raise CoursekitError(f"{root}: not a folder of submissions; pass the class's folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if only is not None:
        folders = [p for p in folders if p.name == only]
        if not folders:
            raise CoursekitError(f"--only {only}: no such submission in {root}")
    target.mkdir(parents=True, exist_ok=True)
    manual = load_manual(target)
    todo = [p for p in folders if regrade or not (target / p.name / RESULT).exists()]
    limits = limits or RunLimits()
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(_grade_one, p, target, manual, deadline, limits) for p in todo]
        for folder, future in zip(todo, futures, strict=True):
            try:
                future.result()
            except Exception as error:  # the worker died (killed, out of memory, os._exit)
                said = f"the grader's process for this submission died ({type(error).__name__})"
                _write_learner(target / folder.name, {"name": folder.name, "reason": said,
                                                      "checks": [], "final": 0.0})  # fmt: skip
    rows = [json.loads((target / p.name / RESULT).read_text()) for p in folders]
    everyone = sorted((target / d.name / RESULT) for d in target.iterdir() if d.is_dir())
    write_csv(target, [json.loads(p.read_text()) for p in everyone if p.exists()])
    return rows
