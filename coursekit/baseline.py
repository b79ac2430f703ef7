"""Phase 1 baseline: a short, real LoRA fine-tune for Rust test generation.

The Python counterpart of the course's ``finetune_test_gen`` example, used by
``notebooks/phase1_baseline.ipynb`` and ``coursekit baseline``. It applies peft's LoRA to a
Qwen2 model and runs a plain loop: a micro-batch of examples, the cross-entropy summed over
target tokens and divided by their count, gradient clipping, AdamW. Validation loss is
measured on the validation split before training and every ``eval_every`` steps. Every
number in the result is measured during the run on the machine that runs it.

(The adapters and training-engine issues replace peft and this loop with coursekit's own.)
"""

from __future__ import annotations

import math
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from coursekit.data.corpus import Sample, load_splits, seed_dir
from coursekit.data.prompts import IGNORE_INDEX, EncodedExample, encode_example, prompt_text
from coursekit.io import atomic_open, write_json
from coursekit.models import count_parameters, load_model, load_tokenizer

Targets = Literal["qv", "attention", "all-linear"]
TARGET_MODULES = {
    "qv": ("q_proj", "v_proj"),
    "attention": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "all-linear": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}


@dataclass(frozen=True, kw_only=True)
class BaselineConfig:
    """Settings of the Phase 1 baseline fine-tune (defaults: ≤ 3 minutes on 2 CPU cores)."""

    model: str = "tiny"
    """``tiny``, a bundled model, a preset, a hub id or a checkpoint directory."""
    data: str = ""
    """Directory with ``train/val/test.jsonl[.gz]``; empty means the bundled seed set."""
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
            ("targets", self.targets in TARGET_MODULES, f"must be one of {list(TARGET_MODULES)}"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"BaselineConfig.{name} {rule} (got {getattr(self, name)!r})")

    def data_dir(self) -> Path:
        """Return the data directory, the bundled seed set when ``data`` is empty."""
        return Path(self.data) if self.data else seed_dir()

    def torch_device(self) -> torch.device:
        """Resolve ``device``: ``auto`` picks CUDA when available."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


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


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory so far: CUDA ``max_memory_allocated``, or this process's peak RSS on CPU.

    On CPU this is ``getrusage(RUSAGE_SELF).ru_maxrss`` (Linux reports KiB): the high-water
    mark of the whole process, Python, libraries and data included, not only tensors.
    """
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def collate(examples: Sequence[EncodedExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad a micro-batch to its longest example (right padding, masked out of attention and loss).

    Returns ``input_ids``, ``labels`` and ``attention_mask``, each of shape (b, s_max).
    """
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def token_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Sum of next-token cross-entropies over target tokens, and their count.

    loss_sum = Σ_{t: label_{t+1} ≠ -100} −log p(label_{t+1} | x_{≤t}).

    The LM head (d → V, V = 151,936 for Qwen2.5) runs only on the n positions that predict a
    target token, (n, d) → (n, V), instead of all b·s positions: the prompt's logits would
    be thrown away, and on a small model they cost most of the step.
    """
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = causal_lm.model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state  # (b, s, d)
    targets = batch["labels"][:, 1:]  # (b, s-1): the token each position predicts
    keep = targets != IGNORE_INDEX
    logits = causal_lm.lm_head(hidden[:, :-1][keep])  # (n, V)
    loss_sum = torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction="sum")
    return loss_sum, int(keep.sum())


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    examples: Sequence[EncodedExample],
    pad_id: int,
    device: torch.device,
    batch_size: int,
) -> float:
    """Mean cross-entropy per target token over ``examples`` (nats)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = {
            k: v.to(device)
            for k, v in collate(examples[start : start + batch_size], pad_id).items()
        }
        loss_sum, n = token_loss(model, batch)
        total, count = total + float(loss_sum), count + n
    model.train()
    return total / max(count, 1)


def encode_split(samples: Sequence[Sample], tokenizer: Any, seq_len: int) -> list[EncodedExample]:
    """Encode samples, dropping those whose prompt alone exceeds ``seq_len``."""
    encoded = (encode_example(s, tokenizer, seq_len) for s in samples)
    return [e for e in encoded if e is not None and e.target_tokens > 0]


def _batches(n: int, batch_size: int, seed: int):
    """Yield index lists forever: a fresh seeded permutation each epoch."""
    rng = random.Random(seed)
    while True:
        order = list(range(n))
        rng.shuffle(order)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def attach_lora(model: torch.nn.Module, config: BaselineConfig) -> torch.nn.Module:
    """Wrap ``model`` with peft LoRA adapters on ``config.targets``; the base stays frozen."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(TARGET_MODULES[config.targets]),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def run_baseline(
    config: BaselineConfig,
    *,
    model: torch.nn.Module | None = None,
    tokenizer: Any = None,
    on_step: Callable[[dict[str, float]], None] | None = None,
) -> BaselineResult:
    """Fine-tune ``config.model`` with LoRA on the train split and measure the run.

    Args:
        config: the run's settings.
        model: the base model already loaded from ``config.model`` (loaded when None); it is
            wrapped with adapters in place.
        tokenizer: its tokenizer (loaded when None).
        on_step: called with each history row (for progress display).

    Returns:
        The history, final metrics and a few generations for held-out functions.

    Example:
        >>> result = run_baseline(BaselineConfig(steps=5))  # doctest: +SKIP
        >>> result.metrics["val_loss_end"] < result.metrics["val_loss_start"]  # doctest: +SKIP
        True
    """
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    device = config.torch_device()
    splits = load_splits(config.data_dir())
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(config.model)
    base = model if model is not None else load_model(config.model, device=device)
    model = attach_lora(base.to(device), config)
    pad_id = tokenizer.pad_token_id
    train = encode_split(splits["train"], tokenizer, config.seq_len)
    val = encode_split(splits["val"], tokenizer, config.seq_len)
    if not train or not val:
        raise ValueError(
            f"{config.data_dir()}: no train or val example fits seq_len={config.seq_len}"
        )
    result = BaselineResult(config=config)
    trained_seconds, trained_tokens = _train(
        model, train, val, config, device, pad_id, result, on_step
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    evals = [row["val_loss"] for row in result.history if "val_loss" in row]
    result.metrics = {
        "train_loss_start": result.history[1]["train_loss"],
        "train_loss_end": result.history[-1]["train_loss"],
        "val_loss_start": evals[0],
        "val_loss_end": evals[-1],
        "val_perplexity": math.exp(evals[-1]),
        "tokens_per_second": trained_tokens / trained_seconds,
        "train_seconds": trained_seconds,
        "trainable_parameters": trainable,
        "total_parameters": count_parameters(model),
        "train_examples": len(train),
        "val_examples": len(val),
        "peak_memory_bytes": peak_memory_bytes(device),
    }
    result.generations = generate_tests(model, tokenizer, splits["test"][: config.generate], config)
    result.metrics["wall_seconds"] = time.perf_counter() - started
    return result


def _train(model, train, val, config, device, pad_id, result, on_step) -> tuple[float, int]:
    """The loop: batch, loss/target tokens, backward, clip, step, evaluate. Returns (s, tokens)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    batches = _batches(len(train), min(config.batch_size, len(train)), config.seed)
    row0 = {"step": 0, "val_loss": evaluate(model, val, pad_id, device, config.batch_size)}
    result.history.append(row0)
    if on_step:
        on_step(row0)
    model.train()
    seconds, tokens = 0.0, 0
    for step in range(1, config.steps + 1):
        tick = time.perf_counter()
        examples = [train[i] for i in next(batches)]
        batch = {k: v.to(device) for k, v in collate(examples, pad_id).items()}
        loss_sum, n_targets = token_loss(model, batch)
        loss = loss_sum / n_targets
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
        optimizer.step()
        seconds += time.perf_counter() - tick
        tokens += int(batch["attention_mask"].sum())
        row = {"step": step, "train_loss": loss.item(), "grad_norm": grad_norm.item()}
        if step % config.eval_every == 0 or step == config.steps:
            row["val_loss"] = evaluate(model, val, pad_id, device, config.batch_size)
        result.history.append(row)
        if on_step:
            on_step(row)
    return seconds, tokens


@torch.no_grad()
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
