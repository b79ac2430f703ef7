"""``coursekit grade SUBMISSIONS/ --out grades/``: grade a class (docs/grading.md)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from coursekit.errors import CoursekitError


def _deadline(text: str) -> datetime:
    """Parse ``--deadline`` (ISO 8601 with a time zone)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CoursekitError(
            f"--deadline {text!r}: not ISO 8601; e.g. 2026-12-01T17:00+00:00"
        ) from None
    if moment.tzinfo is None:
        raise CoursekitError(f"--deadline {text!r}: has no time zone; add one, e.g. +00:00")
    return moment


def _grade(args: argparse.Namespace) -> int:
    from coursekit.grading.batch import grade_class
    from coursekit.grading.runner import RunLimits

    limits = RunLimits(cell_seconds=args.cell_timeout, submission_seconds=args.timeout)
    deadline = _deadline(args.deadline) if args.deadline else None
    rows = grade_class(
        args.submissions, args.out, workers=args.workers, deadline=deadline,
        only=args.only, regrade=args.regrade, limits=limits,
    )  # fmt: skip
    for row in rows:
        said = row.get("reason") or f"{row['final']:g} {row['letter']}"
        print(f"{row['name']:<24} {said}")
    print(f"grades written to {Path(args.out) / 'grades.csv'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``coursekit grade``."""
    parser = subparsers.add_parser("grade", help="grade a folder of submissions (instructors)")
    parser.add_argument("submissions", type=Path, help="a folder with one folder per learner")
    parser.add_argument("--out", type=Path, required=True, help="where grades and feedback go")
    parser.add_argument("--workers", type=int, default=1, help="submissions at once (1)")
    parser.add_argument("--deadline", help="ISO 8601 with a time zone, for the late penalty")
    parser.add_argument("--only", help="grade only this learner's submission")
    parser.add_argument("--regrade", action="store_true", help="grade finished ones again")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per submission")
    parser.add_argument("--cell-timeout", type=float, default=120.0, help="seconds per cell")
    parser.set_defaults(handler=_grade)
