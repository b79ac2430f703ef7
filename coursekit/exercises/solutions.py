"""Reference answers to the exercises, in the exact signatures ``coursekit.check`` expects.

These are the solutions the source notebooks carry between ``# BEGIN SOLUTION`` and
``# END SOLUTION``; tests/exercises check each of them with ``coursekit.check`` (so the
checks are known to pass a right answer). The checks themselves compare against coursekit's
library code (``DoRALinear``, ``fake_quantize_int4``, ``steepest``, the training loop), not
against these functions.

Guide: docs/exercises.md.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from coursekit.adapters.qat import fake_quantize_int4


def suggest_lr(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """C: return lr_i at argmin_i (loss_{i+1} − loss_i) / (ln lr_{i+1} − ln lr_i).

    Example:
        >>> suggest_lr([1e-3, 1e-2, 1e-1, 1.0], [3.0, 2.9, 1.0, 0.9])
        0.01
    """
    if len(lrs) == 1:
        return float(lrs[0])
    slopes = [
        (losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i]))
        for i in range(len(lrs) - 1)
    ]
    return float(lrs[slopes.index(min(slopes))])


def step_loss(loss_sums: Sequence[Tensor], token_counts: Sequence[int]) -> Tensor:
    """D: return L = Σ_j S_j / Σ_j n_j, the mean loss over every target token of the step.

    Example:
        >>> step_loss([torch.tensor(2.0), torch.tensor(3.0)], [1, 3])
        tensor(1.2500)
    """
    return torch.stack(list(loss_sums)).sum() / sum(token_counts)


def dora_forward(
    x: Tensor, W0: Tensor, b: Tensor | None, A: Tensor, B: Tensor, m: Tensor, scale: float
) -> Tensor:
    """E: return y = m ⊙ (W₀ + s·B·A)x / ‖W₀ + s·B·A‖ + b, the norm per output row, detached.

    Shapes: x (…, d_in), W0 (d_out, d_in), b (d_out,) or None, A (r, d_in), B (d_out, r),
    m (d_out,); y (…, d_out).

    Example:
        >>> W0 = torch.eye(2)
        >>> dora_forward(torch.ones(1, 2), W0, None, torch.zeros(1, 2), torch.zeros(2, 1),
        ...              torch.full((2,), 3.0), 2.0)
        tensor([[3., 3.]])
    """
    weight = W0 + scale * B @ A  # (d_out, d_in)
    norm = weight.norm(dim=1).detach()  # (d_out,): a constant in backward (DoRA §4.3)
    y = (x @ weight.T) * (m / norm)  # (…, d_out)
    return y if b is None else y + b


def fake_quant_ste(weight: Tensor) -> Tensor:
    """F: return a tensor whose value is Q_int4(W) and whose gradient w.r.t. W is the identity.

    Example:
        >>> w = torch.linspace(-1, 1, 64, requires_grad=True)
        >>> y = fake_quant_ste(w)
        >>> y.sum().backward(); bool((w.grad == 1).all())
        True
    """
    return weight + (fake_quantize_int4(weight.detach(), 64) - weight).detach()


def pacing(step: int, total_steps: int, start_fraction: float) -> float:
    """H: return c(t) = min(1, c₀ + t(1 − c₀)/T), the linear pacing.

    Example:
        >>> pacing(0, 10, 0.2), pacing(10, 10, 0.2)
        (0.2, 1.0)
    """
    return min(1.0, start_fraction + step * (1 - start_fraction) / total_steps)


class MetricsRecorder:
    """I: record every metric of every step and evaluation row as (step, value), by name.

    Example:
        >>> recorder = MetricsRecorder()
        >>> recorder.on_step({"step": 1, "loss": 2.0})
        >>> recorder.history
        {'loss': [(1, 2.0)]}
    """

    def __init__(self) -> None:
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.summary: dict[str, Any] | None = None

    def _record(self, row: dict[str, float]) -> None:
        for name, value in row.items():
            if name != "step":
                self.history.setdefault(name, []).append((int(row["step"]), value))

    def on_step(self, row: dict[str, float]) -> None:
        """Record a training-step row."""
        self._record(row)

    def on_eval(self, row: dict[str, float]) -> None:
        """Record an evaluation row."""
        self._record(row)

    def on_end(self, summary: dict[str, Any]) -> None:
        """Keep the run's summary."""
        self.summary = dict(summary)


def save_state(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    step: int,
    rng: torch.Generator,
) -> dict[str, Any]:
    """J: return what resuming needs: trainable weights, optimizer, scheduler, step, RNGs.

    Example:
        >>> model = torch.nn.Linear(2, 1)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        >>> sorted(save_state(model, optimizer, scheduler, 3, torch.Generator()))
        ['data_rng', 'optimizer', 'python_rng', 'scheduler', 'step', 'torch_rng', 'trainable']
    """
    return {
        "trainable": {
            n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
        },
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "data_rng": rng.get_state(),
        "torch_rng": torch.get_rng_state(),  # dropout draws from torch's global generator
        "python_rng": random.getstate(),
    }


def restore_state(
    state: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    rng: torch.Generator,
) -> int:
    """J: load ``save_state``'s dict into fresh objects, in place; return the step.

    Example:
        >>> model = torch.nn.Linear(2, 1)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        >>> state = save_state(model, optimizer, scheduler, 3, torch.Generator())
        >>> restore_state(state, model, optimizer, scheduler, torch.Generator())
        3
    """
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["trainable"].items():
            parameters[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng.set_state(state["data_rng"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(state["python_rng"])
    return int(state["step"])
