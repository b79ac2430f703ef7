"""One joint run of N LoRA adapters vs N separate runs on CPU: seconds per round and ratio.

A round gives every adapter one AdamW step on its own micro-batch. Joint: one model with
``apply_multi`` takes the N micro-batches concatenated, with an adapter index per example,
in one forward/backward. Separate: N models with ``apply`` (one adapter each) take one step
each. The two setups are timed alternately, round by round, and the best round of each is
compared (timeit's rule: the minimum is the measurement least disturbed by other
processes); medians are printed too. The logic is ``coursekit.recipes.bench.multi_adapter``.

Run: .venv/bin/python benchmarks/multi_adapter.py [--adapters 4] [--rounds 7] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch

from coursekit.recipes.bench.multi_adapter import format_report, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=2, help="examples per adapter")
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds = measure(
        adapters=args.adapters, rounds=args.rounds, batch=args.batch, length=args.length
    )
    print(
        f"N={args.adapters} adapters, {args.batch}×{args.length} tokens each, "
        f"{args.threads} thread(s), {args.rounds} rounds"
    )
    print(format_report(seconds))


if __name__ == "__main__":
    main()
