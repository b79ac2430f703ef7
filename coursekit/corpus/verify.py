r"""Mark the samples whose assembled source compiles and whose reference tests pass.

A sample is a *candidate* when its assembled file (:meth:`Sample.source`: context,
function, tests) is self-contained, using only ``std``, ``core`` and ``alloc``: no
``use`` of another crate, no ``extern crate``, no proptest/quickcheck, no test attribute
from another crate (``#[tokio::test]``). Each candidate is compiled with
``rustc --edition 2021 --test`` and run in the sandbox (:mod:`coursekit.evaluate.rust`),
in parallel up to the core count; those that compile and pass get ``verified=True``.

Example:
    >>> is_self_contained(Sample(id="a", crate="c", version="1", license="MIT",
    ...     path="src/a.rs", function="fn f() {}", tests="use serde::Serialize;"))
    False
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from coursekit.data.corpus import Sample
from coursekit.evaluate.parallel import compile_and_test_many
from coursekit.evaluate.rust import PRELUDE

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
) -> list[Sample]:
    """Return ``samples`` with ``verified`` set from compiling and running each candidate.

    Args:
        samples: the samples; non-candidates come back with ``verified=False``.
        jobs: parallel compile-and-test runs (default: the core count).
        timeout_s: wall-time limit of each test run.
        alternatives: sample id → another context to try when the sample's own fails
            (e.g. the crate-wide one); a sample verified with it keeps that context.

    Example:
        >>> [s.verified for s in verify_samples(samples, jobs=2)]  # doctest: +SKIP
        [True, False]
    """
    passed = _passing(samples, jobs, timeout_s)
    other = alternatives or {}
    retry = [
        i
        for i, s in enumerate(samples)
        if i not in passed and other.get(s.id, s.context) != s.context
    ]
    swapped = [dataclasses.replace(samples[i], context=other[samples[i].id]) for i in retry]
    rescued = {retry[k]: swapped[k] for k in _passing(swapped, jobs, timeout_s)}
    return [
        dataclasses.replace(rescued.get(i, s), verified=i in passed or i in rescued)
        for i, s in enumerate(samples)
    ]


def _passing(samples: Sequence[Sample], jobs: int | None, timeout_s: float) -> set[int]:
    """Return the indices of the candidates among ``samples`` that compile and pass."""
    candidates = [i for i, s in enumerate(samples) if is_self_contained(s)]
    results = compile_and_test_many(
        [PRELUDE + samples[i].source() for i in candidates], jobs=jobs, timeout_s=timeout_s
    )
    return {i for i, result in zip(candidates, results, strict=True) if result.passed}
