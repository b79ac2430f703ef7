"""``coursekit eval``: generate tests for held-out functions, compile and run them, summarise.

Examples:
    coursekit eval --model nano --split test --limit 50 --output runs/eval-nano
    coursekit eval --model nano --adapter runs/phase1-baseline/train/adapter --output runs/eval-r8
    coursekit eval --reference --output runs/eval-reference      # the corpus's own tests

Writes ``samples.jsonl`` (one row per answer: the answer, every funnel stage, the compiler
or test excerpt, the mutant outcomes), ``summary.json`` and ``funnel.png``; a second run with
the same ``--output`` and settings resumes. Guide: docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from coursekit.evaluate.generate import Decoding

_DECODING_FLAGS = ("max_new_tokens", "k", "temperature", "top_p", "repetition_penalty",
                   "no_repeat_ngram_size", "batch_size")  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` command to the ``coursekit`` parser."""
    command = subparsers.add_parser("eval", help="evaluate the tests a model writes (funnel)")
    add = command.add_argument
    add("--output", required=True, help="the evaluation folder (resumed when it exists)")
    add("--model", default="nano", help="nano (default) | a bundled model | a hub id | a directory")
    add("--adapter", default="", help="a saved adapter directory (peft format)")
    add("--data", default="", help="split directory (default: data/corpus)")
    add("--split", default="test", help="train | val | test (default: test)")
    add("--limit", type=int, default=0, help="at most N functions (0: every verified one)")
    add("--mutants", type=int, default=12, help="mutants per function (0: no mutation score)")
    add("--runs", type=int, default=3, help="runs of each test binary (stability)")
    add("--seed", type=int, default=0, help="seed of sampling and of the mutant samples")
    add("--sample", action="store_true", help="sample instead of greedy decoding")
    # --repetition-penalty and --no-repeat-ngram-size default to the model's own
    # generation_config.json (nano: no-repeat n-grams of 6, chosen on val)
    add("--reference", action="store_true", help="judge the corpus's reference tests instead")
    defaults = Decoding()
    kinds = {"temperature": float, "top_p": float, "repetition_penalty": float}
    for name in _DECODING_FLAGS:
        flag, default = f"--{name.replace('_', '-')}", getattr(defaults, name)
        add(flag, type=kinds.get(name, int), default=default)
    command.set_defaults(handler=_eval)


def _spec(args: argparse.Namespace) -> Any:
    from coursekit.recipes.evaluate import EvalSpec

    decoding = Decoding(
        **{name: getattr(args, name) for name in _DECODING_FLAGS},
        do_sample=args.sample,
        seed=args.seed,
    )
    return EvalSpec(
        model=args.model, adapter=args.adapter, data=args.data, split=args.split,
        limit=args.limit, decoding=decoding, mutants=args.mutants, runs=args.runs,
        seed=args.seed,
    )  # fmt: skip


def _eval(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from coursekit.recipes.evaluate import run_eval

    spec = _spec(args)  # validated before anything is loaded
    bar = tqdm(desc="judged", unit="answer", file=sys.stderr, disable=not sys.stderr.isatty())

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    summary = run_eval(spec, args.output, reference=args.reference, on_sample=progress)
    bar.close()
    for stage, rate in summary["funnel"].items():
        print(
            f"{stage:<18} {rate['passed']:>4}/{rate['total']:<4} {rate['rate']:6.1%}  "
            f"[{rate['low']:.1%}, {rate['high']:.1%}]"
        )
    print(f"mutation score     {summary['mutation_score']:.1%} {summary['mutants']}")
    print(f"summary score      {summary['summary_score']:.3f}")
    print(f"written to         {args.output}")
    return 0
