"""The tiny random Qwen2 and the synthetic examples the exercise checks train and compare on.

The shape is Qwen2's scaled down (2 layers, d = 32, 4 query heads, 2 key/value heads, q/k/v
biases) with a 64-token vocabulary, so a check builds it and takes a few steps in well
under a second.

Guide: docs/exercises.md.
"""

from __future__ import annotations

import random

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from coursekit.data.batching import collate
from coursekit.data.prompts import EncodedExample

VOCAB = 64
"""Vocabulary of the tiny model and of the synthetic examples."""


def tiny_qwen2(seed: int = 0) -> Qwen2ForCausalLM:
    """Seed torch's global generator with ``seed`` and return a fresh tiny random Qwen2.

    Example:
        >>> tiny_qwen2().config.hidden_size
        32
    """
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )
    return Qwen2ForCausalLM(config)


def tiny_examples(n: int, seed: int = 0) -> list[EncodedExample]:
    """Return ``n`` random examples: a 2..6-token prompt (masked) then a 1..8-token answer.

    Example:
        >>> [len(e.input_ids) >= 3 for e in tiny_examples(2)]
        [True, True]
    """
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt, answer = rng.randint(2, 6), rng.randint(1, 8)
        ids = tuple(rng.randrange(1, VOCAB) for _ in range(prompt + answer))
        labels = (-100,) * prompt + ids[prompt:]
        out.append(EncodedExample(sample_id=f"s{i}", input_ids=ids, labels=labels))
    return out


def tiny_batch(seed: int, *, rows: int = 1, answer: int = 4) -> dict[str, torch.Tensor]:
    """Return a collated batch of ``rows`` examples with ``answer`` answer tokens each.

    Example:
        >>> tiny_batch(0, rows=2)["input_ids"].shape
        torch.Size([2, 7])
    """
    rng = random.Random(seed)
    examples = []
    for i in range(rows):
        ids = tuple(rng.randrange(1, VOCAB) for _ in range(3 + answer))
        labels = (-100,) * 3 + ids[3:]
        examples.append([EncodedExample(sample_id=f"b{i}", input_ids=ids, labels=labels)])
    return collate(examples, pad_id=0)
