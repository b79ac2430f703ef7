"""Merge the grades folders of several shards into one (``coursekit grade merge``).

Each shard (``coursekit grade … --shard i/n --out grades-i``) writes a complete grades
folder for its learners. :func:`merge_outputs` copies every learner folder of every shard
into the target (each copy atomic), refusing a learner graded by two shards with different
results (rows compared without ``flags``, ``seconds`` and ``trace``, which differ between
runs of the same grading); then it recomputes the near-duplicate flags over the union and
writes ``grades.csv``, ``grades.json``, the feedback pages and the cohort report
(:func:`coursekit.grading.batch.write_outputs`).

Example:
    >>> merge_outputs(["grades-1", "grades-2"], "grades")  # doctest: +SKIP
    [{'name': 'ada', ...}, ...]

Guide: docs/grading.md ("Sharding a class").
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from coursekit.errors import CoursekitError
from coursekit.grading.batch import read_rows, write_outputs
from coursekit.io import atomic_directory

VOLATILE = ("flags", "seconds", "trace")
"""Row keys that may differ between two gradings of the same submission."""


def _result(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if key not in VOLATILE}


def merge_outputs(
    shards: list[str | os.PathLike[str]], out: str | os.PathLike[str]
) -> list[dict[str, Any]]:
    """Copy every learner of ``shards`` into ``out``, then write flags, CSV, JSON and reports.

    Args:
        shards: grades folders written by ``coursekit grade --shard``.
        out: the merged grades folder (made if missing; may be one of ``shards``).

    Returns:
        The rows of ``out``, in name order.

    Raises:
        CoursekitError: a shard is not a folder or holds no graded learner, or a learner was
            graded in two shards with different results.

    Example:
        >>> merge_outputs([], "grades")
        Traceback (most recent call last):
        ...
        coursekit.errors.CoursekitError: grade merge: no shard folders given; pass ...
    """
    if not shards:
        raise CoursekitError("grade merge: no shard folders given; pass grades-1 grades-2 …")
    target = Path(out)
    seen: dict[str, tuple[Path, dict[str, Any]]] = {}
    for shard in map(Path, shards):
        if not shard.is_dir():
            raise CoursekitError(f"{shard}: not a grades folder; pass the --out of each shard")
        rows = read_rows(shard)
        if not rows:
            raise CoursekitError(f"{shard}: holds no <learner>/result.json; was it graded?")
        for row in rows:
            name = row["name"]
            if name in seen and _result(seen[name][1]) != _result(row):
                raise CoursekitError(
                    f"learner {name}: graded differently in {seen[name][0]} and {shard}; "
                    f"regrade it once (--only {name} --regrade) and keep one of the two"
                )
            seen.setdefault(name, (shard, row))
    target.mkdir(parents=True, exist_ok=True)
    for name, (shard, _) in sorted(seen.items()):
        source = shard / name
        if source.resolve() == (target / name).resolve():
            continue
        with atomic_directory(target / name) as staging:
            shutil.copytree(source, staging, symlinks=True, dirs_exist_ok=True)
    return write_outputs(target)
