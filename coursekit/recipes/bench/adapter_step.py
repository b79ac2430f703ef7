"""CPU forward+backward step time: coursekit LoRA/DoRA against peft LoRA/DoRA on a small Qwen2.

Each variant gets the same random base model and the same adapter settings. Steps are timed
round-robin (one step of each variant per round, the order rotated every round), so load from
other processes hits all variants alike; the table shows the median over rounds after
warm-up, and each ratio is the median of the per-round ratios,
ratio = median_r(t_top[r] / t_bottom[r]) (robust to load that drifts between rounds).
Goals: coursekit LoRA ≤ 1.0× peft LoRA, coursekit DoRA ≤ 1.3× coursekit LoRA.

Used by ``benchmarks/adapter_step.py``.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Mapping

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from coursekit.adapters import AdapterConfig, apply

RATIOS: tuple[tuple[str, str, str, str], ...] = (
    ("coursekit lora / peft lora", "coursekit lora", "peft lora", "<= 1.0"),
    ("coursekit dora / coursekit lora", "coursekit dora", "coursekit lora", "<= 1.3"),
    ("peft dora / peft lora", "peft dora", "peft lora", "(ref)"),
    ("coursekit dora / peft dora", "coursekit dora", "peft dora", "(ref)"),
)
"""(name, numerator variant, denominator variant, goal) of each ratio in the table."""


def build_variants(
    *,
    hidden: int = 256,
    layers: int = 4,
    intermediate: int = 704,
    vocab: int = 4096,
    rank: int = 16,
    targets: str = "all-linear",
    seed: int = 0,
) -> dict[str, torch.nn.Module]:
    """Return {label: model} for coursekit and peft, LoRA and DoRA, on one shared base.

    The base is a random ``Qwen2ForCausalLM`` (4 heads, 2 KV heads, sdpa attention) seeded
    with ``seed``; every adapter has rank ``rank`` and alpha = 2 · rank. Models are in train
    mode.
    """
    from peft import LoraConfig, get_peft_model

    config = Qwen2Config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=intermediate,
        vocab_size=vocab,
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    base = Qwen2ForCausalLM(config)
    variants = {}
    for method in ("lora", "dora"):
        ours = AdapterConfig(method=method, rank=rank, alpha=2.0 * rank, targets=targets)
        variants[f"coursekit {method}"] = apply(copy.deepcopy(base), ours)
        theirs = LoraConfig(
            r=rank,
            lora_alpha=2 * rank,
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


def time_round_robin(
    steps: Mapping[str, Callable[[], float]], *, rounds: int, warmup: int
) -> dict[str, list[float]]:
    """Run ``warmup + rounds`` rounds of one step per variant; keep the timed rounds' seconds.

    Round r starts at variant r mod n (n variants), so no variant always goes first.

    Returns:
        {label: ``rounds`` step times in seconds, in round order}.
    """
    times: dict[str, list[float]] = {label: [] for label in steps}
    labels = list(steps)
    for round_index in range(warmup + rounds):
        shift = round_index % len(labels)  # rotate the order so no variant always goes first
        for label in labels[shift:] + labels[:shift]:
            seconds = steps[label]()
            if round_index >= warmup:
                times[label].append(seconds)
    return times


def measure(
    *,
    hidden: int = 256,
    layers: int = 4,
    intermediate: int = 704,
    vocab: int = 4096,
    batch: int = 4,
    seq: int = 128,
    rank: int = 16,
    targets: str = "all-linear",
    steps: int = 20,
    warmup: int = 3,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Build the four variants and time ``steps`` rounds after ``warmup`` on one batch.

    The batch is ``batch`` × ``seq`` random token ids (generator seeded with 1), its own
    labels.

    Returns:
        {label: seconds per timed step}.
    """
    variants = build_variants(hidden=hidden, layers=layers, intermediate=intermediate,
                              vocab=vocab, rank=rank, targets=targets, seed=seed)  # fmt: skip
    input_ids = torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(1))
    step_fns = {label: step_fn(model, input_ids) for label, model in variants.items()}
    return time_round_robin(step_fns, rounds=steps, warmup=warmup)


def paired_ratio(times: Mapping[str, list[float]], top: str, bottom: str) -> float:
    """Return median_r(times[top][r] / times[bottom][r]) over the rounds."""
    return statistics.median(t / b for t, b in zip(times[top], times[bottom], strict=True))


def format_report(times: Mapping[str, list[float]]) -> str:
    """Return the median ms/step per variant and the :data:`RATIOS` table with their goals."""
    lines = [f"{'variant':<16}{'ms/step':>10}"]
    for label, values in times.items():
        lines.append(f"{label:<16}{statistics.median(values) * 1e3:>10.1f}")
    lines += ["", f"{'ratio':<34}{'value':>8}{'goal':>8}"]
    for name, top, bottom, goal in RATIOS:
        lines.append(f"{name:<34}{paired_ratio(times, top, bottom):>8.2f}{goal:>8}")
    return "\n".join(lines)
