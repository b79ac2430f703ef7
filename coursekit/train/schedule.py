"""Learning-rate schedules: linear warm-up, then constant, linear or cosine decay to 0.

With peak rate η, W warm-up steps and T total steps, the rate of optimizer step t
(0-based, the step about to be taken) is

    η(t) = η · (t + 1) / (W + 1)                      for t < W  (warm-up)
    η(t) = η · shape((t − W) / max(1, T − W))         for t ≥ W

where shape(p) is 1 (constant), 1 − p (linear) or ½(1 + cos πp) (cosine; SGDR, arXiv
1608.03983). The warm-up starts above 0 so that the first step moves the weights.

Guide: docs/training.md. Used in notebooks/phase1_baseline.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import MappingProxyType

import torch

from coursekit.train.config import TrainConfig


def _constant(progress: float) -> float:
    return 1.0


def _linear(progress: float) -> float:
    return 1.0 - progress


def _cosine(progress: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * progress))


SHAPES: MappingProxyType[str, Callable[[float], float]] = MappingProxyType(
    {"constant": _constant, "linear": _linear, "cosine": _cosine}
)
"""``TrainConfig.schedule`` → the decay shape on progress p ∈ [0, 1] after warm-up."""


def lr_factor(step: int, *, schedule: str, warmup_steps: int, total_steps: int) -> float:
    """Return η(t)/η for optimizer step ``step`` (0-based); see the module docstring.

    Example:
        >>> lr_factor(0, schedule="cosine", warmup_steps=0, total_steps=10)
        1.0
        >>> lr_factor(1, schedule="linear", warmup_steps=3, total_steps=10)
        0.5
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return SHAPES[schedule](progress)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Return a ``LambdaLR`` that follows ``lr_factor`` for ``config``'s schedule.

    Its ``state_dict`` (the step count) goes into checkpoints; the factor function is rebuilt
    from the config on resume.
    """

    def factor(step: int) -> float:
        return lr_factor(
            step,
            schedule=config.schedule,
            warmup_steps=config.warmup_steps,
            total_steps=total_steps,
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
