"""``coursekit grade SUBMISSIONS/ --out grades/`` and ``coursekit grade merge``: grade a class.

``coursekit grade merge grades-1 grades-2 … --out grades/`` merges shard outputs
(docs/grading.md, "Sharding a class"): a first argument ``merge`` followed by more folders
selects it (a submissions folder named ``merge`` still works when it is the only one).
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from coursekit.errors import CoursekitError

USAGE = (
    "coursekit grade SUBMISSIONS --out GRADES [--shard i/n] [options]\n"
    "       coursekit grade merge GRADES-1 GRADES-2 ... --out GRADES"
)
GRADE_ONLY = ("workers", "deadline", "only", "regrade", "shard", "hidden")
"""Options of grading that ``merge`` refuses."""


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


def _print(rows: list[dict], out: Path) -> None:
    for row in rows:
        said = row.get("reason") or f"{row['final']:g} {row['letter']}"
        flags = f"  [flags: {'; '.join(row['flags'])}]" if row.get("flags") else ""
        print(f"{row['name']:<24} {said}{flags}")
    print(f"grades written to {out / 'grades.csv'}, {out / 'grades.json'}, {out / 'cohort.html'}")


def _merge(args: argparse.Namespace) -> int:
    from coursekit.grading.merge import merge_outputs

    args._coursekit_prog = "coursekit grade merge"
    defaults = {"workers": 1, "deadline": None, "only": None, "regrade": False, "shard": None,
                "hidden": None}  # fmt: skip
    for option in GRADE_ONLY:
        if getattr(args, option) != defaults[option]:
            raise CoursekitError(f"--{option} does not apply to merge; grade each shard with it")
    _print(merge_outputs(args.paths[1:], args.out), args.out)
    return 0


def _grade(args: argparse.Namespace) -> int:
    if args.paths[0] == Path("merge") and len(args.paths) > 1:
        return _merge(args)
    if len(args.paths) > 1:
        raise CoursekitError(
            f"give one SUBMISSIONS folder (got {len(args.paths)}); to merge shard outputs: "
            "coursekit grade merge grades-1 grades-2 ... --out grades"
        )
    from coursekit.grading.batch import grade_class
    from coursekit.grading.runner import RunLimits
    from coursekit.grading.shard import parse_shard

    shard = parse_shard(args.shard) if args.shard is not None else None
    if args.hidden is not None and not args.hidden.is_dir():
        raise CoursekitError(f"--hidden {args.hidden}: not a folder of hidden checks")
    limits = RunLimits(cell_seconds=args.cell_timeout, submission_seconds=args.timeout)
    deadline = _deadline(args.deadline) if args.deadline else None
    rows = grade_class(
        args.paths[0], args.out, workers=args.workers, deadline=deadline,
        only=args.only, regrade=args.regrade, limits=limits, shard=shard,
        hidden_dir=args.hidden,
    )  # fmt: skip
    _print(rows, args.out)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``coursekit grade`` (and its ``merge`` form)."""
    parser = subparsers.add_parser(
        "grade", help="grade a folder of submissions, or merge shards (instructors)", usage=USAGE
    )
    parser.add_argument(
        "paths", type=Path, nargs="+", metavar="SUBMISSIONS",
        help="a folder with one folder per learner; or merge and the shards' grades folders",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="where grades and feedback go")
    parser.add_argument("--workers", type=int, default=1, help="submissions at once (1)")
    parser.add_argument("--deadline", help="ISO 8601 with a time zone, for the late penalty")
    parser.add_argument("--only", help="grade only this learner's submission")
    parser.add_argument("--regrade", action="store_true", help="grade finished ones again")
    parser.add_argument("--shard", help="i/n: grade the i-th of n slices of the sorted names")
    parser.add_argument("--hidden", type=Path, help="your own hidden checks (tier_<letter>.py)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per submission")
    parser.add_argument("--cell-timeout", type=float, default=120.0, help="seconds per cell")
    parser.set_defaults(handler=_grade)
