"""A training run is one folder, written atomically piece by piece.

``runs/<name>/{config.yaml, metrics.jsonl, summary.json, checkpoints/step-N/, adapter/}``
(``model/`` instead of ``adapter/`` for a full fine-tune).

The components of a run: ``prepare_output`` checks the folder and writes ``config.yaml``
before any loading, ``load_for_training`` loads and encodes (cached), ``train_run`` trains a
model on examples already in memory and writes the rest. The recipes compose them:
``coursekit.recipes.finetune`` (``coursekit train``), the Phase 1 baseline and the nano
model's pretraining.

Guide: docs/training.md. Used in notebooks/phase1_baseline.ipynb.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from coursekit import codec
from coursekit.data.prompts import EncodedExample
from coursekit.errors import CoursekitError
from coursekit.io import atomic_directory, atomic_open, write_json
from coursekit.train.callbacks import Callback, MetricsLogger
from coursekit.train.checkpoint import Checkpointer, ConfigMismatchError, restore
from coursekit.train.config import TrainConfig
from coursekit.train.loop import Trainer
from coursekit.train.spec import RunSpec, load_spec


def prepare_output(output: str | os.PathLike[str], spec: RunSpec, *, resume: bool) -> Path:
    """Create (or check, on resume) the run folder and write ``config.yaml``; load nothing.

    Raises:
        CoursekitError: the folder is not writable, or holds a run and ``resume`` is False.
        ConfigMismatchError: ``resume`` with settings that differ from the saved ones.
    """
    out = Path(output)
    saved = out / "config.yaml"
    if saved.exists() and not resume:
        raise CoursekitError(f"{out} already holds a run; pass --resume or choose a new --output")
    if saved.exists():
        differing = load_spec(saved).differences(spec)
        if differing:
            listed = ", ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in sorted(differing.items()))
            raise ConfigMismatchError(
                f"{saved} differs from this run's settings ({listed}); resume with the "
                "original settings or choose a new --output"
            )
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        with atomic_open(saved) as handle:
            handle.write(codec.to_yaml(spec))
    except OSError as error:
        raise CoursekitError(
            f"cannot write the run folder {out} ({error.strerror or error}); choose a writable "
            "--output"
        ) from error
    return out


def prepare_output_once(output: str | os.PathLike[str], spec: RunSpec, *, resume: bool) -> Path:
    """``prepare_output`` for every process of a launch: all check, the main one writes.

    Each process checks the folder read-only first (so a bad ``--output`` fails everywhere
    alike), then only the main process writes ``config.yaml``.
    """
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    saved = Path(output) / "config.yaml"
    if saved.exists() and not resume:
        raise CoursekitError(
            f"{output} already holds a run; pass --resume or choose a new --output"
        )
    state.wait_for_everyone()
    if state.is_main_process:
        prepare_output(output, spec, resume=resume)
    state.wait_for_everyone()
    return Path(output)


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
    (``model/`` without adapters) and ``summary.json``.

    Args:
        model: the model with adapters applied (or every weight trainable), seeded by the caller.
        train: encoded training examples.
        val: encoded validation examples.
        config: the loop's settings.
        output: the run folder.
        pad_id: padding token id.
        resume: continue from the newest complete checkpoint (from scratch if there is none).
        callbacks: more callbacks besides the metrics logger (a dashboard, a progress bar).
        difficulties: one score per training example, for a curriculum.
        accelerator: an ``accelerate.Accelerator`` (``make_accelerator(config)`` when None).
        tokenizer: saved beside a full model in ``model/`` (adapters never carry one).
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
    start = checkpointer.latest() if resume else None
    if start is not None:
        restore(trainer, start[1])
    if trainer.accelerator.is_main_process:
        logger.truncate_after(trainer.step - 1 if trainer.step == 0 else trainer.step)
    trainer.accelerator.wait_for_everyone()
    summary = trainer.fit(checkpoint=checkpointer)
    summary["resumed_from"] = start[0].name if start else None
    if trainer.accelerator.is_main_process:
        summary["output"] = str(_save_final(model, out, tokenizer))
        write_json(out / "summary.json", summary)
    trainer.accelerator.wait_for_everyone()
    return summary


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


def _difficulties(
    spec: RunSpec, samples: Sequence[Any], train: Sequence[EncodedExample]
) -> list[float] | None:
    if spec.train.curriculum == "none":
        return None
    from coursekit.data.curriculum import difficulty_scores

    kept = {e.sample_id for e in train}
    scores = difficulty_scores([s for s in samples if s.id in kept]).scores
    return list(scores)
