"""Pretrained nano vs a random initialisation of the same config: the same LoRA fine-tune.

    python benchmarks/nano_vs_random.py [--steps 40] [--threads 2] [--seed 0]

Runs the Phase 1 baseline defaults (LoRA r=8 on q/v, 256 training and 64 validation samples
of data/corpus, batch 4, seq 384, lr 2e-3) from the bundled Qwen2.5-Coder-nano and from a
seeded random model of its config, with the same tokenizer, data and budget, and prints both
validation losses (nats per target token) and their difference.
"""

from __future__ import annotations

import argparse
import json
import tempfile

import torch

from coursekit.baseline import BaselineConfig
from coursekit.nano.compare import pretrained_vs_random


def main() -> None:
    """Parse the flags, run both fine-tunes, print a table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = BaselineConfig(model="nano", steps=args.steps, seed=args.seed, device="cpu")
    with tempfile.TemporaryDirectory() as out:
        result = pretrained_vs_random(config, out)
    print(f"{'base':<12}{'val loss start':>16}{'val loss end':>14}{'train s':>10}")
    for name, metrics in result.items():
        print(f"{name:<12}{metrics['val_loss_start']:>16.3f}{metrics['val_loss_end']:>14.3f}"
              f"{metrics['train_seconds']:>10.1f}")  # fmt: skip
    gap = result["random"]["val_loss_end"] - result["pretrained"]["val_loss_end"]
    print(f"random − pretrained, final validation loss: {gap:.3f} nats")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
