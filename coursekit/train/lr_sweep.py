"""The inputs of the LR range test on the trainer's own data and loss.

``lr_finder.lr_range_test`` needs a model, an optimizer, batches and a loss function; this
module builds them exactly as a run would: the same rows (``RowSampler``), the same
optimizer, and the loss per target token of each batch, loss = loss_sum / n_targets
(``coursekit.train.loss``). The recipe that loads a spec's model and data and runs the test
is :mod:`coursekit.recipes.lr_find` (``coursekit lr-find``).

Guide: docs/training.md (enhancement C, LR finder).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from coursekit.adapters.inject import optimizer_groups
from coursekit.data.batching import collate, target_count
from coursekit.train.loss import TargetLoss
from coursekit.train.optim import build_optimizer
from coursekit.train.sampler import RowSampler
from coursekit.train.spec import RunSpec


def sweep_inputs(
    model: torch.nn.Module,
    train: list[Any],
    spec: RunSpec,
    *,
    pad_id: int,
    num_steps: int,
) -> tuple[TargetLoss, torch.optim.Optimizer, list[dict[str, torch.Tensor]], Callable]:
    """Return (module, optimizer, batches, loss_fn) for ``lr_range_test`` over ``num_steps``.

    Each batch is ``micro_batch_size`` rows from the run's data order; ``loss_fn(module,
    batch)`` returns the mean loss per target token of that batch.
    """
    config = spec.train
    sampler = RowSampler(train, seq_len=config.seq_len, packing=config.packing, seed=config.seed)
    rows = [sampler.take(config.micro_batch_size) for _ in range(num_steps)]
    batches = [{**collate(r, pad_id), "n": sum(target_count(x) for x in r)} for r in rows]
    module = TargetLoss(model)
    optimizer = build_optimizer(optimizer_groups(model), config)

    def loss_fn(module: TargetLoss, batch: dict[str, Any]) -> torch.Tensor:
        inputs = {k: batch[k] for k in ("input_ids", "position_ids", "targets")}
        return module(**inputs) / batch["n"]

    return module, optimizer, batches, loss_fn
