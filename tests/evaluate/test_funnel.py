"""The funnel: stages are cumulative, counts and intervals, the summary score."""

from __future__ import annotations

import doctest

from hypothesis import given
from hypothesis import strategies as st

from coursekit.evaluate import funnel as funnel_module
from coursekit.evaluate.funnel import STAGES, Verdict, funnel, summary_score

verdicts = st.builds(
    Verdict,
    sample_id=st.text(min_size=1, max_size=4),
    well_formed=st.booleans(),
    parses=st.booleans(),
    has_test=st.booleans(),
    compiled=st.booleans(),
    tests_run=st.integers(0, 3),
    passed=st.booleans(),
    asserts=st.booleans(),
    stable=st.booleans(),
    mutation_score=st.one_of(st.none(), st.floats(0, 1)),
)


@given(st.lists(verdicts, max_size=30))
def test_each_stage_counts_at_most_the_one_before(rows):
    counts = [rate.successes for rate in funnel(rows).values()]
    assert counts == sorted(counts, reverse=True)
    assert all(rate.total == len(rows) for rate in funnel(rows).values())
    assert 0.0 <= summary_score(rows) <= 1.0


def test_comments_only_compile_but_do_not_count_as_compiling_tests():
    """rustc's exit status is not the metric: a file without tests compiles and runs 0 tests."""
    comments = Verdict(sample_id="c", well_formed=True, parses=True, has_test=False,
                       compiled=True, tests_run=0, passed=True)  # fmt: skip
    assert comments.stages()["compiles_and_runs"] is False
    no_run = Verdict(sample_id="d", well_formed=True, parses=True, has_test=True,
                     compiled=True, tests_run=0, passed=True)  # fmt: skip
    assert no_run.stages()["compiles_and_runs"] is False and no_run.stages()["passes"] is False


def test_a_later_stage_needs_every_earlier_one():
    skips_parse = Verdict(
        sample_id="x", well_formed=True, parses=False, has_test=True, compiled=True,
        tests_run=1, passed=True, asserts=True, stable=True,
    )  # fmt: skip
    assert [stage for stage, ok in skips_parse.stages().items() if ok] == ["well_formed"]
    assert list(funnel([])) == list(STAGES) and summary_score([]) == 0.0


def test_summary_score_counts_mutation_scores_of_passing_samples_only():
    passing = Verdict(sample_id="p", well_formed=True, parses=True, has_test=True, compiled=True,
                      tests_run=1, passed=True, mutation_score=0.8)  # fmt: skip
    failing = Verdict(sample_id="f", well_formed=True, parses=True, has_test=True, compiled=True,
                      tests_run=1, passed=False, mutation_score=0.9)  # fmt: skip
    assert summary_score([passing, failing]) == 0.4


def test_docstring_examples():
    assert doctest.testmod(funnel_module).failed == 0
