"""Pretraining rows: documents tokenized, joined with ``<|endoftext|>`` and cut to ``seq_len``.

Each document (one source file) is encoded, followed by ``<|endoftext|>``; the streams of all
documents are concatenated and cut into rows of exactly ``seq_len`` tokens (the last partial
row is dropped). Every token of a row is a target: ``labels = input_ids`` (the loop shifts).

Guide: docs/nano.md.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from coursekit.data.prompts import EncodedExample


def token_stream(documents: Iterable[str], tokenizer: Any) -> list[int]:
    """Return the ids of all ``documents``, each followed by ``<|endoftext|>``'s id."""
    end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    docs = list(documents)
    stream: list[int] = []
    for start in range(0, len(docs), 256):  # bounded batches keep memory flat
        for ids in tokenizer(docs[start : start + 256], verbose=False)["input_ids"]:
            stream.extend(ids)
            stream.append(end)
    return stream


def rows(stream: Sequence[int], seq_len: int, *, prefix: str = "row") -> list[EncodedExample]:
    """Cut ``stream`` into ``len(stream) // seq_len`` rows of ``seq_len`` tokens, all targets.

    Example:
        >>> [r.input_ids for r in rows(range(7), 3)]
        [(0, 1, 2), (3, 4, 5)]
    """
    out = []
    for i in range(len(stream) // seq_len):
        ids = tuple(stream[i * seq_len : (i + 1) * seq_len])
        out.append(EncodedExample(sample_id=f"{prefix}-{i}", input_ids=ids, labels=ids))
    return out


def sample_rows(examples: Sequence[EncodedExample], count: int, seed: int) -> list[EncodedExample]:
    """Return ``count`` rows drawn without replacement (seeded), in their original order."""
    if count >= len(examples):
        return list(examples)
    picked = sorted(random.Random(seed).sample(range(len(examples)), count))
    return [examples[i] for i in picked]
