from __future__ import annotations

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from coursekit.tiny import tiny_qwen2


def test_tiny_model_round_trips_through_from_pretrained(tmp_path):
    path = tiny_qwen2(tmp_path / "tiny", seed=3, with_tokenizer=False)
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(path)
    assert type(model).__name__ == "Qwen2ForCausalLM"
    config = model.config
    assert config.num_hidden_layers == 2
    assert config.num_key_value_heads < config.num_attention_heads  # grouped-query attention
    assert model.model.layers[0].self_attn.k_proj.bias is not None


def test_tiny_model_is_deterministic_for_a_seed(tmp_path):
    first = load_file(
        tiny_qwen2(tmp_path / "a", seed=1, with_tokenizer=False) / "model.safetensors"
    )
    second = load_file(
        tiny_qwen2(tmp_path / "b", seed=1, with_tokenizer=False) / "model.safetensors"
    )
    other = load_file(
        tiny_qwen2(tmp_path / "c", seed=2, with_tokenizer=False) / "model.safetensors"
    )
    key = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(first[key], second[key])
    assert not torch.equal(first[key], other[key])
