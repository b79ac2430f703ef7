"""One joint run of N LoRA adapters vs N separate runs on CPU: seconds per round and ratio.

A round gives every adapter one AdamW step on its own micro-batch. Joint: one model with
``apply_multi`` takes the N micro-batches concatenated, with an adapter index per example,
in one forward/backward. Separate: N models with ``apply`` (one adapter each) take one step
each. The two setups are timed alternately, round by round, and the best round of each is
compared, ratio = min(separate) / min(joint) (timeit's rule: the minimum is the measurement
least disturbed by other processes); medians are reported too.

Used by ``benchmarks/multi_adapter.py``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from coursekit.adapters.config import AdapterConfig
from coursekit.adapters.inject import apply
from coursekit.adapters.multi import adapter_indices, apply_multi, multi_adapter_loss

CONFIG = AdapterConfig(rank=8, alpha=16.0, targets="all-linear")
"""Every adapter of the benchmark."""
VOCAB = 2048
"""Vocabulary of :func:`small_qwen2`."""


def small_qwen2() -> Qwen2ForCausalLM:
    """A small random Qwen2 (seed 0): 4 layers, width 256, GQA 8/2 heads, vocab 2048."""
    torch.manual_seed(0)
    config = Qwen2Config(
        hidden_size=256,
        intermediate_size=704,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=2,
        vocab_size=VOCAB,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    return Qwen2ForCausalLM(config).train()


def random_batches(adapters: int, batch: int, length: int) -> list[torch.Tensor]:
    """Return one (batch, length) micro-batch of random token ids per adapter (seed 1)."""
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(0, VOCAB, (batch, length), generator=generator) for _ in range(adapters)]


def _optimizer(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)


def joint_step(batches: list[torch.Tensor]) -> Callable[[], None]:
    """Return one training round for one ``apply_multi`` model on all N micro-batches at once."""
    model = apply_multi(small_qwen2(), CONFIG, n_adapters=len(batches))
    optimizer = _optimizer(model)
    ids = torch.cat(batches)  # (N·b, s)
    indices = torch.arange(len(batches)).repeat_interleave(batches[0].shape[0])  # (N·b,)

    def step() -> None:
        with adapter_indices(model, indices):
            logits = model(input_ids=ids).logits
        multi_adapter_loss(logits, ids, indices, len(batches)).backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def separate_step(batches: list[torch.Tensor]) -> Callable[[], None]:
    """Return one training round for N single-adapter models taking one step each."""
    models = [apply(small_qwen2(), CONFIG) for _ in batches]
    optimizers = [_optimizer(model) for model in models]

    def step() -> None:
        for model, optimizer, ids in zip(models, optimizers, batches, strict=True):
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()

    return step


def time_rounds(steps: Mapping[str, Callable[[], None]], rounds: int) -> dict[str, list[float]]:
    """Time the steps alternately (so background load hits both alike); one warm-up each."""
    for step in steps.values():
        step()
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def measure(*, adapters: int = 4, rounds: int = 7, batch: int = 2, length: int = 128) -> dict:
    """Time ``rounds`` rounds of the joint and the separate setup; {name: seconds per round}."""
    batches = random_batches(adapters, batch, length)
    return time_rounds({"joint": joint_step(batches), "separate": separate_step(batches)}, rounds)


def format_report(seconds: Mapping[str, list[float]]) -> str:
    """Return best and median seconds per round of each setup and separate / joint (best)."""
    best = {name: min(values) for name, values in seconds.items()}
    median = {name: statistics.median(values) for name, values in seconds.items()}
    return "\n".join([
        f"joint:    best {best['joint']:.3f} s, median {median['joint']:.3f} s per round",
        f"separate: best {best['separate']:.3f} s, median {median['separate']:.3f} s per round",
        f"separate / joint (best) = {best['separate'] / best['joint']:.2f}x",
    ])  # fmt: skip
