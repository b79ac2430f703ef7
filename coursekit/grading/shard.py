"""Split a class across machines: ``--shard i/n`` grades a deterministic slice of learners.

Shard ``i`` of ``n`` (1-based ``i``) takes the submission names sorted as strings and keeps
those whose 0-based index ``k`` has ``k mod n == i − 1``. For every ``n`` the shards
``1/n .. n/n`` partition the names: each learner is graded by exactly one shard, whatever
machine runs it, as long as every shard sees the same set of folders.

Example:
    >>> [shard_names(["cy", "ada", "bob", "dan", "eve"], i, 2) for i in (1, 2)]
    [['ada', 'cy', 'eve'], ['bob', 'dan']]

Guide: docs/grading.md ("Sharding a class").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from coursekit.errors import CoursekitError

SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """Return ``(i, n)`` of ``--shard i/n``; 1 ≤ i ≤ n.

    Raises:
        CoursekitError: not of the form ``i/n`` with 1 ≤ i ≤ n.

    Example:
        >>> parse_shard("3/8")
        (3, 8)
    """
    match = SHARD.match(text)
    if not match:
        raise CoursekitError(f"--shard {text!r}: not i/n; e.g. --shard 3/8 (the 3rd of 8 shards)")
    index, count = int(match[1]), int(match[2])
    if not 1 <= index <= count:
        raise CoursekitError(
            f"--shard {text}: i must be 1..n (got i = {index}, n = {count}); shards are 1-based"
        )
    return index, count


def shard_names(names: Iterable[str], index: int, count: int) -> list[str]:
    """Return shard ``index`` of ``count`` (1-based) of ``names``: sorted, every ``count``-th.

    Example:
        >>> shard_names(["b", "a", "c"], 3, 3)
        ['c']
    """
    if not 1 <= index <= count:
        raise ValueError(f"shard index must be in 1..{count} (got {index})")
    return sorted(names)[index - 1 :: count]
