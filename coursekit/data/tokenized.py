"""Tokenization cache: encode each (tokenizer, seq_len, sample) once, in memory and on disk.

Encoding the seed set with the Qwen2.5 tokenizer takes seconds; a notebook re-run, a resume or
a sweep of learning rates would pay it again. ``TokenCache`` keys every encoded example by

- the tokenizer's fingerprint: SHA-256 of its serialized vocabulary and merges, its chat
  template and the prompt texts of ``coursekit.data.prompts`` (so editing the system prompt
  invalidates the cache);
- ``seq_len`` (answers are cut at it);
- the sample's id and a SHA-256 of its content (so an edited sample is re-encoded).

On disk it is one JSON file per (fingerprint, seq_len) under
``coursekit.loading.cache_root() / "tokenized"``, rewritten atomically when new samples appear.

Guide: docs/training.md. Used in notebooks/phase1_baseline.ipynb.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coursekit.data import prompts
from coursekit.data.corpus import Sample
from coursekit.data.prompts import EncodedExample, encode_example
from coursekit.io import write_json

FORMAT_VERSION = 1
"""Bump when the encoding changes in a way the fingerprint cannot see."""


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Return a SHA-256 over the tokenizer's model, chat template and the prompt texts."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab())
    parts = [
        str(FORMAT_VERSION),
        model,
        str(getattr(tokenizer, "chat_template", "")),
        prompts.SYSTEM_PROMPT,
        prompts.INSTRUCTION,
    ]
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def sample_key(sample: Sample) -> str:
    """Return ``"<id>@<first 16 hex of the SHA-256 of the sample's fields>"``."""
    content = json.dumps(dataclasses.asdict(sample), sort_keys=True, default=str)
    return f"{sample.id}@{hashlib.sha256(content.encode('utf-8')).hexdigest()[:16]}"


class TokenCache:
    """Encoded examples by (tokenizer fingerprint, seq_len, sample key), in memory and on disk.

    Args:
        directory: where the JSON files live; ``cache_root() / "tokenized"`` when None.
        persist: write new encodings to disk (False keeps the cache in memory only).

    Example:
        >>> cache = TokenCache()  # doctest: +SKIP
        >>> train = cache.encode(splits["train"], tokenizer, seq_len=512)  # doctest: +SKIP
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, persist: bool = True):
        if directory is None:
            from coursekit.loading import cache_root

            directory = cache_root() / "tokenized"
        self.directory, self.persist = Path(directory), persist
        self.tables: dict[tuple[str, int], dict[str, Any]] = {}
        self.encoded = 0
        """How many samples were actually tokenized (the rest came from the cache)."""

    def _path(self, fingerprint: str, seq_len: int) -> Path:
        return self.directory / f"{fingerprint[:32]}-s{seq_len}.json"

    def _table(self, fingerprint: str, seq_len: int) -> dict[str, Any]:
        key = (fingerprint, seq_len)
        if key not in self.tables:
            path = self._path(fingerprint, seq_len)
            try:
                self.tables[key] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                self.tables[key] = {}
        return self.tables[key]

    def encode(
        self, samples: Sequence[Sample], tokenizer: Any, seq_len: int
    ) -> list[EncodedExample]:
        """Return the encoded samples that have a target token within ``seq_len``, in order.

        Samples whose prompt alone fills ``seq_len`` are left out, as in ``encode_example``.
        """
        fingerprint = tokenizer_fingerprint(tokenizer)
        table = self._table(fingerprint, seq_len)
        keys = [sample_key(s) for s in samples]
        missing = [(k, s) for k, s in zip(keys, samples, strict=True) if k not in table]
        for key, sample in missing:
            example = encode_example(sample, tokenizer, seq_len)
            table[key] = None if example is None else [example.input_ids, example.labels]
        self.encoded += len(missing)
        if missing and self.persist:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_json(self._path(fingerprint, seq_len), table)
        out = []
        for key, sample in zip(keys, samples, strict=True):
            if table[key] is not None:
                ids, labels = table[key]
                example = EncodedExample(
                    sample_id=sample.id, input_ids=tuple(ids), labels=tuple(labels)
                )
                if example.target_tokens > 0:
                    out.append(example)
        return out
