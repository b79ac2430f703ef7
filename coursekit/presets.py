"""Qwen2.5-Coder presets: the architecture of each size, without weights and without loading.

Used by Phase 2 (``notebooks/phase2_analysis.ipynb``) and the memory planner to read the real
architecture of each size; loading a model is :mod:`coursekit.loading`.

Every preset is a :class:`transformers.Qwen2Config` whose numbers are copied from the
published ``config.json`` of ``Qwen/Qwen2.5-Coder-<size>-Instruct`` on the Hugging Face hub
(cited per preset). Qwen2 hard-codes a bias on the q/k/v projections (and none on o/gate/
up/down), so "q/k/v bias" is a property of the architecture, not of the config.

Shape legend: ``d`` hidden size, ``n_h`` attention heads, ``n_kv`` key/value heads,
``h_d = d / n_h`` head dimension, ``d_ff`` intermediate (SwiGLU) size, ``V`` vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

HUB_PREFIX = "https://huggingface.co/Qwen/"


@dataclass(frozen=True, kw_only=True)
class Preset:
    """The published architecture numbers of one Qwen2.5-Coder size."""

    hub_id: str
    """The instruct checkpoint the numbers come from (``<hub_id>/config.json``)."""
    hidden_size: int
    """d: width of the residual stream."""
    num_hidden_layers: int
    """Number of decoder layers."""
    num_attention_heads: int
    """n_h: query heads."""
    num_key_value_heads: int
    """n_kv: key/value heads (grouped-query attention shares each across n_h / n_kv queries)."""
    intermediate_size: int
    """d_ff: SwiGLU width of gate_proj and up_proj."""
    vocab_size: int
    """V: rows of the embedding matrix (padded beyond the tokenizer's 151,665 tokens)."""
    tie_word_embeddings: bool
    """Whether lm_head shares the embedding matrix (the small sizes do)."""
    rope_theta: float = 1_000_000.0
    """RoPE base frequency."""
    max_position_embeddings: int = 32768
    """Context length of the config (YaRN extends it at inference; not modelled here)."""
    rms_norm_eps: float = 1e-6
    """RMSNorm epsilon."""

    def source(self) -> str:
        """Return the URL of the ``config.json`` this preset copies."""
        return f"https://huggingface.co/{self.hub_id}/blob/main/config.json"


# Source of every row: https://huggingface.co/<hub_id>/blob/main/config.json (Qwen2.5-Coder
# release, Nov 2024). The 0.5B count (494,032,768 parameters) is checked in the tests.
PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "qwen2.5-coder-0.5b": Preset(
            hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            hidden_size=896,
            num_hidden_layers=24,
            num_attention_heads=14,
            num_key_value_heads=2,
            intermediate_size=4864,
            vocab_size=151936,
            tie_word_embeddings=True,
        ),
        "qwen2.5-coder-1.5b": Preset(
            hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            hidden_size=1536,
            num_hidden_layers=28,
            num_attention_heads=12,
            num_key_value_heads=2,
            intermediate_size=8960,
            vocab_size=151936,
            tie_word_embeddings=True,
        ),
        "qwen2.5-coder-3b": Preset(
            hub_id="Qwen/Qwen2.5-Coder-3B-Instruct",
            hidden_size=2048,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            intermediate_size=11008,
            vocab_size=151936,
            tie_word_embeddings=True,
        ),
        "qwen2.5-coder-7b": Preset(
            hub_id="Qwen/Qwen2.5-Coder-7B-Instruct",
            hidden_size=3584,
            num_hidden_layers=28,
            num_attention_heads=28,
            num_key_value_heads=4,
            intermediate_size=18944,
            vocab_size=152064,
            tie_word_embeddings=False,
        ),
        "qwen2.5-coder-14b": Preset(
            hub_id="Qwen/Qwen2.5-Coder-14B-Instruct",
            hidden_size=5120,
            num_hidden_layers=48,
            num_attention_heads=40,
            num_key_value_heads=8,
            intermediate_size=13824,
            vocab_size=152064,
            tie_word_embeddings=False,
        ),
        "qwen2.5-coder-32b": Preset(
            hub_id="Qwen/Qwen2.5-Coder-32B-Instruct",
            hidden_size=5120,
            num_hidden_layers=64,
            num_attention_heads=40,
            num_key_value_heads=8,
            intermediate_size=27648,
            vocab_size=152064,
            tie_word_embeddings=False,
        ),
    }
)

# Token ids of Qwen2.5-Coder-Instruct (its config.json / generation_config.json).
BOS_TOKEN_ID = 151643
EOS_TOKEN_ID = 151645


def qwen2_config(preset: Preset, **overrides: Any) -> Qwen2Config:
    """Build the :class:`~transformers.Qwen2Config` of a preset.

    Args:
        preset: one of :data:`PRESETS`' values.
        **overrides: fields to replace (for experiments, e.g. ``num_hidden_layers=2``).

    Returns:
        The config; ``head_dim = hidden_size / num_attention_heads``.

    Example:
        >>> qwen2_config(PRESETS["qwen2.5-coder-0.5b"]).num_key_value_heads
        2
    """
    fields: dict[str, Any] = {
        "hidden_size": preset.hidden_size,
        "num_hidden_layers": preset.num_hidden_layers,
        "num_attention_heads": preset.num_attention_heads,
        "num_key_value_heads": preset.num_key_value_heads,
        "intermediate_size": preset.intermediate_size,
        "vocab_size": preset.vocab_size,
        "tie_word_embeddings": preset.tie_word_embeddings,
        "max_position_embeddings": preset.max_position_embeddings,
        "rms_norm_eps": preset.rms_norm_eps,
        "rope_parameters": {"rope_type": "default", "rope_theta": preset.rope_theta},
        "hidden_act": "silu",
        "use_sliding_window": False,
        "bos_token_id": BOS_TOKEN_ID,
        "eos_token_id": EOS_TOKEN_ID,
    }
    fields.update(overrides)
    return Qwen2Config(**fields)


def preset_config(name: str, **overrides: Any) -> Qwen2Config:
    """Return the config of the preset called ``name`` (e.g. ``"qwen2.5-coder-7b"``).

    Raises:
        ValueError: ``name`` is not a preset; the message lists the presets.

    Example:
        >>> preset_config("qwen2.5-coder-7b").tie_word_embeddings
        False
    """
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    return qwen2_config(PRESETS[name], **overrides)


def count_parameters(model: torch.nn.Module) -> int:
    """Count the distinct parameters of ``model`` (tied tensors once)."""
    return sum(p.numel() for p in model.parameters())


def meta_model(config: Qwen2Config) -> Qwen2ForCausalLM:
    """Instantiate ``config`` on the meta device: shapes without memory, for counting.

    Example:
        >>> count_parameters(meta_model(preset_config("qwen2.5-coder-0.5b")))
        494032768
    """
    with torch.device("meta"):
        return Qwen2ForCausalLM(config)
