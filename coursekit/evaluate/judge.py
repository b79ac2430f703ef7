"""Judge one generated answer for one function: every funnel stage, then its mutation score.

The answer's first code block (:mod:`coursekit.evaluate.extract`) takes the place of the
sample's reference tests in the assembled file (context, function, tests; the same file the
corpus verification compiles). One sandboxed compile serves ``runs`` runs of the test binary
(:func:`coursekit.evaluate.rust.compile_and_run`): the first decides *compiles and runs* and
*passes*, all of them *stable*. For a suite that passes on every run (asserting or not), up
to ``max_mutants`` mutants of the function under test (:mod:`coursekit.evaluate.mutate`, a
seeded sample) are run:

- as one **schema** compile, each mutant selected by ``COURSEKIT_MUTANT``; the unmutated
  schema must pass first (the baseline), and each mutant's time limit is
  ``TIME_FACTOR`` × the baseline's run time (at least ``MIN_MUTANT_SECONDS``);
- one compile per mutant when the schema does not compile (a ``const fn``, say).

Outcomes follow cargo-mutants: *caught* (the suite fails), *missed* (it passes), *unviable*
(the mutant does not compile) and *timeout*. The mutation score is caught / (caught + missed);
unviable and timed-out mutants are reported apart and left out of it.

Given coverage tools (:func:`coursekit.evaluate.coverage.find_tools`), a suite that compiles
and runs is also compiled instrumented: its line coverage of the function under test
(:func:`function_lines` in the assembled file) is a number in [0, 1], or None when the tools
are unavailable or the measurement fails.

Example:
    >>> judgement = judge(sample, answer)  # doctest: +SKIP
    >>> judgement.verdict.stages()["passes"], judgement.mutants["caught"]  # doctest: +SKIP
    (True, 7)
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field

from coursekit.data.corpus import Sample
from coursekit.evaluate.coverage import CoverageTools, measure
from coursekit.evaluate.extract import asserts, first_code_block, parses, test_names
from coursekit.evaluate.funnel import Verdict
from coursekit.evaluate.mutate import ENV_VAR, Mutant, apply, mutants, schema
from coursekit.evaluate.rust import PRELUDE, RustTestResult, compile_and_run

TIME_FACTOR = 5.0
"""A mutant's run may take this many times the unmutated run before it counts as a timeout."""
MIN_MUTANT_SECONDS = 2.0
"""The shortest time limit of a mutant's run."""
OUTCOMES = ("caught", "missed", "unviable", "timeout")
"""cargo-mutants' outcomes of a mutant."""


@dataclass(frozen=True, kw_only=True)
class Judgement:
    """One sample's verdict and the evidence behind it (for ``samples.jsonl``)."""

    verdict: Verdict
    """The funnel stages reached and the mutation score."""
    code: str = ""
    """The code block judged (empty when the answer had none)."""
    output: str = ""
    """Compiler or test-run excerpt of the first run."""
    mutants: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    """Count per outcome (all zero when mutation testing did not run)."""
    schema_used: bool = False
    """Whether one schema compile served the mutants (else one compile each)."""
    coverage: float | None = None
    """Line coverage of the function under test by the tests; None when not measured."""


def assemble(sample: Sample, tests: str, function: str | None = None) -> str:
    """Return the file to compile: prelude, context, ``function`` (default the sample's), tests."""
    body = dataclasses.replace(sample, function=function or sample.function, tests=tests)
    return PRELUDE + body.source()


def function_lines(sample: Sample) -> tuple[int, int]:
    r"""Return the first and last line (1-based) of ``sample.function`` in :func:`assemble`'s file.

    Example:
        >>> sample = Sample(id="a", crate="c", version="1", license="MIT", path="src/a.rs",
        ...     context="use std::fmt;", function="fn f() {\n}", tests="mod tests {}")
        >>> function_lines(sample)
        (4, 5)
    """
    head = PRELUDE + (sample.context.strip("\n") + "\n\n" if sample.context.strip() else "")
    first = head.count("\n") + 1
    return first, first + sample.function.strip("\n").count("\n")


def judge(
    sample: Sample,
    answer: str,
    *,
    runs: int = 3,
    max_mutants: int = 12,
    seed: int = 0,
    timeout_s: float = 10.0,
    coverage_tools: CoverageTools | None = None,
) -> Judgement:
    """Judge ``answer`` (a model's reply) as the tests of ``sample.function``.

    Args:
        sample: the function under test, with its context.
        answer: the generated reply; its first code block is the test code.
        runs: runs of the test binary for the stability stage (>= 1).
        max_mutants: mutants sampled per function (seeded by ``seed`` and the sample's id).
        seed: the mutant sample's seed.
        timeout_s: wall-time limit of one unmutated test run.
        coverage_tools: tools to measure line coverage with (None: not measured).
    """
    block = first_code_block(answer)
    if block is None:
        return Judgement(verdict=Verdict(sample_id=sample.id))
    code = block.code
    facts = {
        "well_formed": block.well_formed,
        "parses": parses(code),
        "has_test": bool(test_names(code)),
        "asserts": asserts(code),
    }
    if not (facts["parses"] and facts["has_test"]):
        return Judgement(verdict=Verdict(sample_id=sample.id, **facts), code=code)
    source = assemble(sample, code)
    results = compile_and_run(source, envs=[{}] * runs, timeout_s=timeout_s)
    first = results[0]
    verdict = Verdict(
        sample_id=sample.id,
        compiled=first.compiled,
        tests_run=first.tests_run,
        passed=first.passed,
        stable=all(r.passed for r in results),
        **facts,
    )
    coverage = None
    if coverage_tools is not None and verdict.stages()["compiles_and_runs"]:
        coverage = measure(source, function_lines(sample), coverage_tools, timeout_s=timeout_s)
    # mutants run for every suite that passes on every run, asserting or not: the score is
    # the dynamic measure of what the static *asserts* stage only guesses
    if not (verdict.stages()["passes"] and verdict.stable and max_mutants > 0):
        return Judgement(verdict=verdict, code=code, output=first.output, coverage=coverage)
    baseline_seconds = max(r.run_seconds for r in results)
    counts, used = mutation_outcomes(sample, code, baseline_seconds, max_mutants, seed)
    caught, missed = counts["caught"], counts["missed"]
    score = caught / (caught + missed) if caught + missed else None
    return Judgement(
        verdict=dataclasses.replace(verdict, mutation_score=score),
        code=code,
        output=first.output,
        mutants=counts,
        schema_used=used,
        coverage=coverage,
    )


def chosen_mutants(sample: Sample, max_mutants: int, seed: int) -> list[Mutant]:
    """Return at most ``max_mutants`` mutants of the sample's function, a seeded sample."""
    found = mutants(sample.function)
    if len(found) <= max_mutants:
        return found
    picked = random.Random(f"{seed}:{sample.id}").sample(found, max_mutants)
    return sorted(picked, key=lambda mutant: mutant.id)


def mutation_outcomes(
    sample: Sample,
    tests: str,
    baseline_seconds: float,
    max_mutants: int,
    seed: int,
    *,
    schemata: bool = True,
) -> tuple[dict[str, int], bool]:
    """Return ({outcome: count}, whether one schema compile served) for the sampled mutants.

    ``schemata=False`` compiles every mutant on its own (the reference the schema path is
    tested and benchmarked against).
    """
    chosen = chosen_mutants(sample, max_mutants, seed)
    limit = max(MIN_MUTANT_SECONDS, TIME_FACTOR * baseline_seconds)
    counts = dict.fromkeys(OUTCOMES, 0)
    if not chosen:
        return counts, False
    envs = [{}] + [{ENV_VAR: str(mutant.id)} for mutant in chosen] if schemata else [{}]
    source = schema(sample.function, chosen) if schemata else sample.function
    runs = compile_and_run(assemble(sample, tests, source), envs=envs, timeout_s=limit)
    schema_ok = schemata and runs[0].compiled and runs[0].passed
    if not schema_ok:  # no schema, or it does not compile (or changes the unmutated behaviour)
        runs = [runs[0]] + [
            compile_and_run(assemble(sample, tests, apply(sample.function, m)), timeout_s=limit)[0]
            for m in chosen
        ]
    for result in runs[1:]:
        counts[outcome(result)] += 1
    return counts, schema_ok


def outcome(result: RustTestResult) -> str:
    """Return cargo-mutants' outcome of one mutant's compile and run."""
    if not result.compiled:
        return "unviable"
    if result.timed_out:
        return "timeout"
    return "missed" if result.passed else "caught"
