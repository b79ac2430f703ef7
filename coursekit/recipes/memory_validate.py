"""Falsification test of ``estimate``: |estimate − measured| / measured ≤ 15% on a grid.

The recipe behind ``coursekit memory validate``: it composes the components
:func:`coursekit.memory.estimate.estimate` and :func:`coursekit.memory.measure.measure`.

The claim could be false: the estimate is computed from the architecture alone, the
measurement runs real training steps (``coursekit.memory.measure``) and counts what torch's
allocator hands out. The grid covers LoRA, DoRA, QLoRA and full fine-tuning, several ranks,
batches and sequence lengths, with and without gradient checkpointing and with both attention
implementations, on small Qwen2 models sized so that activations and logits are a large
share of the peak (the parts that are easy to get wrong). One overhead model serves every
point; nothing is tuned per point.

One thing is not on the grid, on purpose: a full fine-tune in bf16. ``measure`` trains in
pure bf16 (torch's AdamW keeps bf16 moments, no master copy) while ``estimate`` counts mixed
precision's fp32 master weights and moments (ZeRO §3.1), so they differ by design. QLoRA is
on it (``qlora-*``): ``nf4_linear`` keeps no dense copy of an NF4 weight for backward, so
only one layer's dequantization is transient, which ``estimate`` counts
(``coursekit.memory.activations.dequantize_bytes``).

Guide: docs/memory.md. Run it with ``coursekit memory validate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from coursekit.adapters import AdapterConfig
from coursekit.memory.estimate import Attention, estimate
from coursekit.memory.measure import measure
from coursekit.tiny import tiny_qwen2_config
from coursekit.train.config import TrainConfig

TOLERANCE = 0.15
"""Largest accepted relative error (the course asks for 20%; we aim tighter)."""


@dataclass(frozen=True, kw_only=True)
class GridPoint:
    """One configuration of the validation grid."""

    name: str
    """Short label for the table."""
    hidden_size: int = 128
    """d of the small Qwen2 model (4 heads, 2 KV heads, f = 2d)."""
    num_hidden_layers: int = 2
    """L."""
    vocab_size: int = 8192
    """V."""
    adapter: AdapterConfig | None = None
    """The adapter, or None for a full fine-tune."""
    train: TrainConfig
    """Batch, sequence length, gradient checkpointing."""
    attention: Attention = "sdpa"
    """Attention implementation."""

    def model_config(self) -> Any:
        """Return the small Qwen2Config of this point."""
        return tiny_qwen2_config(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=2 * self.hidden_size,
            vocab_size=self.vocab_size,
            bos_token_id=None,
            eos_token_id=None,
        )


def _train(batch: int, seq: int, checkpointing: bool = False) -> TrainConfig:
    return TrainConfig(micro_batch_size=batch, seq_len=seq, gradient_checkpointing=checkpointing)


GRID: tuple[GridPoint, ...] = (
    GridPoint(name="lora-qv-r8", adapter=AdapterConfig(rank=8), train=_train(2, 128)),
    GridPoint(name="lora-qv-r64", adapter=AdapterConfig(rank=64), train=_train(4, 256)),
    GridPoint(
        name="lora-all-r16-gc",
        adapter=AdapterConfig(rank=16, targets="all-linear"),
        train=_train(2, 256, True),
        num_hidden_layers=4,
    ),
    GridPoint(
        name="dora-all-r16",
        adapter=AdapterConfig(method="dora", rank=16, targets="all-linear"),
        train=_train(2, 256),
    ),
    GridPoint(
        name="dora-attn-r32-gc",
        adapter=AdapterConfig(method="dora", rank=32, targets="attention"),
        train=_train(4, 128, True),
    ),
    GridPoint(name="full", train=_train(2, 128)),
    GridPoint(name="full-gc", train=_train(4, 256, True), num_hidden_layers=4),
    GridPoint(
        name="lora-eager-s512",
        adapter=AdapterConfig(rank=16, targets="attention"),
        train=_train(2, 512),
        attention="eager",
        vocab_size=4096,
    ),
    GridPoint(
        name="lora-mlp-d256",
        adapter=AdapterConfig(rank=16, targets="mlp"),
        train=_train(2, 256),
        hidden_size=256,
        vocab_size=16384,
    ),
    GridPoint(
        name="full-eager-gc",
        train=_train(2, 256, True),
        attention="eager",
        vocab_size=4096,
    ),
    GridPoint(name="full-b1-s32", train=_train(1, 32)),
    GridPoint(
        name="lora-gc-v512",
        adapter=AdapterConfig(rank=32, targets="all-linear"),
        train=_train(4, 256, True),
        vocab_size=512,
    ),
    GridPoint(
        name="lora-all-accum4",
        adapter=AdapterConfig(rank=16, targets="all-linear"),
        train=TrainConfig(micro_batch_size=2, seq_len=128, gradient_accumulation=4),
    ),
    GridPoint(
        name="lora-all-bf16",
        adapter=AdapterConfig(rank=16, targets="all-linear"),
        train=TrainConfig(micro_batch_size=2, seq_len=256, precision="bf16"),
    ),
    GridPoint(
        name="lora-eager-s1024",
        adapter=AdapterConfig(rank=16, targets="qv"),
        train=_train(1, 1024),
        attention="eager",
        vocab_size=512,
    ),
    GridPoint(
        name="lora-eager-gc-s1024",
        adapter=AdapterConfig(rank=16, targets="all-linear"),
        train=_train(1, 1024, True),
        attention="eager",
        vocab_size=512,
    ),
    GridPoint(name="full-eager-s512", train=_train(2, 512), attention="eager", vocab_size=512),
    GridPoint(
        name="dora-layer1-of-3",
        adapter=AdapterConfig(method="dora", rank=8, targets="all-linear", layers=(1,)),
        train=_train(2, 256),
        vocab_size=1024,
        num_hidden_layers=3,
    ),
    GridPoint(
        name="full-sgd-b1-s64",
        train=TrainConfig(micro_batch_size=1, seq_len=64, optimizer="sgd"),
    ),
    GridPoint(
        name="qlora-all-d512-l4",
        adapter=AdapterConfig(rank=16, targets="all-linear", base_quantization="nf4"),
        train=_train(1, 32),
        hidden_size=512,
        num_hidden_layers=4,
        vocab_size=1024,
    ),
    GridPoint(
        name="qlora-all-d256-gc",
        adapter=AdapterConfig(rank=16, targets="all-linear", base_quantization="nf4"),
        train=_train(4, 256, True),
        hidden_size=256,
        vocab_size=1024,
    ),
)
"""The 21-point grid ``coursekit memory validate`` runs (about 10 s on one CPU core)."""

FAST_GRID: tuple[GridPoint, ...] = (GRID[0], GRID[4], GRID[5])
"""A three-point subset for the quick tests (LoRA, DoRA with checkpointing, full)."""


@dataclass(frozen=True, kw_only=True)
class ValidationRow:
    """Estimate and measurement of one grid point."""

    name: str
    """The point's label."""
    estimated_bytes: int
    """``estimate(...).peak_bytes``."""
    measured_bytes: int
    """``measure(...).peak_bytes``."""
    peak_phase: str
    """Where the estimate puts the peak."""

    @property
    def relative_error(self) -> float:
        """(estimate − measured) / measured."""
        return (self.estimated_bytes - self.measured_bytes) / self.measured_bytes


def validate(grid: Sequence[GridPoint] = GRID, *, device: str = "cpu") -> list[ValidationRow]:
    """Estimate and measure every grid point; return one row per point.

    Measurements run on one intra-op thread (restored afterwards): the allocations are the
    same, and on a shared two-core machine thread hand-offs made the grid 30x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [_row(point, device) for point in grid]
    finally:
        torch.set_num_threads(threads)


def _row(point: GridPoint, device: str) -> ValidationRow:
    """Estimate and measure one grid point."""
    config = point.model_config()
    estimated = estimate(config, point.adapter, point.train, attention=point.attention)
    measured = measure(config, point.adapter, point.train, attention=point.attention, device=device)
    return ValidationRow(
        name=point.name,
        estimated_bytes=estimated.peak_bytes,
        measured_bytes=measured.peak_bytes,
        peak_phase=estimated.peak_phase,
    )


def worst_error(rows: Sequence[ValidationRow]) -> float:
    """Return max |relative error| over the rows."""
    return max(abs(row.relative_error) for row in rows)


def format_table(rows: Sequence[ValidationRow]) -> str:
    """Return the rows as a text table (MiB) and a last line with the worst error."""
    lines = [f"{'point':<20} {'estimate MiB':>12} {'measured MiB':>12} {'error':>7}  peak phase"]
    for row in rows:
        lines.append(
            f"{row.name:<20} {row.estimated_bytes / 2**20:>12.2f} "
            f"{row.measured_bytes / 2**20:>12.2f} {row.relative_error:>+7.1%}  {row.peak_phase}"
        )
    worst = worst_error(rows)
    verdict = "PASS" if worst <= TOLERANCE else "FAIL"
    lines.append(f"worst |error| {worst:.1%} (tolerance {TOLERANCE:.0%}): {verdict}")
    return "\n".join(lines)
