from __future__ import annotations

import pytest

from coursekit.presets import PRESETS, count_parameters, meta_model, preset_config


def test_0_5b_has_the_published_parameter_count():
    # 494,032,768: the count Qwen reports for Qwen2.5-Coder-0.5B (tied embeddings counted once).
    assert count_parameters(meta_model(preset_config("qwen2.5-coder-0.5b"))) == 494_032_768


def test_7b_embeddings_are_not_tied_and_small_ones_are():
    assert preset_config("qwen2.5-coder-7b").tie_word_embeddings is False
    assert preset_config("qwen2.5-coder-0.5b").tie_word_embeddings is True


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_a_consistent_qwen2_config(name):
    config = preset_config(name)
    preset = PRESETS[name]
    assert config.model_type == "qwen2"
    assert config.hidden_size % config.num_attention_heads == 0
    assert config.num_attention_heads % config.num_key_value_heads == 0
    assert config.rope_parameters["rope_theta"] == 1_000_000.0
    assert config.max_position_embeddings == 32768
    assert preset.source().startswith("https://huggingface.co/Qwen/Qwen2.5-Coder-")
    assert preset.source().endswith("/config.json")


def test_32b_parameter_count_matches_its_architecture():
    # 32,763,876,352 = the logical parameter count of Qwen2.5-32B's architecture.
    assert count_parameters(meta_model(preset_config("qwen2.5-coder-32b"))) == 32_763_876_352


def test_qkv_have_bias_and_gqa_shapes_follow_kv_heads():
    model = meta_model(preset_config("qwen2.5-coder-0.5b"))
    attention = model.model.layers[0].self_attn
    assert attention.q_proj.bias is not None and attention.o_proj.bias is None
    assert attention.k_proj.weight.shape == (2 * 64, 896)  # n_kv · h_d, d


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match=r"qwen2\.5-coder-0\.5b"):
        preset_config("qwen2.5-coder-2b")


def test_preset_overrides():
    assert preset_config("qwen2.5-coder-0.5b", num_hidden_layers=2).num_hidden_layers == 2
