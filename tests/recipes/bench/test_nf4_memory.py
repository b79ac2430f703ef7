"""The NF4 storage benchmark's logic on a small Qwen2: bytes agree with the formula."""

from __future__ import annotations

import pytest
from transformers import Qwen2Config

from coursekit.adapters.nf4 import bits_per_parameter
from coursekit.recipes.bench.nf4_memory import (
    NF4Storage,
    bf16_model,
    format_report,
    measure,
    qwen2_half_billion_shapes,
)

SMALL = Qwen2Config(hidden_size=128, intermediate_size=256, num_attention_heads=4,
                    num_key_value_heads=2, num_hidden_layers=1, vocab_size=64)  # fmt: skip


def test_half_billion_shapes_are_qwen25_05b_with_fewer_layers():
    config = qwen2_half_billion_shapes(3)
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers) == (
        896, 4864, 3,
    )  # fmt: skip
    assert config.hidden_size // config.num_attention_heads == 64


@pytest.mark.parametrize("double_quant", [True, False])
def test_measured_bits_match_the_formula(double_quant):
    storage = measure(bf16_model(SMALL), double_quant=double_quant)
    # q, o: 128·128; k, v: 64·128 (2 KV heads of 32); gate, up, down: 256·128.
    assert storage.parameters == 2 * 128 * 128 + 2 * 64 * 128 + 3 * 256 * 128
    assert storage.bf16_bytes == 2 * storage.parameters
    expected = bits_per_parameter(double_quant=double_quant)
    assert storage.bits_per_parameter == pytest.approx(expected, abs=0.05)
    assert storage.ratio == pytest.approx(expected / 16, abs=0.005)


def test_report_lines():
    storage = NF4Storage(parameters=2_000_000, bf16_bytes=4_000_000, nf4_bytes=1_000_000,
                         seconds=0.5, double_quant=True)  # fmt: skip
    lines = format_report(storage, layers=2).splitlines()
    assert lines[0] == "linear weights: 2.0 M parameters in 2 layers"
    assert lines[2].startswith("measured bits/parameter: 4.0000 (formula ")
    assert lines[3].startswith("NF4 / bf16 ratio: 0.2500 (formula ")
    assert lines[4].startswith("quantization time: 0.50 s on ")
