"""AdapterConfig validation, presets and target resolution."""

from __future__ import annotations

import dataclasses
import math

import pytest

from coursekit.adapters import KNOWN_TARGETS, TARGET_PRESETS, AdapterConfig, resolve_targets
from coursekit.adapters.config import layer_index


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rank": 0}, r"AdapterConfig.rank must be >= 1 \(got 0\)"),
        ({"rank": 2.5}, r"AdapterConfig.rank must be >= 1 \(got 2.5\)"),
        ({"rank": True}, r"AdapterConfig.rank must be >= 1 \(got True\)"),
        ({"alpha": 0}, r"AdapterConfig.alpha must be > 0 and finite \(got 0\)"),
        ({"alpha": -1.0}, r"AdapterConfig.alpha must be > 0 and finite \(got -1.0\)"),
        ({"alpha": math.inf}, r"AdapterConfig.alpha must be > 0 and finite \(got inf\)"),
        ({"alpha": math.nan}, r"AdapterConfig.alpha must be > 0 and finite \(got nan\)"),
        ({"dropout": 1.0}, r"AdapterConfig.dropout must be in \[0, 1\) \(got 1.0\)"),
        ({"dropout": -0.1}, r"AdapterConfig.dropout must be in \[0, 1\) \(got -0.1\)"),
        ({"method": "ia3"}, r"AdapterConfig.method must be one of .* \(got 'ia3'\)"),
        ({"targets": "qkv"}, r"AdapterConfig.targets must be a preset .* \(got 'qkv'\)"),
        ({"targets": ["q_proj", "lm_head"]}, r"AdapterConfig.targets contains unknown .*lm_head"),
        ({"targets": []}, r"AdapterConfig.targets must not be empty"),
        ({"layers": ()}, r"AdapterConfig.layers must not be empty"),
        ({"layers": (0, -1)}, r"AdapterConfig.layers must hold ints >= 0 \(got \(0, -1\)\)"),
        ({"layers": (1, 1)}, r"AdapterConfig.layers must not repeat"),
        ({"base_quantization": "int8"}, r"AdapterConfig.base_quantization must be one of"),
    ],
)
def test_bad_values_raise_naming_field_and_value(fields, message):
    with pytest.raises(ValueError, match=message):
        AdapterConfig(**fields)


def test_config_is_frozen_and_keyword_only():
    config = AdapterConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.rank = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        AdapterConfig("lora")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("targets", "names"),
    [
        ("qv", ("q_proj", "v_proj")),
        ("attention", ("q_proj", "k_proj", "v_proj", "o_proj")),
        ("mlp", ("gate_proj", "up_proj", "down_proj")),
        ("all-linear", KNOWN_TARGETS),
        (["down_proj", "q_proj"], ("q_proj", "down_proj")),
    ],
)
def test_target_names(targets, names):
    assert AdapterConfig(targets=targets).target_names == names


def test_presets_are_read_only():
    with pytest.raises(TypeError):
        TARGET_PRESETS["qv"] = ("q_proj",)  # type: ignore[index]


def test_resolve_targets_on_tiny_qwen2(make_model):
    model = make_model(0)
    assert len(resolve_targets(AdapterConfig(targets="all-linear"), model)) == 14
    assert resolve_targets(AdapterConfig(targets="mlp", layers=(1,)), model) == [
        "model.layers.1.mlp.gate_proj",
        "model.layers.1.mlp.up_proj",
        "model.layers.1.mlp.down_proj",
    ]


@pytest.mark.parametrize(
    ("name", "index"),
    [("model.layers.12.mlp.up_proj", 12), ("layers.0.q_proj", 0), ("lm_head", None)],
)
def test_layer_index(name, index):
    assert layer_index(name) == index
