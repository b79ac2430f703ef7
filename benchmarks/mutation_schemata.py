"""Mutation testing with and without mutant schemata, in the same run, on verified functions.

For each verified function of the split, its reference tests are mutation-tested twice:
one schema compile serving every mutant, and one compile per mutant. Reports seconds per
function for each (median over rounds), their ratio, and whether the outcomes agree.

    .venv/bin/python benchmarks/mutation_schemata.py --split test --limit 20 --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import time

from coursekit.data.corpus import default_corpus_dir, load_splits
from coursekit.data.prompts import assistant_message
from coursekit.evaluate.extract import first_code_block
from coursekit.evaluate.judge import mutation_outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--mutants", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    samples = [s for s in load_splits(default_corpus_dir())[args.split] if s.verified]
    samples = samples[: args.limit]
    seconds = {"schema": [], "separate": []}
    agree = 0
    for _ in range(args.rounds):
        for mode in ("schema", "separate"):  # alternated, so load drift hits both alike
            start, outcomes = time.perf_counter(), []
            for sample in samples:
                tests = first_code_block(assistant_message(sample)).code
                counts, _ = mutation_outcomes(
                    sample, tests, 0.0, args.mutants, 0, schemata=mode == "schema"
                )
                outcomes.append(counts)
            seconds[mode].append((time.perf_counter() - start) / len(samples))
            if mode == "schema":
                schema_outcomes = outcomes
            else:
                agree = sum(a == b for a, b in zip(schema_outcomes, outcomes, strict=True))
    schema, separate = (statistics.median(seconds[m]) for m in ("schema", "separate"))
    print(
        f"functions: {len(samples)}, mutants per function: <= {args.mutants}, rounds: {args.rounds}"
    )
    print(f"seconds per function: schema {schema:.2f}, separate {separate:.2f}")
    print(f"speed-up (separate / schema): {separate / schema:.2f}x")
    print(f"functions with identical outcomes in the last round: {agree}/{len(samples)}")


if __name__ == "__main__":
    main()
