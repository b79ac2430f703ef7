"""The one builder of tiny random Qwen2 models for the test suite.

Tests take it as the ``make_tiny_qwen2`` fixture (tests/conftest.py); helpers outside a test
(module-level builders, the subprocess worker ``tests/train/_resume_worker.py``) import it
from here. The shape is Qwen2's scaled down, with grouped-query attention (4 query heads,
2 key/value heads) and q/k/v biases; each caller names its vocabulary and any size it
changes, so every test keeps the numbers it was written for.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

TINY_QWEN2: dict[str, int] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
"""The default shape: d = 32, d_ff = 64, 2 layers, n_h = 4, n_kv = 2 (h_d = 8)."""


def tiny_qwen2_config(*, vocab_size: int, **overrides: Any) -> Qwen2Config:
    """Return the tiny Qwen2 config with ``vocab_size`` and ``overrides`` (any config field)."""
    return Qwen2Config(**{**TINY_QWEN2, "vocab_size": vocab_size, **overrides})


def make_tiny_qwen2(seed: int = 0, *, vocab_size: int, **overrides: Any) -> Qwen2ForCausalLM:
    """Seed torch's global generator with ``seed`` and build a fresh random tiny Qwen2.

    The model is returned as constructed (fp32, training mode); callers that evaluate call
    ``.eval()``. Overrides are config fields, e.g. ``hidden_size=64`` or
    ``attn_implementation="eager"``.
    """
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(tiny_qwen2_config(vocab_size=vocab_size, **overrides))
