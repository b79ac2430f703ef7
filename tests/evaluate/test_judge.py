"""Judging answers end to end on the seed set: references pass and catch mutants; weakened
copies (assertions removed) catch fewer: a falsification test of the mutation score."""

from __future__ import annotations

import re

import pytest

from coursekit.data.corpus import load_splits, seed_dir
from coursekit.data.prompts import assistant_message
from coursekit.evaluate.judge import assemble, chosen_mutants, judge, outcome
from coursekit.evaluate.rust import RustTestResult

NO_ASSERT = "macro_rules! no_assert { ($($t:tt)*) => { () }; }\n"


def weakened(answer: str) -> str:
    """The same tests with every assert*! macro made a no-op (they still compile and run)."""
    answer = answer.replace("```rust\n", "```rust\n" + NO_ASSERT, 1)
    return re.sub(r"\b(?:debug_)?assert(?:_eq|_ne)?!", "no_assert!", answer)


@pytest.fixture(scope="module")
def samples(rustc):
    return load_splits(seed_dir())["test"][:6]


@pytest.mark.slow
@pytest.mark.heavy
def test_references_pass_stably_and_score_higher_than_weakened_copies(samples):
    """Claim that could be false: removing the assertions lowers the pooled mutation score.

    Each reference must pass on all 3 runs (the corpus's verified tests are the upper bound);
    the weakened copies must still pass (they are valid tests) and catch fewer mutants.
    """
    strong = {"caught": 0, "missed": 0}
    weak = {"caught": 0, "missed": 0}
    for sample in samples:
        reference = judge(sample, assistant_message(sample))
        assert reference.verdict.stages()["stable"], reference.output
        copy = judge(sample, weakened(assistant_message(sample)))
        assert copy.verdict.stages()["passes"] and copy.verdict.stable
        for totals, judged in ((strong, reference), (weak, copy)):
            for key in totals:
                totals[key] += judged.mutants[key]
    strong_score = strong["caught"] / (strong["caught"] + strong["missed"])
    weak_score = weak["caught"] / (weak["caught"] + weak["missed"])
    assert strong_score >= 0.8 and weak_score < strong_score - 0.3, (strong, weak)


def test_answers_without_a_block_or_a_test_stop_early(samples):
    sample = samples[0]
    assert not any(judge(sample, "no code here").verdict.stages().values())
    comments = judge(sample, "```rust\n// only a comment\n```")
    assert comments.verdict.parses and not comments.verdict.has_test
    assert not comments.verdict.compiled  # never compiled: rustc's exit status is no metric


@pytest.mark.slow
def test_a_failing_suite_is_compiled_but_not_mutated(samples):
    sample = samples[0]
    failing = "```rust\n#[test]\nfn nope() { assert_eq!(1, 2); }\n```"
    judged = judge(sample, failing)
    stages = judged.verdict.stages()
    assert stages["compiles_and_runs"] and not stages["passes"]
    assert judged.verdict.mutation_score is None and sum(judged.mutants.values()) == 0


def test_mutant_sample_is_seeded_and_capped(samples):
    sample = max(samples, key=lambda s: len(s.function))
    first = chosen_mutants(sample, 3, seed=1)
    assert len(first) == min(3, len(chosen_mutants(sample, 10_000, seed=1)))
    assert first == chosen_mutants(sample, 3, seed=1)
    assert assemble(sample, "mod t {}").endswith("mod t {}\n")


def test_outcome_follows_cargo_mutants():
    base = {"tests_run": 1, "tests_failed": 0, "compile_seconds": 0.1, "run_seconds": 0.1}
    base |= {"output": "", "timed_out": False}
    assert outcome(RustTestResult(compiled=False, passed=False, **base)) == "unviable"
    assert outcome(RustTestResult(compiled=True, passed=True, **base)) == "missed"
    assert outcome(RustTestResult(compiled=True, passed=False, **base)) == "caught"
    timed = base | {"timed_out": True}
    assert outcome(RustTestResult(compiled=True, passed=False, **timed)) == "timeout"
