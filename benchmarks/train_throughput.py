"""Training throughput: coursekit's loop against HF ``Trainer`` + peft, same LoRA fine-tune.

    python benchmarks/train_throughput.py [--model tiny] [--steps 12] [--batch-size 4]
        [--seq-len 384] [--rank 8] [--lr 2e-3] [--threads 2]

Both engines fine-tune the same model on the same split (the seed set by default) with the
same LoRA (rank, alpha, q/v targets), optimizer (AdamW, constant lr, clip 1.0), micro-batch
size, steps and seed. Each runs in its own subprocess (this script with ``--engine``), so
each peak RSS is its own. Reported: target tokens/s, peak RSS and the final validation loss,
measured the same way for both; what each means, and why the losses differ (coursekit packs
rows, HF pads), is in ``coursekit.recipes.bench.train_throughput``, which holds the logic.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import torch

from coursekit.recipes.bench.train_throughput import (
    ENGINES,
    format_report,
    measure_engine,
    parse_result,
    result_line,
)

SETTINGS = ("model", "data", "steps", "batch_size", "seq_len", "rank", "lr", "seed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--data", default="")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=384)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--engine", choices=sorted(ENGINES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:  # the child: one engine in this process
        torch.set_num_threads(args.threads)
        result = measure_engine(args.engine, **{k: getattr(args, k) for k in SETTINGS})
        print(result_line(result), flush=True)
        return
    results = {}
    for engine in ("hf", "coursekit"):
        command = [sys.executable, __file__, *sys.argv[1:], "--engine", engine]
        output = subprocess.run(command, capture_output=True, text=True, check=False)
        results[engine] = parse_result(output.stdout)
        if results[engine] is None:
            sys.exit(f"{engine} failed:\n{output.stderr[-3000:]}")
    print(format_report(results))


if __name__ == "__main__":
    main()
