"""A training run is one folder, written atomically piece by piece.

``runs/<name>/{config.yaml, metrics.jsonl, summary.json, checkpoints/step-N/, adapter/,
manifest.json}`` (``model/`` instead of ``adapter/`` for a full fine-tune; the manifest's
digests are :mod:`coursekit.grading.manifest`'s).

The components of a run: ``prepare_output`` (:mod:`coursekit.train.folder`) checks the
folder and writes ``config.yaml`` before any loading, ``load_for_training`` loads and encodes
(cached), ``train_run`` trains a model on examples already in memory and writes the rest;
how a run stops early (errors, signals, exit statuses) is :mod:`coursekit.train.failures`.
The recipes compose them: ``coursekit.recipes.finetune`` (``coursekit train``), the Phase 1
baseline and the nano model's pretraining.

Guide: docs/training.md. Used in notebooks/phase1_baseline.ipynb.
"""

from __future__ import annotations

import contextlib
import os
import random
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from coursekit.data.prompts import EncodedExample
from coursekit.errors import CoursekitError, CoursekitWarning
from coursekit.grading.manifest import write_manifest
from coursekit.io import atomic_directory, write_json
from coursekit.train.callbacks import Callback, MetricsLogger
from coursekit.train.checkpoint import Checkpointer, restore
from coursekit.train.config import TrainConfig
from coursekit.train.failures import (
    NonFiniteError,
    RunFailedError,
    SignalGuard,
    TrainingInterrupted,
    checkpoint_note,
    interruptible,
    newest_checkpoint,
    resume_hint,
)
from coursekit.train.folder import finished_run, prepare_output, prepare_output_once
from coursekit.train.loop import Trainer
from coursekit.train.spec import RunSpec

__all__ = [
    "EmptyValidationWarning",
    "Loaded",
    "load_for_training",
    "prepare_output",
    "prepare_output_once",
    "seed_everything",
    "train_run",
]


class EmptyValidationWarning(CoursekitWarning):
    """The validation split has no example to evaluate: the run reports no ``val_loss``."""


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _save_final(model: torch.nn.Module, out: Path, tokenizer: Any = None) -> Path:
    from coursekit.adapters import adapter_modules, save_adapter

    if next(adapter_modules(model), None) is not None:
        return save_adapter(model, out / "adapter")
    with atomic_directory(out / "model") as staging:
        model.save_pretrained(staging)
        if tokenizer is not None:  # a full model loads alone, so it carries its tokenizer
            tokenizer.save_pretrained(staging)
    return out / "model"


def train_run(
    model: torch.nn.Module,
    train: Sequence[EncodedExample],
    val: Sequence[EncodedExample],
    config: TrainConfig,
    output: str | os.PathLike[str],
    *,
    pad_id: int,
    resume: bool = False,
    callbacks: Iterable[Callback] = (),
    difficulties: Sequence[float] | None = None,
    accelerator: Any = None,
    tokenizer: Any = None,
) -> dict[str, Any]:
    """Train ``model`` into the run folder ``output`` and return the summary.

    The folder must already hold ``config.yaml`` (``prepare_output``). Writes
    ``metrics.jsonl`` (rows after the resumed checkpoint's step are dropped first),
    ``checkpoints/step-N/`` every ``config.save_every`` steps, the trained ``adapter/``
    (``model/`` without adapters), ``summary.json`` and last ``manifest.json``.

    Args:
        model: the model with adapters applied (or every weight trainable), seeded by the caller.
        train: encoded training examples.
        val: encoded validation examples.
        config: the loop's settings.
        output: the run folder.
        pad_id: padding token id.
        resume: continue from the newest complete checkpoint that fits this run (from
            scratch if there is none); a run that already finished is left as it is and its
            saved summary returned with ``already_finished: True``.
        callbacks: more callbacks besides the metrics logger (a dashboard, a progress bar).
        difficulties: one score per training example, for a curriculum.
        accelerator: an ``accelerate.Accelerator`` (``make_accelerator(config)`` when None).
        tokenizer: saved beside a full model in ``model/`` (adapters never carry one).

    Raises:
        ConfigMismatchError: ``resume`` and checkpoints exist, but none fits this run.
        TrainingInterrupted: SIGINT or SIGTERM (after the checkpoint being written is whole).
        NonFiniteError: a non-finite loss or gradient with ``on_nonfinite="stop"``.
        RunFailedError: a checkpoint, metrics row or the result could not be written; the
            message names the newest checkpoint, which is intact.
    """
    out = Path(output)
    logger = MetricsLogger(out / "metrics.jsonl")
    seed_everything(config.seed)
    trainer = Trainer(
        model, train, val, config, pad_id=pad_id, difficulties=difficulties,
        callbacks=[logger, *callbacks], accelerator=accelerator,
    )  # fmt: skip
    checkpointer = Checkpointer(
        out / "checkpoints", every=config.save_every, keep_last=config.keep_last
    )
    start = checkpointer.latest(trainer) if resume else None
    if start is not None:
        restore(trainer, start[1])
    if resume and trainer.step >= trainer.total_steps:
        done = finished_run(out, config)
        if done is not None:  # nothing to do: every file stays as it is
            return {**done, "already_finished": True}
    if trainer.accelerator.is_main_process:
        logger.truncate_after(trainer.step - 1 if trainer.step == 0 else trainer.step)
    trainer.accelerator.wait_for_everyone()
    with interruptible() as guard:
        summary = _fit(trainer, checkpointer, guard, out)
        summary["resumed_from"] = start[0].name if start else None
        if trainer.accelerator.is_main_process:
            _finish(model, out, tokenizer, summary, trainer, checkpointer, guard)
    trainer.accelerator.wait_for_everyone()
    return summary


def _fit(trainer: Trainer, checkpointer: Checkpointer, guard: SignalGuard, out: Path) -> dict:
    """``trainer.fit``, with checkpoints written whole and one-line errors that say what is kept.

    Raises:
        TrainingInterrupted: SIGINT/SIGTERM (or a ``KeyboardInterrupt``) during training.
        NonFiniteError: a non-finite loss or gradient with ``on_nonfinite="stop"``.
        RunFailedError: a checkpoint or a metrics row could not be written.
    """

    def checkpoint(t: Trainer) -> None:
        with guard.critical():  # a signal waits until the checkpoint is whole
            checkpointer(t)

    try:
        return trainer.fit(checkpoint=checkpoint)
    except KeyboardInterrupt as stop:
        cause = guard.received or "KeyboardInterrupt"
        raise TrainingInterrupted(
            f"interrupted by {cause} after step {trainer.step} of {trainer.total_steps}; "
            f"{checkpoint_note(out)}; continue with: {resume_hint(out)}"
        ) from stop
    except NonFiniteError as error:
        raise NonFiniteError(f"{error}; {checkpoint_note(out)}") from None
    except OSError as error:
        raise RunFailedError(
            f"could not write to {out} after step {trainer.step} ({error.strerror or error}); "
            f"{checkpoint_note(out)}: free disk space, then {resume_hint(out)}"
        ) from None


def _finish(
    model: torch.nn.Module,
    out: Path,
    tokenizer: Any,
    summary: dict[str, Any],
    trainer: Trainer,
    checkpointer: Checkpointer,
    guard: SignalGuard,
) -> None:
    """Write ``adapter/`` (or ``model/``), ``summary.json`` and ``manifest.json``.

    A signal during these writes waits for them and is then dropped: the run is complete.

    Raises:
        RunFailedError: a write failed (e.g. a full disk); the trained steps are kept in a
            checkpoint of the last step when one can be written, and the message names it.
    """
    try:
        with guard.critical(deliver=False):
            summary["output"] = str(_save_final(model, out, tokenizer))
            write_json(out / "summary.json", summary)
            device, processes = trainer.accelerator.device, trainer.accelerator.num_processes
            write_manifest(out, trainer.config, train=trainer.sampler.examples,
                           device=str(device), processes=processes)  # fmt: skip
    except OSError as error:
        raise RunFailedError(_final_save_failed(error, trainer, checkpointer, out)) from None


def _final_save_failed(
    error: OSError, trainer: Trainer, checkpointer: Checkpointer, out: Path
) -> str:
    """Try to keep every trained step in a checkpoint; return the one-line report."""
    steps = checkpointer.steps()
    if not steps or steps[0].name != f"step-{trainer.step}":
        # the disk may still be full: then report the newest checkpoint there is
        with contextlib.suppress(CoursekitError):
            checkpointer.save(trainer)
    newest = newest_checkpoint(out)
    what = f"could not write the trained result to {out} ({error.strerror or error})"
    if newest is not None and newest.name == f"step-{trainer.step}":
        kept = f"all {trainer.step} steps are kept in {newest}"
    elif newest is not None:
        kept = f"the newest checkpoint is {newest} (the run reached step {trainer.step})"
    else:
        kept = f"no checkpoint could be written (the run reached step {trainer.step})"
    return f"{what}; {kept}: free disk space, then {resume_hint(out)} to write it"


@dataclass(frozen=True, kw_only=True)
class Loaded:
    """A model ready to train and its encoded data."""

    model: torch.nn.Module
    """The model with ``spec``'s adapters applied (or every weight trainable)."""
    tokenizer: Any
    """The model's tokenizer (for generation after training)."""
    pad_id: int
    """The tokenizer's padding id."""
    train: list[EncodedExample]
    """Encoded training examples that fit ``seq_len``."""
    val: list[EncodedExample]
    """Encoded validation examples that fit ``seq_len``."""
    difficulties: list[float] | None
    """One difficulty per training example when ``spec`` uses a curriculum."""


def load_for_training(spec: RunSpec, *, cache: Any = None) -> Loaded:
    """Load ``spec``'s tokenizer, data (encoded through the cache) and model, seeded.

    The adapters are initialised right after seeding with ``spec.train.seed``, so two loads
    of the same spec give bitwise-identical starting weights.
    """
    from coursekit.adapters import apply
    from coursekit.data.corpus import default_corpus_dir, load_splits
    from coursekit.data.tokenized import TokenCache
    from coursekit.loading import load_model, load_tokenizer

    splits = load_splits(Path(spec.data) if spec.data else default_corpus_dir())
    tokenizer = load_tokenizer(spec.model)
    cache = cache if cache is not None else TokenCache()
    train = cache.encode(splits["train"], tokenizer, spec.train.seq_len)
    val = cache.encode(splits["val"], tokenizer, spec.train.seq_len)
    if not train:
        raise CoursekitError(
            f"no training example of {spec.data or default_corpus_dir()} fits seq_len="
            f"{spec.train.seq_len}; raise --seq-len"
        )
    if not val:
        _warn_empty_validation(spec, splits["val"])
    seed_everything(spec.train.seed)
    model = load_model(spec.model)
    if spec.adapter_config is not None:
        apply(model, spec.adapter_config)
    else:
        model.requires_grad_(True)
    return Loaded(
        model=model,
        tokenizer=tokenizer,
        pad_id=tokenizer.pad_token_id,
        train=train,
        val=val,
        difficulties=_difficulties(spec, splits["train"], train),
    )


def _warn_empty_validation(spec: RunSpec, samples: Sequence[Any]) -> None:
    from coursekit.data.corpus import default_corpus_dir

    where = spec.data or default_corpus_dir()
    why = "is empty" if not samples else f"has no example that fits seq_len={spec.train.seq_len}"
    warnings.warn(
        f"{where}: the validation split {why}, so the run reports no val_loss; add examples "
        "to its val.jsonl or raise --seq-len",
        EmptyValidationWarning,
        stacklevel=3,
    )


def _difficulties(
    spec: RunSpec, samples: Sequence[Any], train: Sequence[EncodedExample]
) -> list[float] | None:
    if spec.train.curriculum == "none":
        return None
    from coursekit.data.curriculum import difficulty_scores

    kept = {e.sample_id for e in train}
    scores = difficulty_scores([s for s in samples if s.id in kept]).scores
    return list(scores)
