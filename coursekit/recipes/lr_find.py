"""``lr_find``: the LR range test on a run's own model, data and loss (``coursekit lr-find``).

Load the spec's model with its adapters and its encoded data exactly as a run would
(:func:`coursekit.train.run.load_for_training`), build the run's rows, optimizer and the loss
per target token, loss = loss_sum / n_targets (:func:`coursekit.train.lr_sweep.sweep_inputs`),
sweep the learning rate geometrically (:func:`coursekit.train.lr_finder.lr_range_test`), and
write every suggestion with the curve to ``lr_find.json`` and ``lr_find.png``.

Guide: docs/lr-finder-curriculum-dashboard.md (LR finder).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from coursekit.errors import CoursekitError
from coursekit.io import atomic_open, write_json
from coursekit.train.folder import check_before_loading
from coursekit.train.loss import TargetLoss
from coursekit.train.lr_finder import (
    SUGGESTERS,
    LRFinderResult,
    check_arguments,
    lr_range_test,
    plot_lr_finder,
    suggest,
)
from coursekit.train.lr_sweep import sweep_inputs
from coursekit.train.run import load_for_training
from coursekit.train.spec import RunSpec


def sweep_batches(
    spec: RunSpec, num_steps: int
) -> tuple[TargetLoss, torch.optim.Optimizer, list[dict[str, torch.Tensor]], Callable]:
    """Load ``spec``'s model and data (``load_for_training``) and return ``sweep_inputs``."""
    loaded = load_for_training(spec)
    return sweep_inputs(loaded.model, loaded.train, spec, pad_id=loaded.pad_id, num_steps=num_steps)


def vars_of(result: LRFinderResult) -> dict[str, Any]:
    """Return an ``LRFinderResult``'s fields as JSON-ready lists."""
    return {
        "lrs": list(result.lrs),
        "losses": list(result.losses),
        "raw_losses": list(result.raw_losses),
        "stopped_early": result.stopped_early,
    }


def lr_find(
    spec: RunSpec,
    output: str | os.PathLike[str],
    *,
    num_steps: int = 100,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
) -> tuple[LRFinderResult, dict[str, float]]:
    """Run the LR range test for ``spec`` and write ``lr_find.json`` and ``lr_find.png``.

    The rates tried are lr_i = start_lr · (end_lr / start_lr)^(i / (num_steps − 1)), one
    optimizer step each on ``micro_batch_size`` rows of the run's data order; the sweep stops
    early when the smoothed loss diverges.

    Args:
        spec: model, data, adapter and loop settings (as for ``finetune``).
        output: the folder to write into (created).
        num_steps: optimizer steps of the sweep.
        start_lr: the first learning rate.
        end_lr: the last learning rate.

    Returns:
        The sweep and ``{suggester name: learning rate}`` for every suggester.

    Raises:
        ValueError: ``num_steps``, ``start_lr`` or ``end_lr`` out of range (checked before
            anything is loaded).
        CoursekitError: ``output`` is a file; the model or data cannot be loaded (a folder
            this call created is removed again).

    Example:
        >>> _, suggestions = lr_find(RunSpec(model="tiny"), "runs/lr")  # doctest: +SKIP
        >>> suggestions["valley"]  # doctest: +SKIP
        0.0012
    """
    check_arguments(start_lr, end_lr, num_steps)
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise CoursekitError(f"--output {out} is a file, not a folder; choose a folder")
    check_before_loading(spec)
    model, optimizer, batches, loss_fn = sweep_batches(spec, num_steps)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CoursekitError(
            f"cannot create --output {out} ({error.strerror or error}); choose a writable folder"
        ) from None
    result = lr_range_test(
        model, optimizer, batches, loss_fn, start_lr=start_lr, end_lr=end_lr,
        num_steps=num_steps,
    )  # fmt: skip
    suggestions = {name: suggest(result, name) for name in SUGGESTERS}
    write_json(out / "lr_find.json", {"suggestions": suggestions, **vars_of(result)})
    with atomic_open(out / "lr_find.png", "wb") as handle:
        plot_lr_finder(result, suggestions).savefig(handle, format="png", dpi=110)
    return result, suggestions
