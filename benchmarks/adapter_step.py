"""CPU forward+backward step time: coursekit LoRA/DoRA against peft LoRA/DoRA on a small Qwen2.

Run:  .venv/bin/python benchmarks/adapter_step.py --steps 30 --threads 1

Each variant gets the same random base model and the same adapter settings. Steps are timed
round-robin (one step of each variant per round), so load from other processes hits all
variants alike; the table shows the median over rounds after warm-up, and each ratio is the
median of the per-round ratios (robust to load that drifts between rounds). Goals: coursekit LoRA
≤ 1.0× peft LoRA, coursekit DoRA ≤ 1.3× coursekit LoRA. Step time only: the NF4 (QLoRA)
memory line is the QLoRA benchmark's, and this script imports nothing from
coursekit.adapters.nf4. The logic is ``coursekit.recipes.bench.adapter_step``.
"""

from __future__ import annotations

import argparse

import torch

from coursekit.recipes.bench.adapter_step import format_report, measure


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=704)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--targets", default="all-linear")
    parser.add_argument("--steps", type=int, default=20, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 gives stable ratios on busy CPUs)"
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    settings = {k: v for k, v in vars(args).items() if k != "threads"}
    times = measure(**settings)
    print(
        f"Qwen2 hidden={args.hidden} layers={args.layers} vocab={args.vocab} "
        f"batch={args.batch} seq={args.seq} rank={args.rank} targets={args.targets} "
        f"threads={args.threads}; median of {args.steps} steps after {args.warmup} warm-up"
    )
    print(format_report(times))


if __name__ == "__main__":
    main()
