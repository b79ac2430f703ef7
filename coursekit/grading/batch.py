"""Grade a class: every submission folder, in parallel, resumable, one row each.

``grade_class(submissions, out)`` grades each folder of ``submissions`` (its name is the
learner's) in a process pool. Per learner it writes ``out/<name>/result.json`` (atomic; the
row, also the resume marker) and ``out/<name>/plots/`` (copies of the learner's PNG plots);
then, over every ``result.json`` of ``out`` (:func:`write_outputs`): the near-duplicate flags
(:mod:`coursekit.grading.flags`), ``grades.csv``, and the feedback pages, ``grades.json`` and
cohort report of :mod:`coursekit.grading.report`. A submission that
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
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from coursekit.errors import CoursekitError
from coursekit.grading import rubric as rubrics
from coursekit.grading.feedback import copy_plots, find_plots
from coursekit.grading.feedback import feedback_markdown as feedback
from coursekit.grading.flags import fingerprints, near_duplicates
from coursekit.grading.report import write_reports
from coursekit.grading.runner import RunLimits
from coursekit.grading.score import grade_submission
from coursekit.grading.shard import shard_names
from coursekit.io import atomic_open

RESULT = "result.json"
FEEDBACK = "feedback.md"
MANUAL = "manual.yaml"
PLOTS = "plots"
CSV_FIELDS = (
    "name", "total", "late_days", "late_points", "final", "letter", "pending", "reason", "flags",
)  # fmt: skip


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
    submission: Path,
    out: Path,
    manual: dict,
    deadline: datetime | None,
    limits: RunLimits,
    hidden_dir: Path | None = None,
) -> dict[str, Any]:
    """Grade one submission in a fresh work directory; any failure becomes the row's reason.

    Besides the score, the row gets ``seconds`` (wall time, failures included),
    ``fingerprints`` and ``plots``, both read as bytes from the original submission here in
    the grader's process (nothing of it is executed), and empty ``flags``.
    """
    start = time.monotonic()
    rubric = rubrics.load_rubric()
    work = Path(tempfile.mkdtemp(prefix=f"coursekit-grade-{submission.name}-"))
    try:
        row = grade_submission(
            submission, work / "w", rubric=rubric, manual=manual, deadline=deadline,
            limits=limits, hidden_dir=hidden_dir,
        )  # fmt: skip
    except Exception as error:  # one submission never fails the batch
        said = str(error).splitlines()[0] if str(error) else type(error).__name__
        row = {"name": submission.name, "reason": said[:300], "checks": [], "final": 0.0}
        row["trace"] = traceback.format_exc(limit=3)[-2000:]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    row["fingerprints"] = fingerprints(submission)
    row["plots"] = find_plots(submission)
    shutil.rmtree(out / submission.name / PLOTS, ignore_errors=True)
    copy_plots(submission, row["plots"], out / submission.name / PLOTS)
    row["flags"] = []
    row["seconds"] = round(time.monotonic() - start, 3)
    _write_learner(out / submission.name, row)
    return row


def _write_learner(folder: Path, row: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / FEEDBACK) as handle:
        handle.write(feedback(row))
    with atomic_open(folder / RESULT) as handle:
        json.dump(row, handle, indent=2)


def read_rows(out: Path) -> list[dict[str, Any]]:
    """Return the rows of every ``out/<name>/result.json``, in name order.

    Raises:
        CoursekitError: a ``result.json`` is not a JSON object named after its folder.

    Example:
        >>> read_rows(Path("/nonexistent"))
        []
    """
    rows = []
    folders = sorted(d for d in out.iterdir() if d.is_dir()) if out.is_dir() else []
    for folder in (d for d in folders if not d.name.startswith(".")):
        path = folder / RESULT
        if not path.exists():
            continue
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise CoursekitError(f"{path}: not JSON ({error}); regrade that learner") from None
        if not isinstance(row, dict) or row.get("name") != folder.name:
            raise CoursekitError(
                f"{path}: not a grading row of {folder.name} (its name differs); regrade it"
            )
        rows.append(row)
    return rows


def write_outputs(out: Path) -> list[dict[str, Any]]:
    """Flag near-duplicates over every row of ``out``, then write the CSV and the reports.

    Each row's ``flags`` is recomputed (:func:`~coursekit.grading.flags.near_duplicates`)
    and its ``result.json`` rewritten when they changed; then ``grades.csv`` and
    :func:`~coursekit.grading.report.write_reports`. Returns the rows.

    Example:
        >>> write_outputs(Path("grades"))  # doctest: +SKIP
        [{'name': 'ada', ...}, ...]
    """
    rows = read_rows(out)
    flags = near_duplicates(rows)
    for row in rows:
        if row.get("flags") != flags[row["name"]]:
            row["flags"] = flags[row["name"]]
            with atomic_open(out / row["name"] / RESULT) as handle:
                json.dump(row, handle, indent=2)
    write_csv(out, rows)
    write_reports(out, rows)
    return rows


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
        flat["flags"] = "; ".join(row.get("flags", []))
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
    shard: tuple[int, int] | None = None,
    hidden_dir: str | os.PathLike[str] | None = None,
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
        shard: ``(i, n)``: grade only shard ``i`` of ``n`` of the sorted names
            (:func:`~coursekit.grading.shard.shard_names`); merge the outputs with
            :func:`~coursekit.grading.merge.merge_outputs`.
        hidden_dir: an instructor's folder of hidden checks (one ``tier_<letter>.py`` per
            tier) replacing coursekit's; None: coursekit's.

    Raises:
        CoursekitError: ``submissions`` is not a folder, or ``only`` names none of them
            (in this shard).

    Example:
        >>> grade_class("submissions", "grades-3", shard=(3, 8))  # doctest: +SKIP
        [{'name': 'cy', ...}, ...]
    """
    root, target = Path(submissions), Path(out)
    if not root.is_dir():
        raise CoursekitError(f"{root}: not a folder of submissions; pass the class's folder")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if shard is not None:
        keep = set(shard_names([p.name for p in folders], *shard))
        folders = [p for p in folders if p.name in keep]
    if only is not None:
        folders = [p for p in folders if p.name == only]
        if not folders:
            where = f" (shard {shard[0]}/{shard[1]})" if shard else ""
            raise CoursekitError(f"--only {only}: no such submission in {root}{where}")
    target.mkdir(parents=True, exist_ok=True)
    manual = load_manual(target)
    todo = [p for p in folders if regrade or not (target / p.name / RESULT).exists()]
    limits = limits or RunLimits()
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        hidden = Path(hidden_dir).resolve() if hidden_dir is not None else None
        futures = [pool.submit(_grade_one, p, target, manual, deadline, limits, hidden)
                   for p in todo]  # fmt: skip
        for folder, future in zip(todo, futures, strict=True):
            try:
                future.result()
            except Exception as error:  # the worker died (killed, out of memory, os._exit)
                said = f"the grader's process for this submission died ({type(error).__name__})"
                _write_learner(target / folder.name, {"name": folder.name, "reason": said,
                                                      "checks": [], "final": 0.0, "flags": [],
                                                      "seconds": None})  # fmt: skip
    everyone = {row["name"]: row for row in write_outputs(target)}
    return [everyone[p.name] for p in folders]
