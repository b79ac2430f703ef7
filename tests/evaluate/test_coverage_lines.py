"""llvm-cov export's segments to line counts, on a hand-written export that hits every rule.

The fixture follows ``llvm-cov export -format=text`` (``CoverageExporterJson.cpp``): ``data[0]
.files[].segments`` of ``[line, column, count, has_count, is_region_entry, is_gap_region]``,
with the file's ``summary.lines`` that llvm-cov would write beside them, computed by hand
from ``LineCoverageStats``. The same totals are checked against a real llvm-cov in
``test_coverage.py`` when the tools are installed.
"""

from __future__ import annotations

import pytest

from coursekit.evaluate.coverage_lines import line_counts, line_coverage

T, F = True, False
EXPORT = {
    "type": "llvm.coverage.json.export",
    "version": "2.0.1",
    "data": [
        {
            "files": [
                {
                    "filename": "/tmp/coursekit-cov-x/src.rs",
                    "segments": [
                        [1, 1, 2, T, T, F],  # a region starts: 2
                        # line 2: none; the region from line 1 wraps over it: 2
                        [3, 5, 7, T, T, F],  # two regions start: the larger, 7
                        [3, 9, 3, T, T, F],
                        [4, 5, 0, T, T, F],  # wrapped 3 beats the region's 0
                        [4, 20, 2, T, F, F],  # not a region entry: no say in the count
                        [5, 1, 0, F, T, F],  # opens with a skipped region: not instrumented
                        # line 6: wraps a segment without a count: not instrumented
                        [7, 3, 5, T, F, T],  # a gap, no entry, nothing wraps: not instrumented
                        [8, 3, 0, T, T, T],  # a gap region starts: the wrapped gap's 5 counts
                        [9, 1, 0, F, F, F],  # a region ends; the gap from line 8 wraps: 0
                        [10, 1, 0, F, T, F],  # skipped start, then a counted entry: 1
                        [10, 4, 1, T, T, F],
                        [11, 1, 4, T, T, F],
                        [11, 8, 0, F, F, F],
                        # line 12: wraps the end of line 11: not instrumented; 13: past the end
                    ],
                    "summary": {"lines": {"count": 8, "covered": 7, "percent": 87.5}},
                }
            ],
            "totals": {"lines": {"count": 8, "covered": 7, "percent": 87.5}},
        }
    ],
}
FILE = EXPORT["data"][0]["files"][0]
EXPECTED = {1: 2, 2: 2, 3: 7, 4: 3, 8: 5, 9: 0, 10: 1, 11: 4}


def test_every_rule_of_line_coverage_stats_gives_the_hand_computed_counts():
    counts = line_counts(FILE["segments"], range(1, 14))
    assert counts == EXPECTED
    lines = FILE["summary"]["lines"]
    assert (len(counts), sum(c > 0 for c in counts.values())) == (lines["count"], lines["covered"])


def test_a_range_starting_mid_file_keeps_the_segment_wrapping_into_it():
    assert line_counts(FILE["segments"], range(2, 3)) == {2: 2}  # wrapped from line 1
    assert line_counts(FILE["segments"], range(6, 7)) == {}


def test_line_coverage_is_covered_over_instrumented_in_the_range():
    assert line_coverage(FILE["segments"], 3, 9) == 3 / 4  # lines 3, 4, 8, 9; 9 never ran
    assert line_coverage(FILE["segments"], 1, 13) == 7 / 8
    assert line_coverage(FILE["segments"], 5, 7) is None  # nothing instrumented
    assert line_coverage([], 1, 5) is None


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([[1, 1, 2, T]], r"segment must be \[line, column, count"),
        ([[1, 1, -2, T, T, F]], r"got \[1, 1, -2"),
        ([[1, 1, 2, "yes", T, F]], "segment must be"),
        ([[3, 1, 2, T, T, F], [2, 1, 0, F, F, F]], "out of order"),
    ],
)
def test_malformed_segments_are_named(segments, message):
    with pytest.raises(ValueError, match=message):
        line_counts(segments, range(1, 5))


def test_an_empty_line_range_is_refused():
    with pytest.raises(ValueError, match=r"1 <= first <= last \(got 5..4\)"):
        line_coverage(FILE["segments"], 5, 4)
