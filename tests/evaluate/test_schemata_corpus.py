"""Schemata and one compile per mutant give identical outcomes on verified corpus functions.

A seeded draw of the committed corpus's verified test-split functions (whichever they are
after a re-deal: no id is named here), each with the judge's seeded sample of at most
``MUTANTS`` mutants, tested by its reference tests and by a weakened copy (assertions made
no-ops, so that mutants are *missed* too, not only *caught*). Every mutant runs twice per
suite: selected by ``COURSEKIT_MUTANT`` in one schema compile, and compiled on its own.
Their cargo-mutants outcomes must be equal mutant by mutant, and the unmutated schema must
pass as the original does. A function whose schema does not compile is not compared (the
judge compiles its mutants one by one then) and the next one in the draw takes its place.
"""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from coursekit.data.corpus import Sample, default_corpus_dir, load_splits
from coursekit.evaluate.judge import assemble, chosen_mutants, outcome
from coursekit.evaluate.mutate import ENV_VAR, Mutant, apply, schema
from coursekit.evaluate.rust import compile_and_run, compile_and_test

FUNCTIONS = 6
"""Functions compared (each: per suite, one schema compile and one compile per mutant)."""
MUTANTS = 5
"""Mutants per function, at most."""
SEED = 7
"""Seed of the draw of functions and of each function's mutants."""
TIMEOUT_S = 5.0
"""Time limit of every run: far above a reference suite's milliseconds, so only a mutant
that really hangs times out, and it does so under both compilations."""
NO_ASSERT = "macro_rules! no_assert { ($($t:tt)*) => { () }; }\n"


def weakened(tests: str) -> str:
    """The same tests with every ``assert*!`` made a no-op: they compile, run and pass."""
    return NO_ASSERT + re.sub(r"\b(?:debug_)?assert(?:_eq|_ne)?!", "no_assert!", tests)


def outcomes(sample: Sample, tests: str, chosen: list[Mutant]) -> list[tuple[str, str, str]]:
    """Return (what, outcome in the schema, outcome compiled alone), unmutated first.

    Empty when the schema does not compile.
    """
    envs = [{}] + [{ENV_VAR: str(mutant.id)} for mutant in chosen]
    source = assemble(sample, tests, schema(sample.function, chosen))
    baseline, *switched = compile_and_run(source, envs=envs, timeout_s=TIMEOUT_S)
    if not baseline.compiled:
        return []
    original = compile_and_test(assemble(sample, tests), timeout_s=TIMEOUT_S)
    rows = [("unmutated", outcome(baseline), outcome(original))]
    for mutant, in_schema in zip(chosen, switched, strict=True):
        mutated = assemble(sample, tests, apply(sample.function, mutant))
        alone = compile_and_test(mutated, timeout_s=TIMEOUT_S)
        rows.append(
            (f"mutant {mutant.id} ({mutant.describe()})", outcome(in_schema), outcome(alone))
        )
    return rows


@pytest.mark.slow
@pytest.mark.heavy
def test_schema_and_separate_compiles_agree_mutant_by_mutant(rustc):
    verified = sorted(
        (s for s in load_splits(default_corpus_dir())["test"] if s.verified), key=lambda s: s.id
    )
    compared, passed_over, mismatches, tally = [], [], [], Counter()
    for sample in random.Random(SEED).sample(verified, len(verified)):
        if len(compared) == FUNCTIONS:
            break
        chosen = chosen_mutants(sample, MUTANTS, SEED)
        rows = outcomes(sample, sample.tests, chosen) if chosen else []
        if not rows:
            passed_over.append(sample.id)
            continue
        rows += outcomes(sample, weakened(sample.tests), chosen)
        for what, in_schema, alone in rows:
            tally[in_schema] += what != "unmutated"
            if in_schema != alone:
                mismatches.append(f"{sample.id} {what}: schema {in_schema}, compiled alone {alone}")
        compared.append(sample.id)
    assert len(compared) == FUNCTIONS, (
        f"only {len(compared)} of {len(verified)} verified functions had a schema that "
        f"compiles (passed over: {passed_over})"
    )
    assert not mismatches, "\n".join(mismatches)
    assert tally["caught"] and tally["missed"], f"agreement on one outcome only: {tally}"
