"""The TRL peer of ``coursekit bench``: ``SFTTrainer`` + peft, packed, loss on completions.

TRL's own recipe for the fine-tune coursekit runs: the same encoded examples (prompt and
answer token ids; the answer is the completion), best-fit-decreasing packing into rows of
``seq_len`` tokens, padding-free batches (each micro-batch flattened into one sequence with
per-sample position ids, which transformers turns into a block-diagonal causal mask) and the
loss on completion tokens only (``completion_only_loss``). The LoRA (peft, rank, alpha =
2 · rank, q/v), optimizer (AdamW, constant lr, clip 1.0), micro-batch size, steps and seed
are ``run_hf``'s. TRL's loss also computes its logged token accuracy and entropy: that is
part of its step as shipped.
"""

from __future__ import annotations

import tempfile
from typing import Any

import torch

from coursekit.errors import CoursekitError
from coursekit.recipes.bench.train_throughput import encoded, peer_model, val_loss

TRL_VERSION = "1.16.0"
"""The TRL release the peer is written for (pyproject.toml's dev pin)."""


def completion_dataset(examples: list) -> Any:
    """Return a ``datasets.Dataset`` of ``input_ids`` and ``completion_mask`` (1 on answers).

    Example:
        >>> completion_dataset(train)[0].keys()  # doctest: +SKIP
        dict_keys(['input_ids', 'completion_mask'])
    """
    from datasets import Dataset

    return Dataset.from_dict({
        "input_ids": [list(e.input_ids) for e in examples],
        "completion_mask": [[int(label != -100) for label in e.labels] for e in examples],
    })  # fmt: skip


def run_trl(
    *, model: str = "tiny", data: str = "", steps: int = 12, batch_size: int = 4,
    seq_len: int = 384, rank: int = 8, lr: float = 2e-3, seed: int = 0, method: str = "lora",
) -> dict[str, Any]:  # fmt: skip
    """Fine-tune with TRL ``SFTTrainer`` + peft (packed, padding-free, completion-only loss).

    Returns target tokens, train seconds, validation loss (as ``run_hf``), positions and
    model FLOPs. ``method`` is one of ``PEER_METHODS``.

    Raises:
        CoursekitError: TRL is not installed (the fix names the pinned version).
    """
    try:
        from trl import SFTConfig, SFTTrainer
    except ImportError as missing:
        raise CoursekitError(
            f"the trl engine needs TRL ({missing}): pip install trl=={TRL_VERSION}, "
            "or leave trl out of --engines"
        ) from None

    from coursekit.recipes.bench.flops import count_model_flops

    tokenizer, train, val = encoded(model, data, seq_len)
    torch.manual_seed(seed)
    peft_model = peer_model(model, method, rank)
    counter = count_model_flops(peft_model, seq_len)
    counted = {"target_tokens": 0}

    def count(module, positional, kwargs):
        if module.training:  # the batches trained on, not evaluated ones
            counted["target_tokens"] += int((kwargs["labels"][:, 1:] != -100).sum())

    peft_model.register_forward_pre_hook(count, with_kwargs=True)
    with tempfile.TemporaryDirectory() as out:
        arguments = SFTConfig(
            output_dir=out, per_device_train_batch_size=batch_size, max_steps=steps,
            learning_rate=lr, lr_scheduler_type="constant", weight_decay=0.0,
            max_grad_norm=1.0, save_strategy="no", eval_strategy="no", report_to=[],
            use_cpu=True, seed=seed, logging_steps=steps, dataloader_num_workers=0,
            disable_tqdm=True, max_length=seq_len, packing=True, packing_strategy="bfd",
            padding_free=True, completion_only_loss=True,
        )  # fmt: skip
        trainer = SFTTrainer(
            model=peft_model, args=arguments, train_dataset=completion_dataset(train),
            processing_class=tokenizer,
        )  # fmt: skip
        metrics = trainer.train().metrics
    return {
        "target_tokens": counted["target_tokens"],
        "train_seconds": metrics["train_runtime"],
        "val_loss": val_loss(peft_model, val, tokenizer.pad_token_id),
        **counter,
    }
