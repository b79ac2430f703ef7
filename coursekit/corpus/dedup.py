r"""Remove exact and near-duplicate samples by hashing their (normalised) text.

Two samples are *exact* duplicates when their function and tests are byte-identical, and
*near* duplicates when their functions are equal after :func:`normalise` (comments removed,
whitespace collapsed): the same function vendored in two crates, or two releases of a
crate packaged side by side. The first sample in id order is kept, so the result does not
depend on the input order.

Example:
    >>> normalise("fn f() {  // one\n    1 /* c */ }")
    'fn f() { 1 }'
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from coursekit.data.corpus import Sample

_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, kw_only=True)
class DedupReport:
    """Samples kept and how many of each kind of duplicate were dropped."""

    kept: list[Sample]
    """The unique samples, in id order."""
    exact: int
    """Dropped because function and tests matched another sample byte for byte."""
    near: int
    """Dropped because the normalised function matched another sample's."""


def normalise(text: str) -> str:
    r"""Return ``text`` without ``//`` and ``/* */`` comments, whitespace runs made one space.

    Comment markers inside string literals are treated as comments too; that can only merge
    more samples, never keep a duplicate.

    Example:
        >>> normalise("a\n\n  b")
        'a b'
    """
    return _SPACE.sub(" ", _COMMENT.sub(" ", text)).strip()


def digest(text: str) -> str:
    """Return the SHA-256 hex digest of ``text``.

    Example:
        >>> digest("")[:8]
        'e3b0c442'
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def deduplicate(samples: Iterable[Sample]) -> DedupReport:
    """Drop exact duplicates, then near duplicates, keeping the first sample by id.

    Example:
        >>> report = deduplicate([a, b])  # doctest: +SKIP
        >>> (len(report.kept), report.exact, report.near)  # doctest: +SKIP
        (1, 1, 0)
    """
    exact_seen: set[str] = set()
    near_seen: set[str] = set()
    kept: list[Sample] = []
    exact = near = 0
    for sample in sorted(samples, key=lambda s: s.id):
        exact_key = digest(sample.function + "\0" + sample.tests)
        near_key = digest(normalise(sample.function))
        if exact_key in exact_seen:
            exact += 1
        elif near_key in near_seen:
            near += 1
        else:
            kept.append(sample)
        exact_seen.add(exact_key)
        near_seen.add(near_key)
    return DedupReport(kept=kept, exact=exact, near=near)
