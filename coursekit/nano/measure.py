"""The numbers of the nano model's card, measured on the saved checkpoint.

The model is reloaded from the pretraining run's ``model/`` through
``AutoModelForCausalLM.from_pretrained`` (the path every user takes), then:

* held-out perplexity on a seeded sample of rows of validation + test crates' source, beside
  the add-one unigram baseline (training-text frequencies) and the freshly initialised
  model on the same tokens;
* the syntax rate of greedy completions of held-out function signatures.

Guide: docs/nano.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from coursekit.data.corpus import Sample
from coursekit.nano.config import NanoConfig
from coursekit.nano.evaluate import (
    complete_signatures,
    perplexity,
    pick_signatures,
    target_bytes,
    unigram_perplexity,
)


def measure(
    work: Path,
    data: Mapping[str, Any],
    splits: Mapping[str, Sequence[Sample]],
    config: NanoConfig,
    signatures: int,
) -> dict[str, Any]:
    """Return perplexities (model, initial model, unigram), token counts and completions.

    Args:
        work: the build's work directory (``init/``, ``pretrain/model/``, ``tokenizer/``).
        data: ``_encode``'s rows and the training stream.
        splits: the corpus splits (validation and test functions give the signatures).
        config: the build's settings (seed, vocabulary size).
        signatures: how many held-out signatures to complete.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(work / "tokenizer")
    rows = data["heldout_rows"]
    load = lambda path: AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)  # noqa: E731
    model = load(work / "pretrain" / "model")
    prompts = pick_signatures([*splits["val"], *splits["test"]], signatures, config.seed)
    completions = complete_signatures(model, tokenizer, [p for p, _ in prompts])
    ppl = perplexity(model, rows)
    unigram = unigram_perplexity(data["train_stream"], rows, config.vocab_size)
    per_byte = len(rows) * (config.seq_len - 1) / max(target_bytes(tokenizer, rows), 1)
    return {
        "heldout_rows": len(rows),
        "heldout_target_tokens": len(rows) * (config.seq_len - 1),
        "perplexity": ppl,
        "perplexity_initial": perplexity(load(work / "init"), rows),
        "perplexity_unigram": unigram,
        "bits_per_byte": math.log2(ppl) * per_byte,
        "bits_per_byte_unigram": math.log2(unigram) * per_byte,
        "syntax_rate": sum(c.parses for c in completions) / max(len(completions), 1),
        "closed_rate": sum(c.closed for c in completions) / max(len(completions), 1),
        "completions": [
            {"prompt": c.prompt, "completion": c.completion, "closed": c.closed, "parses": c.parses}
            for c in completions
        ],
    }
