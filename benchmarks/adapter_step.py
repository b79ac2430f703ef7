"""CPU forward+backward step time: coursekit LoRA/DoRA against peft LoRA/DoRA on a small Qwen2.

Run:  .venv/bin/python benchmarks/adapter_step.py --steps 30 --threads 1

Each variant gets the same random base model and the same adapter settings. Steps are timed
round-robin (one step of each variant per round), so load from other processes hits all
variants alike; the table shows the median over rounds after warm-up, and each ratio is the
median of the per-round ratios (robust to load that drifts between rounds). Goals: coursekit LoRA
≤ 1.0× peft LoRA, coursekit DoRA ≤ 1.3× coursekit LoRA. Step time only: the NF4 (QLoRA)
memory line is the QLoRA benchmark's, and this script imports nothing from
coursekit.adapters.nf4 (see the marked place at the end of ``main``).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from peft import LoraConfig, get_peft_model
from transformers import Qwen2Config, Qwen2ForCausalLM

from coursekit.adapters import AdapterConfig, apply


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


def build_variants(args: argparse.Namespace) -> dict[str, torch.nn.Module]:
    """Return {label: model} for coursekit and peft, LoRA and DoRA, on one shared base."""
    config = Qwen2Config(
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=args.intermediate,
        vocab_size=args.vocab,
        attn_implementation="sdpa",
    )
    torch.manual_seed(args.seed)
    base = Qwen2ForCausalLM(config)
    variants = {}
    for method in ("lora", "dora"):
        ours = AdapterConfig(
            method=method, rank=args.rank, alpha=2.0 * args.rank, targets=args.targets
        )
        variants[f"coursekit {method}"] = apply(copy.deepcopy(base), ours)
        theirs = LoraConfig(
            r=args.rank,
            lora_alpha=2 * args.rank,
            target_modules=list(ours.target_names),
            use_dora=method == "dora",
            task_type="CAUSAL_LM",
        )
        variants[f"peft {method}"] = get_peft_model(copy.deepcopy(base), theirs)
    for model in variants.values():
        model.train()
    return variants


def step_fn(model: torch.nn.Module, input_ids: torch.Tensor) -> Callable[[], float]:
    """Return a closure that runs one forward+backward step and returns its seconds."""

    def step() -> float:
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        model(input_ids, labels=input_ids).loss.backward()
        return time.perf_counter() - start

    return step


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    variants = build_variants(args)
    input_ids = torch.randint(
        0, args.vocab, (args.batch, args.seq), generator=torch.Generator().manual_seed(1)
    )
    steps = {label: step_fn(model, input_ids) for label, model in variants.items()}
    times: dict[str, list[float]] = {label: [] for label in steps}
    labels = list(steps)
    for round_index in range(args.warmup + args.steps):
        shift = round_index % len(labels)  # rotate the order so no variant always goes first
        for label in labels[shift:] + labels[:shift]:
            seconds = steps[label]()
            if round_index >= args.warmup:
                times[label].append(seconds)
    median = {label: statistics.median(values) * 1e3 for label, values in times.items()}
    print(
        f"Qwen2 hidden={args.hidden} layers={args.layers} vocab={args.vocab} "
        f"batch={args.batch} seq={args.seq} rank={args.rank} targets={args.targets} "
        f"threads={args.threads}; median of {args.steps} steps after {args.warmup} warm-up"
    )
    print(f"{'variant':<16}{'ms/step':>10}")
    for label, value in median.items():
        print(f"{label:<16}{value:>10.1f}")
    print()
    print(f"{'ratio':<34}{'value':>8}{'goal':>8}")
    ratios = [
        ("coursekit lora / peft lora", "coursekit lora", "peft lora", "<= 1.0"),
        ("coursekit dora / coursekit lora", "coursekit dora", "coursekit lora", "<= 1.3"),
        ("peft dora / peft lora", "peft dora", "peft lora", "(ref)"),
        ("coursekit dora / peft dora", "coursekit dora", "peft dora", "(ref)"),
    ]
    for name, top, bottom, goal in ratios:
        paired = statistics.median(t / b for t, b in zip(times[top], times[bottom], strict=True))
        print(f"{name:<34}{paired:>8.2f}{goal:>8}")
    # NF4 memory line: the QLoRA benchmark reports it (coursekit.adapters.nf4), not this script.


if __name__ == "__main__":
    main()
