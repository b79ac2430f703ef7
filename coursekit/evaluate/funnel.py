"""The evaluation funnel: how many generated test suites survive each stage, with intervals.

A generated answer is judged stage by stage, each stage counting only the samples that passed
every stage before it:

1. **well-formed**: the answer's code block closed by itself (:mod:`coursekit.evaluate.extract`);
2. **parses**: tree-sitter finds no syntax error;
3. **has a test**: at least one ``#[test]`` function;
4. **compiles and runs**: rustc compiled the assembled file *and* at least one test ran.
   rustc's exit status alone is not a compile metric: an answer of comments only compiles;
5. **passes**: every test that ran passed;
6. **asserts**: it passes and at least one test can fail on a wrong result;
7. **stable**: it passed every repeated run (not flaky).

The mutation score of the function under test (:mod:`coursekit.evaluate.mutate`) is reported
for the samples that reach *asserts*. Rates carry Wilson 95% intervals
(:mod:`coursekit.evaluate.metrics`); the summary score is the mean over samples of
passed × mutation score (0 for a sample that did not pass).

Example:
    >>> rows = [Verdict(sample_id="a", well_formed=True, parses=True, has_test=True,
    ...     compiled=True, tests_run=2, passed=True, asserts=True, stable=True,
    ...     mutation_score=0.5), Verdict(sample_id="b")]
    >>> [(stage, str(rate)) for stage, rate in funnel(rows).items()][:2]
    [('well_formed', '1/2 = 50.0% [9.5%, 90.5%]'), ('parses', '1/2 = 50.0% [9.5%, 90.5%]')]
    >>> summary_score(rows)
    0.25
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from coursekit.evaluate.metrics import Rate

STAGES = (
    "well_formed",
    "parses",
    "has_test",
    "compiles_and_runs",
    "passes",
    "asserts",
    "stable",
)
"""The funnel's stages, in order; each counts the samples that passed it and all before it."""


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """What happened to one sample's generated tests.

    Every field is measured by coursekit; none is a number the generated code reported.
    """

    sample_id: str
    """The corpus id of the function under test."""
    well_formed: bool = False
    """The code block closed by itself."""
    parses: bool = False
    """No syntax error (tree-sitter)."""
    has_test: bool = False
    """At least one ``#[test]`` function."""
    compiled: bool = False
    """rustc built the test binary."""
    tests_run: int = 0
    """Tests the harness ran (counted from its output by coursekit, not by the tests)."""
    passed: bool = False
    """Every test that ran passed."""
    asserts: bool = False
    """At least one test can fail on a wrong result (an assertion, should_panic, Result)."""
    stable: bool = False
    """Passed on every repeated run."""
    mutation_score: float | None = None
    """Caught / viable mutants of the function under test; None when not measured."""

    def stages(self) -> dict[str, bool]:
        """Return {stage: reached}, each stage requiring every stage before it."""
        raw = {
            "well_formed": self.well_formed,
            "parses": self.parses,
            "has_test": self.has_test,
            "compiles_and_runs": self.compiled and self.tests_run >= 1,
            "passes": self.compiled and self.tests_run >= 1 and self.passed,
            "asserts": self.asserts,
            "stable": self.stable,
        }
        reached, so_far = {}, True
        for stage in STAGES:
            so_far = so_far and raw[stage]
            reached[stage] = so_far
        return reached


def funnel(verdicts: Sequence[Verdict]) -> dict[str, Rate]:
    """Return {stage: Rate over all samples} for each stage of ``STAGES``."""
    reached = [verdict.stages() for verdict in verdicts]
    return {
        stage: Rate(successes=sum(row[stage] for row in reached), total=len(verdicts))
        for stage in STAGES
    }


def summary_score(verdicts: Sequence[Verdict]) -> float:
    """Return the mean over samples of passed × mutation score (0 without both); 0 for none."""
    if not verdicts:
        return 0.0
    scores = [(v.mutation_score or 0.0) if v.stages()["passes"] else 0.0 for v in verdicts]
    return sum(scores) / len(verdicts)
