"""Training throughput: coursekit's loop against HF ``Trainer`` + peft, same LoRA fine-tune.

Both engines fine-tune the same model on the same split (the seed set by default) with the
same LoRA (rank, alpha = 2 · rank, q/v targets), optimizer (AdamW, constant lr, clip 1.0),
micro-batch size, steps and seed. Measured per engine (``benchmarks/train_throughput.py``
runs each in its own subprocess, so each peak RSS is its own):

- target tokens/s = target tokens / training seconds (HF: the ``train_runtime`` of
  ``Trainer.train``; coursekit: the summed step times);
- peak RSS of the process (``ru_maxrss``);
- the final validation loss, measured the same way for both (loss per target token over the
  validation split, ``coursekit.train.loss.TargetLoss``).

coursekit packs several samples per row (no padding waste) and runs the LM head on target
positions only; HF pads every sample to the longest of its batch and computes logits
everywhere. With packing a coursekit step holds more samples than an HF step, so it also sees
more data in the same number of steps: compare the validation losses with that in mind.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

RESULT_PREFIX = "RESULT "
"""Marks the line of a child process's stdout that holds its JSON result."""


def encoded(model: str, data: str, seq_len: int) -> tuple[Any, list, list]:
    """Return (tokenizer, encoded train split, encoded val split) through the token cache.

    Args:
        model: a model name or directory (its tokenizer is used).
        data: a split directory; empty means the bundled seed set.
        seq_len: longest sequence in tokens.
    """
    from coursekit.data.corpus import load_splits, seed_dir
    from coursekit.data.tokenized import TokenCache
    from coursekit.loading import load_tokenizer

    tokenizer = load_tokenizer(model)
    splits = load_splits(Path(data) if data else seed_dir())
    cache = TokenCache()
    train = cache.encode(splits["train"], tokenizer, seq_len)
    val = cache.encode(splits["val"], tokenizer, seq_len)
    return tokenizer, train, val


@torch.no_grad()
def val_loss(model: torch.nn.Module, val: list, pad_id: int) -> float:
    """Return Σ loss_sum / Σ n_targets over ``val`` in batches of 4 (one example per row)."""
    from coursekit.data.batching import collate, target_count
    from coursekit.train.loss import TargetLoss

    loss, total = TargetLoss(model).eval(), 0.0
    for start in range(0, len(val), 4):
        total += loss(**collate([[e] for e in val[start : start + 4]], pad_id)).item()
    return total / sum(target_count([e]) for e in val)


def run_coursekit(
    *, model: str = "tiny", data: str = "", steps: int = 12, batch_size: int = 4,
    seq_len: int = 384, rank: int = 8, lr: float = 2e-3, seed: int = 0, method: str = "lora",
) -> dict[str, Any]:  # fmt: skip
    """Fine-tune with coursekit's trainer (packing on); return tokens, seconds, val loss.

    ``method`` is a run method of ``coursekit.adapters.run_methods()`` (``full`` trains every
    weight). The result also holds the positions and model FLOPs trained on
    (``coursekit.recipes.bench.flops.count_model_flops``).
    """
    from coursekit.adapters import AdapterConfig, apply
    from coursekit.loading import load_model
    from coursekit.recipes.bench.flops import count_model_flops
    from coursekit.train.config import TrainConfig
    from coursekit.train.run import prepare_output, seed_everything, train_run
    from coursekit.train.spec import RunSpec

    tokenizer, train, val = encoded(model, data, seq_len)
    spec = RunSpec(
        model=model,
        method=method,
        adapter=AdapterConfig(rank=rank, alpha=2 * rank, targets="qv"),
        train=TrainConfig(
            max_steps=steps, micro_batch_size=batch_size, learning_rate=lr,
            schedule="constant", seq_len=seq_len, packing=True, eval_every=0, seed=seed,
        ),
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        prepare_output(out, spec, resume=False)
        seed_everything(seed)
        lora = load_model(model)
        if spec.adapter_config is None:
            lora.requires_grad_(True)
        else:
            lora = apply(lora, spec.adapter_config)
        counter = count_model_flops(lora, seq_len)
        summary = train_run(lora, train, val, spec.train, out, pad_id=tokenizer.pad_token_id)
    return {
        "target_tokens": summary["target_tokens"],
        "train_seconds": summary["train_seconds"],
        "val_loss": val_loss(lora, val, tokenizer.pad_token_id),
        **counter,
    }


def run_hf(
    *, model: str = "tiny", data: str = "", steps: int = 12, batch_size: int = 4,
    seq_len: int = 384, rank: int = 8, lr: float = 2e-3, seed: int = 0, method: str = "lora",
) -> dict[str, Any]:  # fmt: skip
    """Fine-tune with HF ``Trainer`` + peft (padding); return tokens, seconds, val loss.

    ``method`` is one of ``PEER_METHODS`` (``full``: no peft, every weight trained). The
    result also holds the positions and model FLOPs trained on.
    """
    from transformers import Trainer, TrainingArguments

    from coursekit.recipes.bench.flops import count_model_flops

    tokenizer, train, val = encoded(model, data, seq_len)
    torch.manual_seed(seed)
    peft_model = peer_model(model, method, rank)
    counter = count_model_flops(peft_model, seq_len)
    counted = {"target_tokens": 0}

    def collate(features):
        width = max(len(f.input_ids) for f in features)
        pad = tokenizer.pad_token_id
        ids = [list(f.input_ids) + [pad] * (width - len(f.input_ids)) for f in features]
        labels = [list(f.labels) + [-100] * (width - len(f.labels)) for f in features]
        mask = [[1] * len(f.input_ids) + [0] * (width - len(f.input_ids)) for f in features]
        return {k: torch.tensor(v) for k, v in
                {"input_ids": ids, "labels": labels, "attention_mask": mask}.items()}  # fmt: skip

    def count(module, positional, kwargs):
        if module.training:  # the batches trained on, not prefetched or evaluated ones
            counted["target_tokens"] += int((kwargs["labels"][:, 1:] != -100).sum())

    peft_model.register_forward_pre_hook(count, with_kwargs=True)
    with tempfile.TemporaryDirectory() as out:
        arguments = TrainingArguments(
            output_dir=out, per_device_train_batch_size=batch_size, max_steps=steps,
            learning_rate=lr, lr_scheduler_type="constant", weight_decay=0.0,
            max_grad_norm=1.0, save_strategy="no", eval_strategy="no", report_to=[],
            use_cpu=True, seed=seed, logging_steps=steps, remove_unused_columns=False,
            dataloader_num_workers=0, disable_tqdm=True,
        )  # fmt: skip
        trainer = Trainer(
            model=peft_model, args=arguments, train_dataset=train, data_collator=collate
        )
        metrics = trainer.train().metrics
    return {
        "target_tokens": counted["target_tokens"],
        "train_seconds": metrics["train_runtime"],
        "val_loss": val_loss(peft_model, val, tokenizer.pad_token_id),
        **counter,
    }


PEER_METHODS: tuple[str, ...] = ("lora", "dora", "full")
"""The run methods the peers (HF ``Trainer`` + peft, TRL) are benchmarked with."""


def peer_model(model: str, method: str, rank: int) -> torch.nn.Module:
    """Load ``model`` for a peer: peft LoRA or DoRA (alpha = 2 · rank, q/v), or all weights.

    Raises:
        ValueError: ``method`` is not one of ``PEER_METHODS``.
    """
    from peft import LoraConfig, get_peft_model

    from coursekit.loading import load_model

    if method not in PEER_METHODS:
        raise ValueError(f"peer method must be one of {list(PEER_METHODS)} (got {method!r})")
    base = load_model(model)
    if method == "full":
        return base.requires_grad_(True)
    lora = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"],
        use_dora=method == "dora",
    )  # fmt: skip
    return get_peft_model(base, lora)


ENGINES = {"coursekit": run_coursekit, "hf": run_hf}
"""Engine name → its run function."""


def measure_engine(
    engine: str, *, engines: dict[str, Any] | None = None, **settings: Any
) -> dict[str, Any]:
    """Run one engine and add tokens/s = target_tokens / train_seconds, peak RSS, wall time.

    Args:
        engine: ``coursekit`` or ``hf`` (or a key of ``engines``).
        engines: engine name → run function (default ``ENGINES``).
        **settings: ``model``, ``data``, ``steps``, ``batch_size``, ``seq_len``, ``rank``,
            ``lr``, ``seed``, ``method`` (the run functions' keywords).
    """
    started = time.perf_counter()
    result = (engines or ENGINES)[engine](**settings)
    result["tokens_per_s"] = result["target_tokens"] / result["train_seconds"]
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["wall_seconds"] = time.perf_counter() - started
    return result


def result_line(result: dict[str, Any]) -> str:
    """Return the stdout line a child process reports its result with."""
    return RESULT_PREFIX + json.dumps(result)


def parse_result(stdout: str) -> dict[str, Any] | None:
    """Return the last result line of a child's stdout as a dict (None when there is none)."""
    lines = [x for x in stdout.splitlines() if x.startswith(RESULT_PREFIX)]
    return json.loads(lines[-1][len(RESULT_PREFIX) :]) if lines else None


def format_report(results: dict[str, dict[str, Any]]) -> str:
    """Return the table of both engines and coursekit / HF target tokens/s."""
    lines = [f"{'engine':>10} {'target tok/s':>13} {'target tokens':>14} {'train s':>8} "
             f"{'peak RSS MiB':>13} {'val loss':>9}"]  # fmt: skip
    for engine, r in results.items():
        lines.append(f"{engine:>10} {r['tokens_per_s']:>13.1f} {r['target_tokens']:>14} "
                     f"{r['train_seconds']:>8.1f} {r['peak_rss_bytes'] / 2**20:>13.0f} "
                     f"{r['val_loss']:>9.4f}")  # fmt: skip
    speedup = results["coursekit"]["tokens_per_s"] / results["hf"]["tokens_per_s"]
    lines.append(f"coursekit / HF target tokens/s: {speedup:.2f}x")
    return "\n".join(lines)
