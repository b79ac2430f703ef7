"""The TRL peer of ``coursekit bench``: ``SFTTrainer`` + peft, packed, loss on completions.

TRL's own recipe for the fine-tune coursekit runs: the same encoded examples (prompt and
answer token ids; the answer is the completion), best-fit-decreasing packing into rows of
``seq_len`` tokens, padding-free batches (each micro-batch flattened into one sequence with
per-sample position ids, which transformers turns into a block-diagonal causal mask) and the
loss on completion tokens only (``completion_only_loss``). The LoRA (peft, rank, alpha =
2 · rank, q/v), the ``TrainingArguments`` (``peer_arguments``: optimizer, budget, seed), the
counters and the validation loss are ``run_hf``'s. Under the samples budget TRL packs the
budget's N samples into bins (best-fit decreasing reorders them) and reads the bins in order.
TRL's loss also computes its logged token accuracy and entropy: that is
part of its step as shipped.
"""

from __future__ import annotations

import tempfile
from typing import Any

import torch

from coursekit.errors import CoursekitError
from coursekit.recipes.bench.budget import load_data, val_loss
from coursekit.recipes.bench.train_throughput import peer_arguments, peer_model, peer_run

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
    *, model: str = "tiny", data: str = "", steps: int | None = 12, samples: int | None = None,
    val_samples: int | None = None, batch_size: int = 4, seq_len: int = 384, rank: int = 8,
    lr: float = 2e-3, seed: int = 0, method: str = "lora", adapters: int = 1,
    targets: str = "qv", precision: str = "fp32", device: str = "cpu",
) -> dict[str, Any]:  # fmt: skip
    """Fine-tune with TRL ``SFTTrainer`` + peft (packed, padding-free, completion-only loss).

    Returns what ``run_hf`` returns: target tokens, train seconds, steps, samples fed,
    validation loss, positions and model FLOPs. ``method`` is one of ``PEER_METHODS`` (or
    ``qlora`` on CUDA); ``targets``, ``precision`` and ``device`` as in ``run_hf``.

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

    fed = load_data(model=model, data=data, seq_len=seq_len, seed=seed, samples=samples,
                    val_samples=val_samples)  # fmt: skip
    pad = fed.tokenizer.pad_token_id
    torch.manual_seed(seed)
    peft_model = peer_model(model, method, rank, targets=targets, precision=precision,
                            device=device)  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        arguments = SFTConfig(
            **peer_arguments(out, batch_size=batch_size, lr=lr, seed=seed,
                             steps=None if fed.one_pass else steps, precision=precision,
                             device=device),
            max_length=seq_len, packing=True, packing_strategy="bfd", padding_free=True,
            completion_only_loss=True,
        )  # fmt: skip
        trainer = SFTTrainer(
            model=peft_model, args=arguments, train_dataset=completion_dataset(fed.train),
            processing_class=fed.tokenizer,
        )  # fmt: skip
        result = peer_run(peft_model, trainer, seq_len, pad)()
    return {**result, "val_loss": val_loss(peft_model, fed.val, pad)}
