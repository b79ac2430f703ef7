"""``TrainConfig``: every setting of a training run, validated on construction.

Shared by the trainer (the training-engine issue), the memory planner (which reads batch,
sequence length, precision, optimizer and gradient checkpointing) and the CLI. The adapter
(LoRA / DoRA / QLoRA) is configured separately by ``coursekit.adapters.AdapterConfig``; a run
without one is a full fine-tune.

Effective batch = ``micro_batch_size × gradient_accumulation × processes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from coursekit import codec

Schedule = Literal["constant", "linear", "cosine"]
Curriculum = Literal["none", "linear", "root", "step"]
Precision = Literal["fp32", "bf16", "fp16"]
Optimizer = Literal["adamw", "adamw-8bit", "sgd"]
OnNonFinite = Literal["stop", "skip"]

SCHEDULES: tuple[str, ...] = ("constant", "linear", "cosine")
CURRICULA: tuple[str, ...] = ("none", "linear", "root", "step")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
OPTIMIZERS: tuple[str, ...] = ("adamw", "adamw-8bit", "sgd")
ON_NONFINITE: tuple[str, ...] = ("stop", "skip")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Settings of one training run (see the module docstring for the batch arithmetic)."""

    max_steps: int | None = 100
    """Optimizer steps to run; exactly one of ``max_steps`` and ``epochs`` is set."""
    epochs: float | None = None
    """Passes over the training split (fractional allowed) when ``max_steps`` is None."""
    micro_batch_size: int = 4
    """Sequences per forward/backward pass (b)."""
    gradient_accumulation: int = 1
    """Micro-batches whose gradients are summed before one optimizer step."""
    learning_rate: float = 2e-4
    """Peak learning rate (after warm-up)."""
    schedule: Schedule = "cosine"
    """Learning-rate shape after warm-up: constant, linear decay to 0, or cosine decay to 0."""
    warmup_steps: int = 0
    """Steps of linear warm-up from 0 to ``learning_rate``."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW)."""
    max_grad_norm: float = 1.0
    """Global L2 norm gradients are clipped to (0 disables clipping)."""
    seq_len: int = 512
    """Longest sequence in tokens (s); with packing, the length of each packed row."""
    packing: bool = True
    """Pack several samples per row (no attention across samples) instead of padding."""
    seed: int = 0
    """Seed of initialisation, data order and dropout."""
    eval_every: int = 50
    """Evaluate on the validation split every this many steps (0 = only at the end)."""
    save_every: int = 0
    """Write a checkpoint every this many steps (0 = never)."""
    keep_last: int = 2
    """How many checkpoints to keep."""
    curriculum: Curriculum = "none"
    """Difficulty pacing: none (random order), linear, root or step."""
    precision: Precision = "fp32"
    """Compute precision: fp32, or bf16/fp16 autocast."""
    optimizer: Optimizer = "adamw"
    """Optimizer: AdamW with fp32 states, AdamW with 8-bit states, or plain SGD (no states)."""
    gradient_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass instead of storing them."""
    on_nonfinite: OnNonFinite = "stop"
    """A step whose loss or gradient norm is NaN or infinite: ``stop`` the run with an error
    naming the step (the last checkpoint stays as it was), or ``skip`` it (no update; the
    metrics rows count the skipped steps in ``skipped_steps``)."""

    def __post_init__(self) -> None:
        """Validate; raise ``ValueError`` naming the field, the value, the rule and the fix."""
        codec.check_types(self)
        if (self.max_steps is None) == (self.epochs is None):
            raise ValueError(
                f"TrainConfig needs exactly one of max_steps and epochs "
                f"(got max_steps={self.max_steps}, epochs={self.epochs}): set one, the other None"
            )
        codec.check_rules(self, self._rules())

    def _rules(self) -> list[tuple[str, bool, str]]:
        at_least = lambda name, low: (name, getattr(self, name) >= low, f"must be >= {low}")  # noqa: E731
        return [
            ("max_steps", self.max_steps is None or self.max_steps >= 1, "must be >= 1 or None"),
            ("epochs", self.epochs is None or self.epochs > 0, "must be > 0 or None"),
            at_least("micro_batch_size", 1),
            at_least("gradient_accumulation", 1),
            ("learning_rate", 0 < self.learning_rate < math.inf, "must be > 0 and finite"),
            ("schedule", self.schedule in SCHEDULES, f"must be one of {list(SCHEDULES)}"),
            at_least("warmup_steps", 0),
            at_least("weight_decay", 0),
            at_least("max_grad_norm", 0),
            at_least("seq_len", 8),
            at_least("eval_every", 0),
            at_least("save_every", 0),
            at_least("keep_last", 1),
            ("curriculum", self.curriculum in CURRICULA, f"must be one of {list(CURRICULA)}"),
            ("precision", self.precision in PRECISIONS, f"must be one of {list(PRECISIONS)}"),
            ("optimizer", self.optimizer in OPTIMIZERS, f"must be one of {list(OPTIMIZERS)}"),
            (
                "on_nonfinite",
                self.on_nonfinite in ON_NONFINITE,
                f"must be one of {list(ON_NONFINITE)}",
            ),
        ]

    @property
    def sequences_per_step(self) -> int:
        """Sequences per optimizer step in one process: micro_batch_size × gradient_accumulation."""
        return self.micro_batch_size * self.gradient_accumulation

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain dict (for ``config.yaml`` and checkpoints)."""
        return codec.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from a dict, coercing values and naming any unknown key.

        Raises:
            ValueError: a key that is not a field (e.g. a typo in a YAML file), or a value
                that is not of its field's type.
        """
        return codec.from_dict(cls, data)

    def differences(self, other: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """Return ``{field: (self's value, other's value)}`` for every field that differs."""
        return codec.differences(self, other)
