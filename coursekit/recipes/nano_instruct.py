r"""The instruct stage of nano: a short full fine-tune on the training split's prompt → test pairs.

Qwen2.5-Coder-0.5B-*Instruct*, the course's real model, went through an instruction stage
before any learner fine-tunes it; the pretrained nano did not, so the Phase 1 LoRA had to teach
it the answer format from nothing. :func:`instruct_nano` gives nano that stage: every weight
is trained (``method="full"``) on the corpus's **training** split in the course's ChatML format
(:mod:`coursekit.data.prompts`), with the loss on the answer only, through the ordinary
trainer (:func:`coursekit.recipes.finetune.finetune`), so the run folder, checkpoints and
``--resume`` behave as for any run. The validation split gives the loss curve; the test split
is never read.

The result is a model directory like the base one (weights, tokenizer, ``build.json``); its
``build.json`` keeps the base's ``pretrained_crates`` and adds the crates of the pairs it was
tuned on, so corpus builds keep all of them out of val and test.

Guide: docs/nano.md.

Example:
    >>> instruct_nano("data/models/qwen2.5-coder-nano-base", "data/corpus", "/tmp/nano-instruct",
    ...               config=InstructConfig(steps=20))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit import codec
from coursekit.data.corpus import load_splits
from coursekit.errors import CoursekitError
from coursekit.io import atomic_directory, atomic_open, write_json
from coursekit.nano.card import decoding_line, write_instruct_card
from coursekit.recipes.finetune import finetune
from coursekit.train.config import TrainConfig
from coursekit.train.spec import RunSpec


@dataclass(frozen=True, kw_only=True)
class InstructConfig:
    """Settings of the instruct stage (a full fine-tune).

    Example:
        >>> InstructConfig(steps=100).train_config().max_steps
        100
    """

    steps: int = 600
    """Optimizer steps."""
    micro_batch_size: int = 8
    """Rows per step (packed sequences of ``seq_len`` tokens)."""
    learning_rate: float = 1e-3
    """Peak learning rate (cosine decay after warm-up)."""
    warmup_steps: int = 30
    """Linear warm-up steps."""
    seq_len: int = 512
    """Tokens per row; pairs whose prompt fills it are dropped by the encoder."""
    eval_every: int = 100
    """Validation every this many steps."""
    no_repeat_ngram_size: int = 10
    """Written into the model's ``generation_config.json``, so that ``coursekit eval`` and
    ``generate`` use it unless told otherwise: the most parsing answers of 0/4/6/8/10/12/16
    (and penalties) on the validation split for nano v2 (docs/nano.md); 0 writes none."""
    precision: str = "fp32"
    """Compute precision: fp32, or bf16 autocast (weights stay fp32)."""
    seed: int = 0
    """Seed of the data order."""

    def __post_init__(self) -> None:
        """Validate; raise ``ValueError`` naming the field, the value and the rule."""
        codec.check_types(self)
        rules = [
            ("steps", self.steps >= 1, "must be >= 1"),
            ("micro_batch_size", self.micro_batch_size >= 1, "must be >= 1"),
            ("learning_rate", self.learning_rate > 0, "must be > 0"),
            ("warmup_steps", 0 <= self.warmup_steps < self.steps, "must be in [0, steps)"),
            ("seq_len", self.seq_len >= 16, "must be >= 16"),
            ("eval_every", self.eval_every >= 0, "must be >= 0"),
            ("no_repeat_ngram_size", self.no_repeat_ngram_size >= 0, "must be >= 0"),
            ("precision", self.precision in ("fp32", "bf16"), "must be 'fp32' or 'bf16'"),
        ]
        codec.check_rules(self, rules)

    def train_config(self) -> TrainConfig:
        """Return the trainer's settings for this stage."""
        return TrainConfig(
            max_steps=self.steps,
            micro_batch_size=self.micro_batch_size,
            learning_rate=self.learning_rate,
            schedule="cosine",
            warmup_steps=self.warmup_steps,
            weight_decay=0.0,
            seq_len=self.seq_len,
            precision=self.precision,
            seed=self.seed,
            eval_every=self.eval_every,
            save_every=max(1, self.steps // 6),
        )


def instruct_nano(
    base: str | os.PathLike[str],
    corpus_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    config: InstructConfig | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Fine-tune every weight of ``base`` on the training pairs; write the model to ``out_dir``.

    Args:
        base: the pretrained model directory (e.g. ``data/models/qwen2.5-coder-nano-base``).
        corpus_dir: a corpus directory; its train split is the data, val the loss curve.
        out_dir: the model directory to write (replaced atomically at the end).
        config: the stage's settings (defaults: :class:`InstructConfig`).
        work_dir: the run folder (default ``.<name>.work`` beside ``out_dir``).
        resume: continue an interrupted run in ``work_dir``.
        log: receives one line at the start and one at the end.

    Returns:
        The report written to ``out_dir/build.json``.

    Raises:
        CoursekitError: ``work_dir`` holds a run and ``resume`` is False (from the trainer).
    """
    config = config or InstructConfig()
    base, corpus, out = Path(base), Path(corpus_dir), Path(out_dir)
    work = Path(work_dir) if work_dir is not None else out.with_name(f".{out.name}.work")
    spec = RunSpec(model=str(base), data=str(corpus), method="full", train=config.train_config())
    log(f"nano instruct: {config.steps} steps of full fine-tuning on {corpus}/train → {work}")
    tick = time.perf_counter()
    summary = finetune(spec, work, resume=resume)
    base_record = _record(base)
    tuned = {(s.crate, s.version) for s in load_splits(corpus)["train"]}
    seen = {tuple(c) for c in base_record.get("pretrained_crates", [])} | tuned
    report = {
        "stage": "instruct",
        "base": _shown(base),
        "base_build": {k: v for k, v in base_record.items() if k != "pretrained_crates"},
        "corpus": _shown(corpus),
        "out": _shown(out),
        "config": codec.to_dict(config),
        "summary": {k: summary.get(k) for k in ("steps", "val_loss", "tokens_per_s")},
        "seconds": round(time.perf_counter() - tick, 1),
        "pretrained_crates": sorted(seen),
    }
    with atomic_directory(out) as staging:
        for path in (work / "model").iterdir():
            shutil.copy2(path, staging / path.name)
            (staging / path.name).chmod(0o644)
        write_json(staging / "build.json", report)
        if config.no_repeat_ngram_size:
            _set_generation(staging, no_repeat_ngram_size=config.no_repeat_ngram_size)
        write_instruct_card(staging, work / "metrics.jsonl", report)
    log(f"nano instruct: wrote {out} in {report['seconds']} s (val loss {summary['val_loss']})")
    return report


def set_decoding(
    model_dir: str | os.PathLike[str], evidence: Mapping[str, Any], **settings: Any
) -> Path:
    """Change a built model's decoding defaults after its build, recording why in ``build.json``.

    ``generation_config.json`` gets ``settings``; ``build.json`` gets a ``decoding`` entry
    (the settings, what they replace, and ``evidence``: e.g. the split they were chosen on
    and the funnel counts of each candidate); the card is written again from the record. The
    weights are untouched. Every file is replaced atomically.

    Raises:
        CoursekitError: ``model_dir`` has no ``build.json`` of an instruct stage.

    Example:
        >>> set_decoding("data/models/qwen2.5-coder-nano", {"split": "val"},
        ...              no_repeat_ngram_size=10)  # doctest: +SKIP
    """
    out = Path(model_dir)
    report = _record(out)
    if report.get("stage") != "instruct" or not (out / "generation_config.json").is_file():
        raise CoursekitError(f"{out}: no instruct stage's build.json; pass a nano directory")
    before = json.loads((out / "generation_config.json").read_text(encoding="utf-8"))
    replaces = {key: before.get(key) for key in settings}
    old_line = decoding_line(report)
    report["decoding"] = {"settings": dict(settings), "replaces": replaces, **dict(evidence)}
    card = (out / "README.md").read_text(encoding="utf-8")
    if old_line not in card:
        raise CoursekitError(
            f"{out / 'README.md'}: no decoding sentence to update; rebuild the card"
        )
    _set_generation(out, **settings)
    write_json(out / "build.json", report)
    with atomic_open(out / "README.md") as handle:
        handle.write(card.replace(old_line, decoding_line(report)))
    return out


def _set_generation(model_dir: Path, **settings: Any) -> None:
    """Add decoding defaults to a model directory's ``generation_config.json``."""
    path = model_dir / "generation_config.json"
    current = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    write_json(path, {**current, **settings})


def _shown(path: Path) -> str:
    """Return ``path`` relative to the repository when inside it (a record without home dirs)."""
    from coursekit.loading import repo_root

    resolved, root = path.resolve(), repo_root()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else str(path)


def _record(model_dir: Path) -> dict[str, Any]:
    """Return a model directory's ``build.json`` ({} when it has none)."""
    path = model_dir / "build.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
