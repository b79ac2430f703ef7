"""Phase 1 baseline: a short, real LoRA fine-tune for Rust test generation.

The Python counterpart of the course's ``finetune_test_gen`` example, used by
``notebooks/phase1_baseline.ipynb`` and ``coursekit baseline``. It composes coursekit's own
pieces: LoRA adapters from :mod:`coursekit.adapters` on the model's projections, and the
trainer of :mod:`coursekit.train` (loss summed over target tokens and divided by their
number, real gradient clipping, AdamW, validation before training, every ``eval_every``
steps and at the end). The run folder it writes is a regular ``coursekit train`` run
(``config.yaml``, ``metrics.jsonl``, ``adapter/``, ``summary.json``). Every number in the
result is measured during the run on the machine that runs it.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from coursekit.adapters import TARGET_PRESETS, AdapterConfig, apply, trainable_count
from coursekit.data.corpus import Sample, default_corpus_dir, load_splits
from coursekit.data.prompts import EncodedExample, encode_example, prompt_text
from coursekit.io import atomic_open, write_json
from coursekit.models import DEFAULT_MODEL, count_parameters, load_model, load_tokenizer
from coursekit.train import BaseCallback, TrainConfig
from coursekit.train.loop import make_accelerator
from coursekit.train.optim import peak_memory_bytes
from coursekit.train.run import prepare_output, seed_everything, train_run
from coursekit.train.spec import RunSpec

Targets = Literal["qv", "attention", "mlp", "all-linear"]


@dataclass(frozen=True, kw_only=True)
class BaselineConfig:
    """Settings of the Phase 1 baseline fine-tune (defaults: ≤ 3 minutes on 2 CPU cores)."""

    model: str = DEFAULT_MODEL
    """``nano`` (bundled, pretrained), ``tiny`` (random), a bundled model, a preset, a hub id or
    a checkpoint directory."""
    data: str = ""
    """Directory with ``train/val/test.jsonl[.gz]``; empty means the committed corpus
    (``data/corpus``) when present, else the bundled seed set."""
    max_train_examples: int = 256
    """At most this many training samples, a seeded random subset (keeps a run short)."""
    max_val_examples: int = 64
    """At most this many validation samples, a seeded random subset."""
    rank: int = 8
    """LoRA rank r."""
    alpha: float = 16.0
    """LoRA alpha; the update is scaled by alpha / r."""
    dropout: float = 0.0
    """Dropout on the LoRA input, in [0, 1)."""
    targets: Targets = "qv"
    """Which projections get adapters."""
    steps: int = 40
    """Optimizer steps."""
    batch_size: int = 4
    """Examples per step."""
    seq_len: int = 384
    """Longest sequence (tokens); longer answers are cut."""
    lr: float = 2e-3
    """AdamW learning rate (constant)."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global L2 norm."""
    eval_every: int = 10
    """Validation loss every this many steps (and at the start and end)."""
    seed: int = 0
    """Seed for initialisation and data order."""
    device: str = "auto"
    """``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda[:n]``."""
    generate: int = 3
    """Held-out test-split functions to generate tests for after training."""
    max_new_tokens: int = 96
    """Token budget of each generation."""

    def __post_init__(self) -> None:
        """Validate every field; raise ValueError naming the field, value and rule."""
        positive = ("rank", "steps", "batch_size", "eval_every", "max_new_tokens")
        positive += ("max_train_examples", "max_val_examples")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"BaselineConfig.{name} must be >= 1 (got {getattr(self, name)})")
        checks = [
            ("alpha", self.alpha > 0, "must be > 0"),
            ("dropout", 0 <= self.dropout < 1, "must be in [0, 1)"),
            ("lr", self.lr > 0, "must be > 0"),
            ("max_grad_norm", self.max_grad_norm > 0, "must be > 0"),
            ("seq_len", self.seq_len >= 16, "must be >= 16"),
            ("generate", self.generate >= 0, "must be >= 0"),
            ("targets", self.targets in TARGET_PRESETS, f"must be one of {list(TARGET_PRESETS)}"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"BaselineConfig.{name} {rule} (got {getattr(self, name)!r})")

    def data_dir(self) -> Path:
        """Return the data directory; empty ``data`` means :func:`default_corpus_dir`."""
        return Path(self.data) if self.data else default_corpus_dir()

    def torch_device(self) -> torch.device:
        """Resolve ``device``: ``auto`` picks CUDA when available."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def spec(self) -> RunSpec:
        """Return the ``coursekit train`` settings of this run (one example per row, no packing)."""
        adapter = AdapterConfig(
            rank=self.rank, alpha=self.alpha, dropout=self.dropout, targets=self.targets
        )
        train = TrainConfig(
            max_steps=self.steps,
            micro_batch_size=self.batch_size,
            learning_rate=self.lr,
            schedule="constant",
            max_grad_norm=self.max_grad_norm,
            seq_len=self.seq_len,
            packing=False,
            eval_every=self.eval_every,
            seed=self.seed,
        )
        return RunSpec(
            model=self.model, data=str(self.data_dir()), method="lora", adapter=adapter, train=train
        )


@dataclass
class BaselineResult:
    """What a baseline run measured."""

    config: BaselineConfig
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
        from coursekit.plots import plot_losses

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "metrics": write_json(
                out / "metrics.json", {**self.metrics, "config": asdict(self.config)}
            ),
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


def _subset(samples: list[Sample], limit: int, seed: int) -> list[Sample]:
    """Return at most ``limit`` samples: all of them, or a seeded sample in file order."""
    if len(samples) <= limit:
        return samples
    keep = sorted(random.Random(seed).sample(range(len(samples)), limit))
    return [samples[i] for i in keep]


def _fresh_run_dir(run_dir: Path) -> Path:
    """Remove a previous baseline run folder (one holding config.yaml) so it can be rewritten."""
    if (run_dir / "config.yaml").is_file():
        shutil.rmtree(run_dir)
    return run_dir


def run_baseline(
    config: BaselineConfig,
    output_dir: str | Path,
    *,
    model: torch.nn.Module | None = None,
    tokenizer: Any = None,
    on_step: Callable[[dict[str, float]], None] | None = None,
) -> BaselineResult:
    """Fine-tune ``config.model`` with coursekit's LoRA and trainer, and measure the run.

    Args:
        config: the run's settings.
        output_dir: where the trainer's run folder goes (``<output_dir>/train``; a previous
            baseline run there is replaced).
        model: the base model already loaded from ``config.model`` (loaded when None); the
            adapters are applied to it in place.
        tokenizer: its tokenizer (loaded when None).
        on_step: called with each history row (for progress display).

    Returns:
        The history, final metrics and a few generations for held-out functions.

    Example:
        >>> result = run_baseline(BaselineConfig(steps=5), "runs/demo")  # doctest: +SKIP
        >>> result.metrics["val_loss_end"] < result.metrics["val_loss_start"]  # doctest: +SKIP
        True
    """
    started = time.perf_counter()
    spec = config.spec()
    run_dir = prepare_output(_fresh_run_dir(Path(output_dir) / "train"), spec, resume=False)
    splits = load_splits(config.data_dir())
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config.model)
    train, val = (
        encode_split(_subset(splits[name], limit, config.seed), tokenizer, config.seq_len)
        for name, limit in (("train", config.max_train_examples), ("val", config.max_val_examples))
    )
    if not train or not val:
        raise ValueError(
            f"{config.data_dir()}: no train or val example fits seq_len={config.seq_len}"
        )
    device = config.torch_device()
    seed_everything(config.seed)
    model = model if model is not None else load_model(config.model, device=device)
    apply(model, spec.adapter_config)
    history = _History(on_step)
    summary = train_run(
        model, train, val, spec.train, run_dir, pad_id=tokenizer.pad_token_id,
        callbacks=[history], accelerator=make_accelerator(spec.train, cpu=device.type == "cpu"),
    )  # fmt: skip
    result = BaselineResult(config=config, history=history.rows, run_dir=run_dir)
    result.metrics = _metrics(history.rows, summary, model, len(train), len(val), device)
    result.generations = generate_tests(model, tokenizer, splits["test"][: config.generate], config)
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


def generate_tests(
    model, tokenizer, samples: Sequence[Sample], config: BaselineConfig
) -> list[dict[str, str]]:
    """Greedy-decode tests for each sample's function; returns them beside the reference."""
    model.eval()
    rows = []
    for sample in samples:
        prompt = tokenizer(
            prompt_text(sample, tokenizer), return_tensors="pt", add_special_tokens=False
        )
        prompt = {k: v.to(model.device) for k, v in prompt.items()}
        output = model.generate(
            **prompt,
            max_new_tokens=config.max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        )
        text = tokenizer.decode(output[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
        rows.append(
            {
                "id": sample.id,
                "function": sample.function,
                "reference": sample.tests,
                "generated": text,
            }
        )
    return rows
