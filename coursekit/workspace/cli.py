"""``coursekit workspace new | check | release``: the learner workspace from a terminal.

Guide: docs/course.md ("Your workspace").
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _new(args: argparse.Namespace) -> int:
    from coursekit.workspace.layout import DEFAULT_TIERS, new_workspace
    from coursekit.workspace.tiers import parse_tiers

    tiers = parse_tiers(args.tiers) if args.tiers is not None else DEFAULT_TIERS
    path = new_workspace(args.dir, name=args.name, tiers=tiers, notebooks=args.notebooks)
    print(f"workspace for {args.name} (tiers {', '.join(tiers)}) written to {path}")
    print(f"next: cd {path} && make check")
    return 0


def _check(args: argparse.Namespace) -> int:
    from coursekit.workspace.check import check_workspace

    report = check_workspace(args.dir, timeout=args.timeout)
    print(report.to_json() if args.json else report.format())
    return 0 if report.passed else 1


def _release(args: argparse.Namespace) -> int:
    from coursekit.workspace.release import release

    for path in release(args.src_dir, args.out_dir):
        print(path)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``coursekit workspace`` and its sub-commands ``new``, ``check`` and ``release``."""
    parser = subparsers.add_parser("workspace", help="the learner workspace: new, check, release")
    sub = parser.add_subparsers(dest="workspace_command", required=True)
    new = sub.add_parser("new", help="create a learner workspace (the submission layout)")
    new.add_argument("dir", type=Path, help="a new or empty directory")
    new.add_argument("--name", required=True, help="your name as an identifier, e.g. ada-lovelace")
    new.add_argument("--tiers", help="chosen tiers, e.g. A,E (default A,E): >= 1 of A-D and E-H")
    new.add_argument(
        "--notebooks", type=Path, help="solution notebooks to release (default: coursekit's)"
    )
    new.set_defaults(handler=_new)
    check = sub.add_parser("check", help="run the course's quality gates (exit 0 when all pass)")
    check.add_argument(
        "dir", type=Path, nargs="?", default=Path("."), help="the workspace (default .)"
    )
    check.add_argument("--json", action="store_true", help="print JSON (for the grader)")
    check.add_argument("--timeout", type=float, default=600.0, help="seconds for the tests (600)")
    check.set_defaults(handler=_check)
    release = sub.add_parser("release", help="write student versions of solution notebooks")
    release.add_argument("src_dir", type=Path, help="notebooks with # BEGIN SOLUTION regions")
    release.add_argument("out_dir", type=Path, help="where the student versions go")
    release.set_defaults(handler=_release)
