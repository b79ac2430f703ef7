"""Line coverage from ``llvm-cov export`` JSON: segments to lines, as ``llvm-cov`` counts them.

``llvm-cov export -format=text`` writes, per source file, ``segments``: each
``[line, column, count, has_count, is_region_entry, is_gap_region]``, sorted by position,
where a segment starts a stretch of code run ``count`` times (``has_count``) or a stretch
without a count (a region's end, skipped code). :func:`line_counts` turns them into one
execution count per instrumented line, a port of ``LineCoverageStats`` (LLVM's
``llvm/lib/ProfileData/Coverage/CoverageMapping.cpp``), so its totals over a file equal the
``summary.lines`` that ``llvm-cov`` writes beside them (tested on a real export).
:func:`line_coverage` is covered / instrumented lines within a range: the function under test
(:mod:`coursekit.evaluate.coverage` measures it).

Example:
    >>> segments = [[1, 1, 1, True, True, False], [1, 9, 0, False, False, False],
    ...     [2, 5, 0, True, True, False], [2, 7, 0, False, False, False],
    ...     [3, 5, 1, True, True, False], [3, 7, 0, False, False, False]]
    >>> line_counts(segments, range(1, 4)), line_coverage(segments, 1, 3)
    ({1: 1, 2: 0, 3: 1}, 0.6666666666666666)
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any


def line_counts(segments: Sequence[Sequence[Any]], lines: range) -> dict[int, int]:
    """Return {line: execution count} for the instrumented lines of ``lines``, as llvm-cov.

    A segment is ``[line, column, count, has_count, is_region_entry, is_gap_region]``
    (``llvm-cov export``), sorted by position. As ``LineCoverageStats`` (LLVM's
    ``CoverageMapping.cpp``): a line is instrumented when a counted region starts on it, or
    when the segment carried over from an earlier line (the *wrapped* one) has a count, unless
    the line opens with a skipped region; its count is the largest of the regions starting on
    it and the wrapped one. Lines past the last segment are not instrumented.

    Raises:
        ValueError: ``lines`` is no range, or a segment is malformed or out of order (the
            message quotes it).

    Example:
        >>> line_counts([[1, 1, 3, True, True, False], [1, 9, 0, False, False, False],
        ...     [2, 5, 0, True, True, False], [3, 2, 0, False, False, False]], range(1, 5))
        {1: 3, 2: 0, 3: 0}
    """
    if not isinstance(segments, list | tuple):
        raise ValueError(f"llvm-cov segments must be a list (got {segments!r:.60})")
    if not isinstance(lines, range) or lines.step != 1:
        raise ValueError(f"lines must be a range of consecutive lines (got {lines!r:.60})")
    parsed = [_segment(raw) for raw in segments]
    starts = [segment[0] for segment in parsed]
    if starts != sorted(starts):
        raise ValueError(f"llvm-cov segments are out of order (lines {starts[:20]})")
    index = bisect.bisect_left(starts, lines.start)
    wrapped = parsed[index - 1] if index else None
    counts = {}
    for line in lines:
        if not parsed or line > starts[-1]:
            break
        here = []
        while index < len(parsed) and starts[index] == line:
            here.append(parsed[index])
            index += 1
        count = _line_count(here, wrapped)
        if count is not None:
            counts[line] = count
        wrapped = here[-1] if here else wrapped
    return counts


def _segment(raw: Sequence[Any]) -> tuple[int, int, int, bool, bool, bool]:
    """Return one segment as a typed tuple (LLVM before 7 has no gap flag)."""
    shape = "[line, column, count, has_count, is_region_entry, is_gap_region]"
    if not isinstance(raw, list | tuple) or len(raw) not in (5, 6):
        raise ValueError(f"llvm-cov segment must be {shape} (got {raw!r:.80})")
    line, column, count, has_count, entry, *gap = raw
    numbers, flags = (line, column, count), (has_count, entry, *gap)
    if not all(type(n) is int and n >= 0 for n in numbers) or not all(
        type(f) is bool for f in flags
    ):
        raise ValueError(f"llvm-cov segment must be {shape} (got {raw!r:.80})")
    return line, column, count, has_count, entry, bool(gap and gap[0])


def _line_count(here: list[tuple[Any, ...]], wrapped: tuple[Any, ...] | None) -> int | None:
    """One line's execution count, or None when it is not instrumented (``LineCoverageStats``)."""
    region_starts = [s for s in here if s[3] and s[4] and not s[5]]
    skipped = bool(here) and not here[0][3] and here[0][4]
    mapped = not skipped and ((wrapped is not None and wrapped[3]) or bool(region_starts))
    mapped = mapped or any(s[3] and s[4] for s in here)
    if not mapped:
        return None
    count = wrapped[2] if wrapped is not None else 0
    return max([count, *(s[2] for s in region_starts)]) if region_starts else count


def line_coverage(segments: Sequence[Sequence[Any]], first: int, last: int) -> float | None:
    """Return covered / instrumented lines among lines ``first``..``last``; None for none.

    Example:
        >>> line_coverage([[1, 1, 1, True, True, False], [1, 9, 0, False, False, False],
        ...     [2, 3, 0, True, True, False], [3, 2, 0, False, False, False]], 1, 3)
        0.3333333333333333
    """
    if type(first) is not int or type(last) is not int or not 1 <= first <= last:
        raise ValueError(f"line range must satisfy 1 <= first <= last (got {first}..{last})")
    counts = line_counts(segments, range(first, last + 1))
    return sum(c > 0 for c in counts.values()) / len(counts) if counts else None
