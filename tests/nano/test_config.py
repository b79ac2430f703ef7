"""NanoConfig: validation and the parameter-count equation against the real module."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import Qwen2ForCausalLM

from coursekit.nano.config import NanoConfig


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("steps", 0, "NanoConfig.steps must be >= 1 (got 0)"),
        ("vocab_size", 200, "NanoConfig.vocab_size must be >= 279"),
        ("hidden_size", 250, "must be a multiple of num_attention_heads=6 (got 250)"),
        ("num_key_value_heads", 4, "num_attention_heads must be a multiple of num_key_value"),
        ("seq_len", 4096, "max_position_embeddings must be >= seq_len=4096"),
        ("warmup_steps", 2824, "warmup_steps must be in [0, steps=2824) (got 2824)"),
        ("learning_rate", 0.0, "learning_rate must be > 0"),
        ("weight_decay", -1.0, "weight_decay must be >= 0"),
        ("precision", "fp16", "NanoConfig.precision must be 'fp32' or 'bf16' (got 'fp16')"),
    ],
)
def test_invalid_fields_are_named(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        dataclasses.replace(NanoConfig(), **{field: value})


def test_default_has_the_real_models_features() -> None:
    config = NanoConfig().qwen2_config({"<|endoftext|>": 8170})
    assert (config.num_key_value_heads, config.tie_word_embeddings) == (2, True)
    assert config.rope_parameters["rope_theta"] == 1e6 and config.hidden_act == "silu"
    assert config.bos_token_id == config.eos_token_id == 8170
    assert 3_000_000 <= NanoConfig().parameter_count() <= 8_000_000


@settings(max_examples=15, deadline=None)
@given(
    heads_kv=st.sampled_from([(2, 1), (2, 2), (4, 2), (6, 3)]),
    head_dim=st.sampled_from([4, 8]),
    layers=st.integers(1, 3),
    inter=st.integers(1, 40),
    vocab=st.integers(279, 600),
)
def test_parameter_count_equation_matches_the_module(heads_kv, head_dim, layers, inter, vocab):
    heads, kv = heads_kv
    config = NanoConfig(
        vocab_size=vocab, hidden_size=heads * head_dim, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv, intermediate_size=inter,
    )  # fmt: skip
    with torch.device("meta"):
        model = Qwen2ForCausalLM(config.qwen2_config({"<|endoftext|>": 0}))
    assert config.parameter_count() == sum(p.numel() for p in model.parameters())


def test_train_config_is_a_full_pretraining_run() -> None:
    train = NanoConfig(steps=80, warmup_steps=4).train_config()
    assert (train.max_steps, train.packing, train.schedule, train.save_every) == (
        80, False, "cosine", 10,
    )  # fmt: skip
