"""Training throughput: coursekit's loop against HF ``Trainer`` + peft and TRL, same fine-tune.

    python benchmarks/train_throughput.py [--output DIR] [--model tiny] [--steps 12]
        [--batch-size 4] [--seq-len 384] [--rank 8] [--lr 2e-3] [--seed 0] [--threads 2]
        [--engines coursekit,hf,trl] [--methods lora] [--repeats 3]

A thin entry point of ``coursekit bench`` (the same flags; without ``--output`` the files go
to a temporary directory and only the Markdown is printed). Every engine fine-tunes the same
model on the same split with the same LoRA, optimizer, micro-batch size, steps and seed, each
run in its own process, repeated round-robin; the tables give the median and range of target
tokens/s, step time, peak RSS, validation loss and the achieved share of the fp32 matmul
peak, and each engine's ratio to the fastest peer. What each number means is in
docs/benchmarks.md; the logic is in ``coursekit.recipes.bench.suite``.
"""

from __future__ import annotations

import sys
import tempfile

from coursekit.cli import main


def run(argv: list[str]) -> int:
    """Run ``coursekit bench`` with ``argv``, into a temporary folder without ``--output``."""
    if any(a == "--output" or a.startswith("--output=") for a in argv):
        return main(["bench", *argv])
    with tempfile.TemporaryDirectory() as out:
        return main(["bench", "--output", out, *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
