"""Pretrained nano vs a random initialisation of the same config: the same LoRA fine-tune.

    python benchmarks/nano_vs_random.py [--steps 40] [--threads 2] [--seed 0]

Runs the Phase 1 baseline defaults (LoRA r=8 on q/v, 256 training and 64 validation samples
of data/corpus, batch 4, seq 384, lr 2e-3) from the bundled Qwen2.5-Coder-nano and from a
seeded random model of its config, with the same tokenizer, data and budget, and prints both
validation losses (nats per target token) and their difference. The logic is
``coursekit.recipes.bench.nano_vs_random``.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import torch

from coursekit.recipes.bench.nano_vs_random import format_table, pretrained_vs_random
from coursekit.recipes.phase1_baseline import baseline_spec


def main() -> None:
    """Parse the flags, run both fine-tunes, print a table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = baseline_spec(model="nano", steps=args.steps, seed=args.seed)
    with tempfile.TemporaryDirectory() as out:
        result = pretrained_vs_random(spec, out, device="cpu")
    print(format_table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
