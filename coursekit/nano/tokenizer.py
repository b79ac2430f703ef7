"""Train the nano model's tokenizer: byte-level BPE in Qwen2's pipeline, Qwen's added tokens.

The same recipe as Qwen2.5's tokenizer at 1/19 of the vocabulary:

* pipeline: NFC normalizer, Qwen2's split regex then ByteLevel, ByteLevel decoder
  (:func:`coursekit.tokenizer.qwen2_pipeline`), so text is cut into words exactly as Qwen2 does;
* BPE merges learnt by ``tokenizers``' trainer on the pretraining documents, starting from
  all 256 bytes (no unknown token can occur);
* Qwen2.5's 22 added tokens (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>``, the FIM and
  repo tokens...) appended after the base vocabulary, in Qwen's order, and Qwen2.5-Instruct's
  ChatML chat template, so prompts are built by the same code as for the real model.

Guide: docs/nano.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tokenizers import pre_tokenizers, trainers
from tokenizers.models import BPE

from coursekit.io import atomic_directory
from coursekit.tokenizer import add_special_tokens, qwen2_pipeline, write_tokenizer_files

ADDED_TOKENS = 22
"""Qwen2.5's added tokens (see :data:`coursekit.tokenizer.QWEN25_SPECIAL_TOKENS`)."""


def train_tokenizer(
    documents: Iterable[str], out_dir: str | os.PathLike[str], *, vocab_size: int = 8192
) -> Path:
    """Train a byte-level BPE tokenizer on ``documents`` and save it to ``out_dir``.

    Ids 0..vocab_size-23 are the 256 bytes and the learnt merges; the last 22 ids are Qwen's
    added tokens. ``AutoTokenizer.from_pretrained(out_dir)`` loads it as a Qwen2 fast tokenizer.

    Args:
        documents: the training text, one document per item.
        out_dir: directory to create or replace (atomically).
        vocab_size: total size including the 22 added tokens (at least 256 + 22 + 1).

    Returns:
        ``out_dir`` as a `Path`.

    Raises:
        ValueError: ``vocab_size`` too small for the byte alphabet and the added tokens.

    Example:
        >>> train_tokenizer(["fn main() {}"] * 10, tmp / "tok", vocab_size=300)  # doctest: +SKIP
    """
    if vocab_size < 256 + ADDED_TOKENS + 1:
        raise ValueError(
            f"vocab_size must be >= {256 + ADDED_TOKENS + 1} (256 bytes, {ADDED_TOKENS} added "
            f"tokens and one merge) (got {vocab_size})"
        )
    backend = qwen2_pipeline(BPE(fuse_unk=False, byte_fallback=False))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - ADDED_TOKENS,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator(documents, trainer=trainer)
    special_ids = add_special_tokens(backend)
    target = Path(out_dir).expanduser().absolute()
    with atomic_directory(target) as staging:
        write_tokenizer_files(backend, staging, special_ids)
    return target
