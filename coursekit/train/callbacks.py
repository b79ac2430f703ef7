"""Callbacks: how the training loop reports what it measures, and ``metrics.jsonl``.

The loop calls ``on_step(row)`` after every optimizer step, ``on_eval(row)`` after every
evaluation on the validation split and ``on_end(summary)`` once at the end. A row is a flat
dict of numbers whose keys are ``METRIC_KEYS`` (a key the loop did not measure this step is
absent, never None). ``MetricsLogger`` appends every row to ``runs/<name>/metrics.jsonl``;
the dashboard and progress bar (``coursekit.display.dashboard``, ``coursekit.display.progress``)
implement the same protocol.

Guide: docs/training.md. Used in notebooks/phase1_baseline.ipynb (loss curves).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

METRIC_KEYS: tuple[str, ...] = (
    "step",
    "loss",
    "val_loss",
    "lr",
    "grad_norm",
    "tokens_per_s",
    "elapsed_s",
    "memory_bytes",
    "skipped_steps",
)
"""Keys a metrics row may hold: step, mean train loss per target token of the step, mean
validation loss per target token, learning rate, gradient L2 norm before clipping, target
tokens per second of the step, seconds since the run started, peak memory in bytes, and (with
``on_nonfinite="skip"``) how many steps were skipped so far for a non-finite loss or gradient
(a skipped step's row has no loss and no grad_norm)."""


@runtime_checkable
class Callback(Protocol):
    """What the loop calls; implement any subset by inheriting the no-op ``BaseCallback``."""

    def on_step(self, row: dict[str, float]) -> None:
        """Receive the metrics of one optimizer step (keys from ``METRIC_KEYS``)."""

    def on_eval(self, row: dict[str, float]) -> None:
        """Receive ``{"step", "val_loss", ...}`` after an evaluation."""

    def on_end(self, summary: dict[str, Any]) -> None:
        """Receive the run's summary (the content of ``summary.json``)."""


class BaseCallback:
    """A callback that does nothing; subclass it and override the hooks you need."""

    def on_step(self, row: dict[str, float]) -> None:
        """Do nothing."""

    def on_eval(self, row: dict[str, float]) -> None:
        """Do nothing."""

    def on_end(self, summary: dict[str, Any]) -> None:
        """Do nothing."""


class CallbackList(BaseCallback):
    """Fan one call out to several callbacks, in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = tuple(callbacks)
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"{callback!r} is not a Callback: give it on_step, on_eval and on_end "
                    "(inherit coursekit.train.BaseCallback)"
                )

    def on_step(self, row: dict[str, float]) -> None:
        """Call every callback's ``on_step``."""
        for callback in self.callbacks:
            callback.on_step(dict(row))

    def on_eval(self, row: dict[str, float]) -> None:
        """Call every callback's ``on_eval``."""
        for callback in self.callbacks:
            callback.on_eval(dict(row))

    def on_end(self, summary: dict[str, Any]) -> None:
        """Call every callback's ``on_end``."""
        for callback in self.callbacks:
            callback.on_end(dict(summary))


def _clean(row: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(row) - set(METRIC_KEYS))
    if unknown:
        raise ValueError(f"metrics row has unknown keys {unknown}; allowed: {list(METRIC_KEYS)}")
    return {key: row[key] for key in METRIC_KEYS if key in row}


class MetricsLogger(BaseCallback):
    """Append each step and evaluation row as one JSON line to ``path`` (``metrics.jsonl``).

    Each line is flushed and fsynced, so a killed run keeps every row it reported. On resume
    the rows after the checkpoint's step are dropped first (``truncate_after``), so the file
    reads as if the run had never stopped.

    Example:
        >>> logger = MetricsLogger(tmp_path / "metrics.jsonl")  # doctest: +SKIP
        >>> logger.on_step({"step": 1, "loss": 2.5, "lr": 1e-4})  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _append(self, row: Mapping[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(_clean(row), sort_keys=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def on_step(self, row: dict[str, float]) -> None:
        """Append a training-step row."""
        self._append(row)

    def on_eval(self, row: dict[str, float]) -> None:
        """Append an evaluation row."""
        self._append(row)

    def truncate_after(self, step: int) -> None:
        """Drop rows whose step is greater than ``step`` (and a torn last line), atomically."""
        from coursekit.io import atomic_open

        if not self.path.exists():
            return
        kept = [row for row in read_metrics(self.path) if row["step"] <= step]
        with atomic_open(self.path) as handle:
            handle.writelines(json.dumps(row, sort_keys=True) + "\n" for row in kept)


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Return the rows of a ``metrics.jsonl``, skipping a torn last line of a killed run."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
