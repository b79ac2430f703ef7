r"""Mark the samples whose assembled source compiles and whose reference tests pass.

A sample is a *candidate* when its assembled file (:meth:`Sample.source`: context,
function, tests) is self-contained, using only ``std``, ``core`` and ``alloc``: no
``use`` of another crate, no ``extern crate``, no proptest/quickcheck, no test attribute
from another crate (``#[tokio::test]``). Each candidate is compiled with
``rustc --edition 2021 --test`` and run in the sandbox (:mod:`coursekit.evaluate.rust`),
in parallel up to the core count; those that compile and pass get ``verified=True``.

Verification is the slow part of a corpus build (thousands of compiles), so with a
``cache`` file it is **resumable**: each result is appended to that JSON Lines file as soon
as its batch of :data:`BATCH` candidates finishes, keyed by the SHA-256 of the rustc version,
the time limit and the assembled source; an interrupted build run again skips every result
already there (a torn last line is ignored).

Example:
    >>> is_self_contained(Sample(id="a", crate="c", version="1", license="MIT",
    ...     path="src/a.rs", function="fn f() {}", tests="use serde::Serialize;"))
    False
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from coursekit.data.corpus import Sample
from coursekit.evaluate.parallel import compile_and_test_many
from coursekit.evaluate.rust import PRELUDE, find_rustc

BATCH = 64
"""Candidates compiled between two appends to the cache."""

_STD_ROOTS = frozenset({"std", "core", "alloc", "super", "self", "crate"})
_USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+:*\s*\{?\s*(\w+)", re.MULTILINE)
_FOREIGN = re.compile(
    r"extern\s+crate\s+(?!(?:alloc|core|std)\b)|proptest!|quickcheck|#\[\s*\w+::test\b"
)


def is_self_contained(sample: Sample) -> bool:
    """Return True when the sample's assembled file uses no crate other than std/core/alloc.

    Example:
        >>> is_self_contained(Sample(id="a", crate="c", version="1", license="MIT",
        ...     path="src/a.rs", function="fn f() {}", tests="use std::fmt;"))
        True
    """
    source = sample.source()
    if _FOREIGN.search(source):
        return False
    return all(root in _STD_ROOTS for root in _USE.findall(source))


def verify_samples(
    samples: Sequence[Sample],
    *,
    jobs: int | None = None,
    timeout_s: float = 10.0,
    alternatives: Mapping[str, str] | None = None,
    cache: str | Path | None = None,
) -> list[Sample]:
    """Return ``samples`` with ``verified`` set from compiling and running each candidate.

    Args:
        samples: the samples; non-candidates come back with ``verified=False``.
        jobs: parallel compile-and-test runs (default: the core count).
        timeout_s: wall-time limit of each test run.
        alternatives: sample id → another context to try when the sample's own fails
            (e.g. the crate-wide one); a sample verified with it keeps that context.
        cache: a JSON Lines file of earlier results to reuse and extend (see the module doc).

    Example:
        >>> [s.verified for s in verify_samples(samples, jobs=2)]  # doctest: +SKIP
        [True, False]
    """
    known = _Cache(Path(cache), timeout_s) if cache is not None else None
    passed = _passing(samples, jobs, timeout_s, known)
    other = alternatives or {}
    retry = [
        i
        for i, s in enumerate(samples)
        if i not in passed and other.get(s.id, s.context) != s.context
    ]
    swapped = [dataclasses.replace(samples[i], context=other[samples[i].id]) for i in retry]
    rescued = {retry[k]: swapped[k] for k in _passing(swapped, jobs, timeout_s, known)}
    return [
        dataclasses.replace(rescued.get(i, s), verified=i in passed or i in rescued)
        for i, s in enumerate(samples)
    ]


def _passing(
    samples: Sequence[Sample], jobs: int | None, timeout_s: float, cache: _Cache | None
) -> set[int]:
    """Return the indices of the candidates among ``samples`` that compile and pass."""
    sources = {i: PRELUDE + s.source() for i, s in enumerate(samples) if is_self_contained(s)}
    done = {i: cache.get(src) for i, src in sources.items()} if cache else {}
    todo = [i for i in sources if done.get(i) is None]
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        results = compile_and_test_many([sources[i] for i in batch], jobs=jobs, timeout_s=timeout_s)
        done |= {i: r.passed for i, r in zip(batch, results, strict=True)}
        if cache:
            cache.add({sources[i]: done[i] for i in batch})
    return {i for i, ok in done.items() if ok}


class _Cache:
    """Verification results in an append-only JSON Lines file (see the module doc)."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        version = subprocess.run(
            [str(find_rustc()), "-vV"], capture_output=True, text=True, check=False
        ).stdout
        self.path, self.salt = path, f"{version}\0{timeout_s}\0"
        self.results: dict[str, bool] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    row = json.loads(line)
                    self.results[row["key"]] = bool(row["passed"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a torn last line from an interrupted run

    def key(self, source: str) -> str:
        return hashlib.sha256((self.salt + source).encode("utf-8")).hexdigest()

    def get(self, source: str) -> bool | None:
        return self.results.get(self.key(source))

    def add(self, results: Mapping[str, bool]) -> None:
        rows = {self.key(source): ok for source, ok in results.items()}
        self.results |= rows
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.writelines(json.dumps({"key": k, "passed": v}) + "\n" for k, v in rows.items())
