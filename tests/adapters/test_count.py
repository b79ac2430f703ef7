"""Counting trainable parameters from shapes only, checked against real models."""

from __future__ import annotations

import pytest
from transformers import Qwen2Config, Qwen2ForCausalLM

from coursekit.adapters import AdapterConfig, apply, count_trainable, trainable_count

# Qwen2.5-Coder-0.5B's config.json (Qwen/Qwen2.5-Coder-0.5B on the hub).
QWEN25_CODER_05B = Qwen2Config(
    hidden_size=896,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    intermediate_size=4864,
    vocab_size=151936,
)


@pytest.mark.parametrize(
    ("targets", "expected"),
    [("qv", 1_081_344), ("attention", 2_162_688), ("all-linear", 8_798_208)],
)
def test_qwen25_coder_05b_at_rank_16(targets, expected):
    assert count_trainable(QWEN25_CODER_05B, AdapterConfig(rank=16, targets=targets)) == expected


def test_dora_adds_one_magnitude_per_output_row():
    lora = count_trainable(QWEN25_CODER_05B, AdapterConfig(rank=16, targets="qv"))
    dora = count_trainable(QWEN25_CODER_05B, AdapterConfig(method="dora", rank=16, targets="qv"))
    assert dora - lora == 24 * (896 + 128)


def test_layer_subset_scales_linearly():
    every = count_trainable(QWEN25_CODER_05B, AdapterConfig(rank=8, targets="mlp"))
    three = count_trainable(
        QWEN25_CODER_05B, AdapterConfig(rank=8, targets="mlp", layers=(0, 5, 23))
    )
    assert three * 8 == every


def test_layers_beyond_the_model_raise():
    with pytest.raises(ValueError, match=r"AdapterConfig.layers names layers \[24\]"):
        count_trainable(QWEN25_CODER_05B, AdapterConfig(layers=(0, 24)))


@pytest.mark.parametrize("method", ["lora", "dora"])
@pytest.mark.parametrize("targets", ["qv", "mlp", "all-linear", ["k_proj", "o_proj"]])
def test_count_equals_the_built_model(method, targets):
    config = Qwen2Config(
        hidden_size=48,
        num_hidden_layers=3,
        num_attention_heads=6,
        num_key_value_heads=2,
        intermediate_size=80,
        vocab_size=32,
    )
    adapter = AdapterConfig(method=method, rank=3, targets=targets, layers=(0, 2))
    model = apply(Qwen2ForCausalLM(config), adapter)
    assert trainable_count(model) == count_trainable(config, adapter)


def test_explicit_head_dim_is_respected():
    config = Qwen2Config(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        intermediate_size=64,
        vocab_size=32,
    )
    adapter = AdapterConfig(rank=2, targets="attention")
    assert count_trainable(config, adapter) == trainable_count(
        apply(Qwen2ForCausalLM(config), adapter)
    )
