"""The training loop: accumulate, clip, step, evaluate, checkpoint — on ``accelerate``.

One optimizer step of k = ``gradient_accumulation`` micro-batches over P processes:

    N = Σ target tokens of all k·P micro-batches of the step
    g = ∇ (1/N) Σ_micro-batches loss_sum         (each process backprops P·loss_sum/N; DDP
                                                   averages over P, which undoes the P)
    g ← g · min(1, max_grad_norm / ‖g‖₂);  θ ← optimizer(θ, g, η(t))

so 16 × 1, 4 × 4 and 1 × 16 (and 2 processes × 4 against 1 × 4 × 2) give the same update.
Every process draws the same rows from the seed (``RowSampler``) and trains on its share.

Guide: docs/training.md. Used in notebooks/phase1_baseline.ipynb.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState

from coursekit.adapters.inject import optimizer_groups
from coursekit.data.batching import collate, pack, target_count
from coursekit.data.prompts import EncodedExample
from coursekit.train.callbacks import Callback, CallbackList
from coursekit.train.config import TrainConfig
from coursekit.train.failures import NonFiniteError
from coursekit.train.loss import TargetLoss
from coursekit.train.optim import build_optimizer, peak_memory_bytes
from coursekit.train.sampler import CurriculumRows, RowSampler
from coursekit.train.schedule import build_scheduler

MIXED_PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}
"""``TrainConfig.precision`` → accelerate's ``mixed_precision``."""


def make_accelerator(config: TrainConfig, *, cpu: bool = False) -> Accelerator:
    """Return the ``Accelerator`` for ``config.precision`` (``cpu=True`` forces the CPU).

    Without CUDA the CPU is chosen explicitly, which is what lets accelerate see a
    multi-process CPU launch (``WORLD_SIZE`` > 1) and start gloo. In a single process a new
    precision resets accelerate's process-wide state (it would refuse otherwise).
    """
    cpu = cpu or not torch.cuda.is_available()
    precision = MIXED_PRECISION[config.precision]
    try:
        return Accelerator(cpu=cpu, mixed_precision=precision)
    except ValueError:
        # accelerate's state is process-wide and refuses a new precision; in one process (a
        # notebook that trains again in bf16) it is safe to start it afresh
        if PartialState().num_processes > 1:
            raise
        AcceleratorState._reset_state()
        return Accelerator(cpu=cpu, mixed_precision=precision)


def total_steps(config: TrainConfig, sampler: RowSampler, processes: int) -> int:
    """Return ``max_steps``, or ⌈epochs · rows per epoch / rows per step⌉ (at least 1)."""
    if config.max_steps is not None:
        return config.max_steps
    rows_per_step = config.sequences_per_step * processes
    return max(1, math.ceil(config.epochs * sampler.rows_per_epoch() / rows_per_step))


def _curriculum_rows(
    train: Sequence[EncodedExample],
    difficulties: Sequence[float] | None,
    config: TrainConfig,
    processes: int,
    steps: int,
) -> CurriculumRows:
    if difficulties is None or config.packing:
        raise ValueError(
            f"TrainConfig.curriculum={config.curriculum!r} needs packing=False (--no-packing) "
            "and one difficulty per training example; or use curriculum='none'"
        )
    return CurriculumRows(
        train,
        difficulties=difficulties,
        pacing=config.curriculum,
        rows_per_step=config.sequences_per_step * processes,
        total_steps=steps,
        seed=config.seed,
    )


class Trainer:
    """Train ``model``'s trainable parameters on encoded examples (see the module docstring).

    Args:
        model: a causal LM (Qwen2) with adapters applied, or every weight trainable.
        train: the encoded training split.
        val: the encoded validation split (may be empty: no evaluation).
        config: the run's settings.
        pad_id: the padding token id.
        callbacks: receive each step's, each evaluation's and the final row (main process).
        difficulties: one score per training example, for ``config.curriculum`` other than
            ``"none"`` (``coursekit.data.curriculum.difficulty_scores``).
        accelerator: device, precision and processes; ``make_accelerator(config)`` when None.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train: Sequence[EncodedExample],
        val: Sequence[EncodedExample],
        config: TrainConfig,
        *,
        pad_id: int,
        callbacks: Iterable[Callback] = (),
        difficulties: Sequence[float] | None = None,
        accelerator: Accelerator | None = None,
    ) -> None:
        self.config, self.pad_id, self.val = config, pad_id, list(val)
        self.accelerator = accelerator or make_accelerator(config)
        # only the main process reports (one metrics.jsonl, one progress bar)
        self.callbacks = CallbackList(callbacks if self.accelerator.is_main_process else ())
        self.sampler: RowSampler | CurriculumRows = RowSampler(
            train, seq_len=config.seq_len, packing=config.packing, seed=config.seed
        )
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameter: apply adapters or unfreeze it")
        if config.gradient_checkpointing:
            model.activation_checkpointing_enable({"use_reentrant": False})
        self.model = model
        processes = self.accelerator.num_processes
        self.total_steps = total_steps(config, self.sampler, processes)
        if config.curriculum != "none":
            self.sampler = _curriculum_rows(
                train, difficulties, config, processes, self.total_steps
            )
        optimizer = build_optimizer(optimizer_groups(model), config)
        self.loss, self.optimizer = self.accelerator.prepare(TargetLoss(model), optimizer)
        self.scheduler = build_scheduler(self.optimizer, config, self.total_steps)
        self.step, self.target_tokens, self.train_seconds = 0, 0, 0.0
        self.skipped_steps, self.last_val_loss = 0, None
        self.started, self.elapsed_before = time.perf_counter(), 0.0

    def elapsed(self) -> float:
        """Seconds since the run started, the interrupted part of a resumed run included."""
        return self.elapsed_before + time.perf_counter() - self.started

    def _device_batch(self, rows: Sequence[Sequence[EncodedExample]]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.accelerator.device) for k, v in collate(rows, self.pad_id).items()}

    def _my_rows(self, rows: list[Any]) -> list[Any]:
        share = len(rows) // self.accelerator.num_processes
        start = self.accelerator.process_index * share
        return rows[start : start + share]

    def train_step(self) -> dict[str, float]:
        """Run one optimizer step (accumulate, clip, step) and return its metrics row.

        A non-finite loss or gradient norm applies no update: with ``on_nonfinite="stop"``
        it raises ``NonFiniteError`` naming the step, with ``"skip"`` the step is counted
        in ``skipped_steps`` and the row carries no loss or gradient norm.

        Raises:
            NonFiniteError: the loss or the gradient norm was NaN or infinite ("stop").
        """
        tick, config, accelerator = time.perf_counter(), self.config, self.accelerator
        self.loss.train()  # a model loaded for inference arrives in eval mode: dropout would be off
        rows = self.sampler.take(config.sequences_per_step * accelerator.num_processes)
        n_targets = sum(target_count(row) for row in rows)  # N: the whole step, all processes
        mine, b = self._my_rows(rows), config.micro_batch_size
        loss_sum = torch.zeros((), device=accelerator.device)
        for j in range(config.gradient_accumulation):
            last = j == config.gradient_accumulation - 1
            sync = contextlib.nullcontext() if last else accelerator.no_sync(self.loss)
            with sync, accelerator.autocast():
                micro_sum = self.loss(**self._device_batch(mine[j * b : (j + 1) * b]))
                accelerator.backward(micro_sum * accelerator.num_processes / n_targets)
            loss_sum += micro_sum.detach()
        max_norm = config.max_grad_norm or math.inf
        grad_norm = float(accelerator.clip_grad_norm_(self.params, max_norm))
        loss = accelerator.reduce(loss_sum, reduction="sum").item() / n_targets
        lr = self.scheduler.get_last_lr()[0]
        # fp16 loss scaling overflows on purpose; its scaler skips those steps by itself
        scaled = getattr(accelerator, "scaler", None) is not None
        finite = math.isfinite(loss) and (scaled or math.isfinite(grad_norm))
        if finite:
            self.optimizer.step()
        else:
            self._non_finite(loss, grad_norm, lr)
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - tick
        self.step, self.target_tokens = self.step + 1, self.target_tokens + n_targets
        self.train_seconds += seconds
        row: dict[str, float] = {"step": self.step}
        if finite:
            row |= {"loss": loss, "grad_norm": grad_norm}
        row |= {
            "lr": lr,
            "tokens_per_s": n_targets / seconds,
            "elapsed_s": self.elapsed(),
            "memory_bytes": peak_memory_bytes(accelerator.device),
        }
        if config.on_nonfinite == "skip":
            row["skipped_steps"] = self.skipped_steps
        return row

    def _non_finite(self, loss: float, grad_norm: float, lr: float) -> None:
        """Skip the step (count it) or raise ``NonFiniteError``, per ``on_nonfinite``."""
        if self.config.on_nonfinite == "skip":
            self.skipped_steps += 1
            return
        self.optimizer.zero_grad(set_to_none=True)
        what = "loss" if not math.isfinite(loss) else "gradient norm"
        raise NonFiniteError(
            f"step {self.step + 1}: the training {what} is non-finite (loss {loss}, gradient "
            f"norm {grad_norm}, lr {lr:.3g}); no update was applied. Start a new run with a "
            "lower --lr, or with --on-nonfinite skip to skip such steps"
        )

    @torch.no_grad()
    def evaluate(self) -> float:
        """Return the mean loss per target token on the validation split (nats), all processes."""
        if self.config.packing:
            lengths = [len(e.input_ids) for e in self.val]
            rows = [[self.val[i] for i in row] for row in pack(lengths, self.config.seq_len)]
        else:
            rows = [[e] for e in self.val]
        mine = rows[self.accelerator.process_index :: self.accelerator.num_processes]
        total = torch.zeros((), device=self.accelerator.device)
        self.loss.eval()
        for start in range(0, len(mine), self.config.micro_batch_size):
            with self.accelerator.autocast():
                total += self.loss(
                    **self._device_batch(mine[start : start + self.config.micro_batch_size])
                )
        self.loss.train()
        total = self.accelerator.reduce(total, reduction="sum").item()
        return total / max(1, sum(target_count(row) for row in rows))

    def _eval_due(self) -> bool:
        every = self.config.eval_every
        return bool(self.val) and (
            self.step == self.total_steps or (every and self.step % every == 0)
        )

    def fit(self, checkpoint: Any = None) -> dict[str, Any]:
        """Train to ``total_steps`` and return the summary (also given to ``on_end``).

        Args:
            checkpoint: called as ``checkpoint(trainer)`` after each step; it decides whether
                to save (``coursekit.train.checkpoint.Checkpointer``).
        """
        if self.step == 0 and self.val:
            self._report_eval()
        while self.step < self.total_steps:
            row = self.train_step()
            self.callbacks.on_step(row)
            if self._eval_due():
                self._report_eval()
            if checkpoint is not None:
                checkpoint(self)
        summary = self.summary()
        self.callbacks.on_end(summary)
        return summary

    def _report_eval(self) -> None:
        self.last_val_loss = self.evaluate()
        elapsed = self.elapsed()
        self.callbacks.on_eval(
            {"step": self.step, "val_loss": self.last_val_loss, "elapsed_s": elapsed}
        )

    def summary(self) -> dict[str, Any]:
        """Return the run's totals: steps, tokens, tokens/s, last val loss, memory, skips."""
        return {
            "steps": self.step,
            "target_tokens": self.target_tokens,
            "train_seconds": self.train_seconds,
            "tokens_per_s": self.target_tokens / max(self.train_seconds, 1e-9),
            "val_loss": self.last_val_loss,
            "peak_memory_bytes": peak_memory_bytes(self.accelerator.device),
            "trainable_parameters": sum(p.numel() for p in self.params),
            "skipped_steps": self.skipped_steps,
        }
