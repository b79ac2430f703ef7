"""Phase 1 baseline recipe: a short, real LoRA fine-tune for Rust test generation.

The Python counterpart of the course's ``finetune_test_gen`` example, used by
``notebooks/phase1_baseline.ipynb`` and ``coursekit baseline``. Its training settings are a
:class:`~coursekit.train.spec.RunSpec` (:func:`baseline_spec` gives the baseline's defaults:
LoRA r = 8, α = 16 on q/v, constant LR 2e-3, no packing, batch 4, 384 tokens, 40 steps,
validation every 10); the few settings that are not training (how many examples, how many
generations, the device) are keyword arguments of :func:`run_baseline`. The notebook puts
each run in a new folder (:func:`new_run_folder`), so a rerun never overwrites an earlier one.

It composes coursekit's components: LoRA adapters from :mod:`coursekit.adapters` on the
model's projections, the trainer of :mod:`coursekit.train` (loss summed over target tokens
and divided by their number, real gradient clipping, AdamW, validation before training, every
``eval_every`` steps and at the end) and greedy generation from
:mod:`coursekit.evaluate.generate`. The run folder it writes is a regular ``coursekit train``
run (``config.yaml``, ``metrics.jsonl``, ``adapter/``, ``summary.json``). Every number in the
result is measured during the run on the machine that runs it.

Example:
    >>> spec = baseline_spec(model="nano", steps=5)  # doctest: +SKIP
    >>> result = run_baseline(spec, "runs/demo")  # doctest: +SKIP
    >>> result.metrics["val_loss_end"] < result.metrics["val_loss_start"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from coursekit.adapters import TARGET_PRESETS, AdapterConfig, apply, trainable_count
from coursekit.codec import to_dict
from coursekit.data.corpus import Sample, default_corpus_dir, load_splits
from coursekit.data.prompts import EncodedExample, encode_example
from coursekit.errors import CoursekitError
from coursekit.evaluate.generate import generate_tests
from coursekit.io import atomic_open, write_json
from coursekit.loading import DEFAULT_MODEL, load_model, load_tokenizer, repo_root
from coursekit.presets import count_parameters
from coursekit.train import BaseCallback, Callback, TrainConfig
from coursekit.train.loop import make_accelerator
from coursekit.train.optim import peak_memory_bytes
from coursekit.train.run import prepare_output, seed_everything, train_run
from coursekit.train.spec import RunSpec

Targets = Literal["qv", "attention", "mlp", "all-linear"]


def baseline_spec(
    *,
    model: str = DEFAULT_MODEL,
    data: str = "",
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    targets: Targets = "qv",
    steps: int = 40,
    batch_size: int = 4,
    seq_len: int = 384,
    lr: float = 2e-3,
    max_grad_norm: float = 1.0,
    eval_every: int = 10,
    seed: int = 0,
) -> RunSpec:
    """Return the ``RunSpec`` of a baseline run (defaults: ≤ 3 minutes on 2 CPU cores).

    LoRA on ``targets`` with update scale alpha / rank; AdamW at the constant rate ``lr``;
    one example per row (no packing); validation at step 0, every ``eval_every`` steps and at
    the end.

    Args:
        model: ``nano`` (bundled, pretrained), ``tiny`` (random), a bundled model, a preset,
            a hub id or a checkpoint directory.
        data: directory with ``train/val/test.jsonl[.gz]``; empty means the committed corpus
            (``data/corpus``) when present, else the bundled seed set.
        rank: LoRA rank r.
        alpha: LoRA alpha; the update is scaled by alpha / r.
        dropout: dropout on the LoRA input, in [0, 1).
        targets: which projections get adapters (a preset name).
        steps: optimizer steps.
        batch_size: examples per step.
        seq_len: longest sequence in tokens (>= 16); longer answers are cut.
        lr: the constant AdamW learning rate.
        max_grad_norm: gradients are clipped to this global L2 norm (> 0).
        eval_every: validation loss every this many steps (>= 1; and at the start and end).
        seed: seed of initialisation and data order.

    Raises:
        ValueError: a setting out of range, naming it, its value and the rule.
    """
    checks = [
        ("eval_every", eval_every, eval_every >= 1, "must be >= 1"),
        ("seq_len", seq_len, seq_len >= 16, "must be >= 16"),
        ("max_grad_norm", max_grad_norm, max_grad_norm > 0, "must be > 0"),
        ("targets", targets, targets in TARGET_PRESETS, f"must be one of {list(TARGET_PRESETS)}"),
    ]
    for name, value, ok, rule in checks:
        if not ok:
            raise ValueError(f"baseline_spec: {name} {rule} (got {value!r})")
    adapter = AdapterConfig(rank=rank, alpha=alpha, dropout=dropout, targets=targets)
    train = TrainConfig(
        max_steps=steps,
        micro_batch_size=batch_size,
        learning_rate=lr,
        schedule="constant",
        max_grad_norm=max_grad_norm,
        seq_len=seq_len,
        packing=False,
        eval_every=eval_every,
        seed=seed,
    )
    return RunSpec(model=model, data=data, method="lora", adapter=adapter, train=train)


def resolve_device(device: str = "auto") -> torch.device:
    """Resolve ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda[:n]``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def data_dir(spec: RunSpec) -> Path:
    """Return ``spec``'s data directory; empty ``data`` means :func:`default_corpus_dir`."""
    return Path(spec.data) if spec.data else default_corpus_dir()


RUNS_DIR = Path("runs") / "phase1-baseline"
"""Where Phase 1 runs go, relative to the repository: one folder per run."""


def settings_hash(spec: RunSpec) -> str:
    """Return 8 hex digits of SHA-256 over ``spec``'s settings: equal settings, equal hash.

    Example:
        >>> settings_hash(baseline_spec()) == settings_hash(baseline_spec())
        True
        >>> settings_hash(baseline_spec()) == settings_hash(baseline_spec(rank=32))
        False
    """
    text = json.dumps(to_dict(spec), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def holds_run(folder: str | Path) -> bool:
    """Whether ``folder`` holds a baseline run (``metrics.json`` or ``train/config.yaml``)."""
    return any((Path(folder) / name).is_file() for name in ("metrics.json", "train/config.yaml"))


def new_run_folder(
    spec: RunSpec, output_dir: str | Path = "", *, now: datetime.datetime | None = None
) -> Path:
    """Return and create the folder of a new run, never one that holds an earlier run.

    Empty ``output_dir``: ``<repository>/runs/phase1-baseline/<UTC time>-<settings hash>/``
    (``20261202-161800-3fa2c1d9``; ``-2``, ``-3``... when two runs start in one second), so
    re-running with other parameters keeps the first run. A given ``output_dir`` is used as
    it is, unless it already holds a run.

    Raises:
        CoursekitError: ``output_dir`` already holds a run (names it and what to do).

    Example:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> when = datetime.datetime(2026, 12, 2, 16, 18, tzinfo=datetime.UTC)
        >>> new_run_folder(baseline_spec(), root / "a", now=when).name
        'a'
    """
    if output_dir:
        folder = Path(output_dir)
        if holds_run(folder):
            raise CoursekitError(
                f"{folder} already holds a Phase 1 run: set output_dir to a new folder, or "
                'to "" for a fresh one under runs/phase1-baseline/ (delete it to rerun there)'
            )
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}-{settings_hash(spec)}"
    root = repo_root() / RUNS_DIR
    root.mkdir(parents=True, exist_ok=True)
    attempt = 1
    while True:  # mkdir without exist_ok claims the name atomically
        folder = root / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            attempt += 1


@dataclass
class BaselineResult:
    """What a baseline run measured."""

    spec: RunSpec
    """The run's training settings."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Every setting of the run by its flag name (``steps``, ``rank``, ``lr``...,
    ``max_train_examples``, ``generate``, ``device``), saved as ``metrics.json``'s ``config``."""
    history: list[dict[str, float]] = field(default_factory=list)
    """One row per step: ``step``, ``train_loss`` and, on evaluation steps, ``val_loss``."""
    metrics: dict[str, float] = field(default_factory=dict)
    """The final metrics table (names as recorded in the notebook)."""
    generations: list[dict[str, str]] = field(default_factory=list)
    """``id``, ``function``, ``reference`` and ``generated`` for held-out functions."""
    run_dir: Path | None = None
    """The trainer's run folder (``config.yaml``, ``metrics.jsonl``, ``adapter/``...)."""

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``metrics.json``, ``history.json`` and ``loss_curve.png`` into ``out_dir``."""
        from coursekit.display.plots import plot_losses

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "metrics": write_json(out / "metrics.json", {**self.metrics, "config": self.settings}),
            "history": write_json(out / "history.json", self.history),
            "loss_curve": out / "loss_curve.png",
        }
        figure = plot_losses(self.history)
        with atomic_open(paths["loss_curve"], "wb") as handle:
            figure.savefig(handle, format="png", dpi=110, bbox_inches="tight")
        return paths


class _History(BaseCallback):
    """Collect the trainer's rows as the baseline's history; pass each row to ``on_step``."""

    def __init__(self, on_step: Callable[[dict[str, float]], None] | None) -> None:
        self.rows: list[dict[str, float]] = []
        self.forward = on_step or (lambda row: None)

    def on_step(self, row: dict[str, float]) -> None:
        """Record step, train loss, grad norm and learning rate."""
        kept = {"step": row["step"], "train_loss": row["loss"], "grad_norm": row["grad_norm"]}
        self.rows.append(kept)
        self.forward(kept)

    def on_eval(self, row: dict[str, float]) -> None:
        """Attach the validation loss to its step's row (step 0 gets a row of its own)."""
        if self.rows and self.rows[-1]["step"] == row["step"]:
            self.rows[-1]["val_loss"] = row["val_loss"]
        else:
            self.rows.append({"step": row["step"], "val_loss": row["val_loss"]})
        self.forward({"step": row["step"], "val_loss": row["val_loss"]})


def encode_split(samples: Sequence[Sample], tokenizer: Any, seq_len: int) -> list[EncodedExample]:
    """Encode samples, dropping those whose prompt alone fills ``seq_len``."""
    encoded = (encode_example(s, tokenizer, seq_len) for s in samples)
    return [e for e in encoded if e is not None and e.target_tokens > 0]


def subset(samples: list[Sample], limit: int, seed: int) -> list[Sample]:
    """Return at most ``limit`` samples: all of them, or a seeded sample in file order.

    Example:
        >>> subset(list("abcdef"), 3, seed=0)
        ['a', 'd', 'f']
    """
    if len(samples) <= limit:
        return samples
    keep = sorted(random.Random(seed).sample(range(len(samples)), limit))
    return [samples[i] for i in keep]


def _fresh_run_dir(run_dir: Path) -> Path:
    """Remove a previous baseline run folder (one holding config.yaml) so it can be rewritten."""
    if (run_dir / "config.yaml").is_file():
        shutil.rmtree(run_dir)
    return run_dir


def _settings(spec: RunSpec, options: dict[str, Any]) -> dict[str, Any]:
    """Every setting by its flag name: the spec's training settings and the run's options."""
    adapter, train = spec.adapter, spec.train
    targets = adapter.targets if isinstance(adapter.targets, str) else list(adapter.targets)
    return {
        "model": spec.model, "data": spec.data, "rank": adapter.rank, "alpha": adapter.alpha,
        "dropout": adapter.dropout, "targets": targets, "steps": train.max_steps,
        "batch_size": train.micro_batch_size, "seq_len": train.seq_len,
        "lr": train.learning_rate, "max_grad_norm": train.max_grad_norm,
        "eval_every": train.eval_every, "seed": train.seed, **options,
    }  # fmt: skip


def _check_options(options: dict[str, Any]) -> None:
    """Raise ValueError naming the first option out of range."""
    for name, low in (("max_train_examples", 1), ("max_val_examples", 1), ("generate", 0),
                      ("max_new_tokens", 1)):  # fmt: skip
        if options[name] < low:
            raise ValueError(f"run_baseline: {name} must be >= {low} (got {options[name]!r})")


def run_baseline(
    spec: RunSpec,
    output_dir: str | Path,
    *,
    max_train_examples: int = 256,
    max_val_examples: int = 64,
    generate: int = 3,
    max_new_tokens: int = 96,
    device: str = "auto",
    model: torch.nn.Module | None = None,
    tokenizer: Any = None,
    on_step: Callable[[dict[str, float]], None] | None = None,
    callbacks: Sequence[Callback] = (),
) -> BaselineResult:
    """Fine-tune ``spec.model`` with coursekit's LoRA and trainer, and measure the run.

    Args:
        spec: the training settings, usually :func:`baseline_spec`'s.
        output_dir: where the trainer's run folder goes (``<output_dir>/train``; a previous
            baseline run there is replaced).
        max_train_examples: at most this many training samples, a seeded random subset.
        max_val_examples: at most this many validation samples, a seeded random subset.
        generate: held-out test-split functions to generate tests for after training.
        max_new_tokens: token budget of each generation.
        device: ``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda[:n]``.
        model: the base model already loaded from ``spec.model`` (loaded when None); the
            adapters are applied to it in place.
        tokenizer: its tokenizer (loaded when None).
        on_step: called with each history row.
        callbacks: more trainer callbacks, e.g. a
            :class:`~coursekit.display.progress.ProgressBar` (the notebook's progress bar).

    Returns:
        The history, final metrics and a few generations for held-out functions.

    Raises:
        ValueError: an option out of range, or no train or val example fits ``seq_len``.
    """
    options = {
        "max_train_examples": max_train_examples,
        "max_val_examples": max_val_examples,
        "generate": generate,
        "max_new_tokens": max_new_tokens,
        "device": device,
    }
    _check_options(options)
    started = time.perf_counter()
    data, seq_len, seed = data_dir(spec), spec.train.seq_len, spec.train.seed
    written = dataclasses.replace(spec, data=str(data))  # config.yaml names the data it used
    run_dir = prepare_output(_fresh_run_dir(Path(output_dir) / "train"), written, resume=False)
    splits = load_splits(data)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(spec.model)
    train, val = (
        encode_split(subset(splits[name], limit, seed), tokenizer, seq_len)
        for name, limit in (("train", max_train_examples), ("val", max_val_examples))
    )
    if not train or not val:
        raise ValueError(f"{data}: no train or val example fits seq_len={seq_len}")
    torch_device = resolve_device(device)
    seed_everything(seed)
    model = model if model is not None else load_model(spec.model, device=torch_device)
    if spec.adapter_config is not None:
        apply(model, spec.adapter_config)
    else:
        model.requires_grad_(True)
    history = _History(on_step)
    cpu = torch_device.type == "cpu"
    summary = train_run(
        model, train, val, spec.train, run_dir, pad_id=tokenizer.pad_token_id,
        callbacks=[history, *callbacks], accelerator=make_accelerator(spec.train, cpu=cpu),
    )  # fmt: skip
    result = BaselineResult(
        spec=spec, settings=_settings(spec, options), history=history.rows, run_dir=run_dir
    )
    result.metrics = _metrics(history.rows, summary, model, len(train), len(val), torch_device)
    result.generations = generate_tests(
        model, tokenizer, splits["test"][:generate], max_new_tokens=max_new_tokens
    )
    result.metrics["wall_seconds"] = time.perf_counter() - started
    return result


def _metrics(rows, summary, model, n_train, n_val, device) -> dict[str, float]:
    """The Phase 1 metrics table from the history and the trainer's summary."""
    losses = [row["train_loss"] for row in rows if "train_loss" in row]
    evals = [row["val_loss"] for row in rows if "val_loss" in row]
    return {
        "train_loss_start": losses[0],
        "train_loss_end": losses[-1],
        "val_loss_start": evals[0],
        "val_loss_end": evals[-1],
        "val_perplexity": math.exp(evals[-1]),
        "tokens_per_second": summary["tokens_per_s"],
        "train_seconds": summary["train_seconds"],
        "trainable_parameters": trainable_count(model),
        "total_parameters": count_parameters(model),
        "train_examples": n_train,
        "val_examples": n_val,
        "peak_memory_bytes": peak_memory_bytes(device),
    }
