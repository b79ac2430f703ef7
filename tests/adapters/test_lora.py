"""LoRALinear: the formula, peft's init, B = 0 ⇒ base, merge ∘ unmerge ≈ identity, NF4 base."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from coursekit.adapters import AdapterConfig, LoRALinear, apply, init_lora_, scale
from coursekit.adapters.lowrank import lora_delta
from coursekit.adapters.nf4 import NF4Tensor

FAST = settings(max_examples=15, derandomize=True, deadline=None)

layers = st.builds(
    dict,
    d_in=st.integers(1, 24),
    d_out=st.integers(1, 24),
    rank=st.integers(1, 8),
    alpha=st.floats(0.5, 64),
    bias=st.booleans(),
    use_rslora=st.booleans(),
    seed=st.integers(0, 2**16),
)


def _make(spec: dict, random_b: bool = True) -> tuple[nn.Linear, LoRALinear, torch.Tensor]:
    torch.manual_seed(spec["seed"])
    base = nn.Linear(spec["d_in"], spec["d_out"], bias=spec["bias"])
    layer = LoRALinear(base, rank=spec["rank"], alpha=spec["alpha"], use_rslora=spec["use_rslora"])
    if random_b:
        nn.init.normal_(layer.lora_b)
    return base, layer, torch.randn(3, 5, spec["d_in"])  # x: (b, s, d_in)


@FAST
@given(layers)
def test_zero_b_gives_the_base_output(spec):
    base, layer, x = _make(spec, random_b=False)
    assert torch.equal(layer(x), base(x))


@FAST
@given(layers)
def test_forward_is_w0x_plus_b_plus_scaled_bax(spec):
    base, layer, x = _make(spec)
    s = spec["alpha"] / (math.sqrt(spec["rank"]) if spec["use_rslora"] else spec["rank"])
    expected = base(x) + s * x @ layer.lora_a.T @ layer.lora_b.T
    torch.testing.assert_close(layer(x), expected, atol=1e-4, rtol=1e-4)


@FAST
@given(layers)
def test_merge_then_unmerge_restores_w0_and_merged_forward_matches(spec):
    _, layer, x = _make(spec)
    w0 = layer.weight.clone()
    expected = layer(x)
    layer.merge()
    assert layer.merged
    torch.testing.assert_close(layer(x), expected, atol=1e-4, rtol=1e-4)
    layer.unmerge()
    layer.unmerge()  # a second unmerge is a no-op
    # State tolerance: W₀ + ΔW − ΔW rounds once per entry, |error| ≤ ulp(|W₀| + |ΔW|).
    torch.testing.assert_close(layer.weight, w0, atol=1e-5, rtol=1e-5)


def test_init_matches_peft_default():
    """Same seed ⇒ A equals nn.Linear's kaiming_uniform(a=√5) draw, as in peft; B = 0."""
    lora_a, lora_b = torch.empty(4, 10), torch.ones(6, 4)
    torch.manual_seed(0)
    init_lora_(lora_a, lora_b)
    torch.manual_seed(0)
    reference = nn.Linear(10, 4, bias=False).weight
    assert torch.equal(lora_a, reference) and not lora_b.any()
    assert lora_a.abs().max() <= 1 / math.sqrt(10)


def test_scale_lora_and_rslora():
    assert scale(16, 4, use_rslora=False) == 4.0
    assert scale(16, 4, use_rslora=True) == 8.0


def test_dropout_touches_only_the_adapter_path():
    torch.manual_seed(0)
    base = nn.Linear(16, 8)
    layer = LoRALinear(base, rank=4, alpha=8.0, dropout=0.5).train()
    x = torch.randn(4, 16)
    assert torch.equal(layer(x), base(x))  # B = 0: dropout cannot show
    nn.init.normal_(layer.lora_b)
    assert not torch.allclose(layer(x), layer.eval()(x))
    expected = base(x) + lora_delta(x, layer.lora_a, layer.lora_b, layer.scale, nn.Identity())
    torch.testing.assert_close(layer.eval()(x), expected)


def test_repr_names_the_hyperparameters():
    assert "rank=2, alpha=4.0" in repr(LoRALinear(nn.Linear(3, 3), rank=2, alpha=4.0))


def test_nf4_base_is_dequantized_on_the_fly_and_cannot_merge():
    torch.manual_seed(0)
    base = nn.Linear(64, 32)
    layer = LoRALinear(base, rank=4, alpha=8.0, base_quantization="nf4")
    assert isinstance(layer.weight, NF4Tensor)
    assert "weight.packed" in layer.state_dict()
    nn.init.normal_(layer.lora_b)
    x = torch.randn(2, 64)
    dequantized = layer.weight.dequantize(torch.float32)
    expected = nn.functional.linear(x, dequantized, base.bias) + lora_delta(
        x, layer.lora_a, layer.lora_b, layer.scale, nn.Identity()
    )
    torch.testing.assert_close(layer(x), expected)
    # Loose sanity bound only (tests/adapters/test_nf4.py pins NF4's error): 4-bit codes are
    # within a level gap (≤ 0.28) of the block absmax, plus the 8-bit double-quantized scale.
    assert (dequantized - base.weight).abs().max() <= 0.3 * base.weight.abs().max()
    with pytest.raises(ValueError, match="cannot merge into a base stored as 'nf4'"):
        layer.merge()


def test_qlora_model_trains_only_the_adapters(make_model, input_ids):
    model = apply(
        make_model(0), AdapterConfig(rank=4, targets="all-linear", base_quantization="nf4")
    )
    q_proj = model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.weight, NF4Tensor)
    loss = model(input_ids, labels=input_ids).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert q_proj.lora_a.grad is not None and q_proj.bias.grad is None
