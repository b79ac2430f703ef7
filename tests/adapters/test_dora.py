"""DoRALinear: init equals base, the bias is not rescaled, the norm is detached (§4.3), merge."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from coursekit.adapters import DoRALinear
from coursekit.adapters.lowrank import adapted_row_norm, delta_weight
from coursekit.adapters.nf4 import NF4Tensor

FAST = settings(max_examples=15, derandomize=True, deadline=None)

layers = st.builds(
    dict,
    d_in=st.integers(1, 24),
    d_out=st.integers(1, 24),
    rank=st.integers(1, 8),
    alpha=st.floats(0.5, 32),
    use_rslora=st.booleans(),
    seed=st.integers(0, 2**16),
)


def _make(spec: dict, bias: bool = True, train: bool = True):
    """A DoRA layer with, if ``train``, non-zero B and a perturbed magnitude."""
    torch.manual_seed(spec["seed"])
    base = nn.Linear(spec["d_in"], spec["d_out"], bias=bias)
    if bias:
        nn.init.normal_(base.bias)
    layer = DoRALinear(base, rank=spec["rank"], alpha=spec["alpha"], use_rslora=spec["use_rslora"])
    if train:
        with torch.no_grad():
            layer.lora_b.normal_(0, 0.1)
            layer.magnitude.mul_(torch.rand_like(layer.magnitude) + 0.5)
    return base, layer, torch.randn(3, 5, spec["d_in"])  # x: (b, s, d_in)


def _reference(layer: DoRALinear, x: torch.Tensor) -> torch.Tensor:
    """Dense DoRA, Eq. 5 with the §4.3 detach: m ⊙ W'x / sg(‖W'‖) + b, W' = W₀ + s·B·A."""
    adapted = layer.weight + layer.scale * layer.lora_b @ layer.lora_a  # (d_out, d_in)
    norm = adapted.norm(dim=1).detach()  # (d_out,)
    return x @ (adapted * (layer.magnitude / norm)[:, None]).T + layer.bias


@settings(max_examples=15, derandomize=True, deadline=None)
@given(layers)
def test_init_equals_the_base(spec):
    base, layer, x = _make(spec, train=False)
    torch.testing.assert_close(layer.magnitude, base.weight.norm(dim=1))
    torch.testing.assert_close(layer(x), base(x), atol=1e-5, rtol=1e-5)


@FAST
@given(layers)
def test_forward_and_gradients_match_dense_reference(spec):
    _, layer, x = _make(spec)
    out = layer(x)
    torch.testing.assert_close(out, _reference(layer, x), atol=1e-4, rtol=1e-4)
    parameters = [layer.lora_a, layer.lora_b, layer.magnitude]
    grads = torch.autograd.grad(out.square().sum(), parameters)
    expected = torch.autograd.grad(_reference(layer, x).square().sum(), parameters)
    for grad, reference in zip(grads, expected, strict=True):
        torch.testing.assert_close(grad, reference, atol=1e-3, rtol=1e-3)


@FAST
@given(layers)
def test_bias_is_added_not_rescaled(spec):
    """y(x) − b equals the same DoRA layer without bias: the bias is outside m/‖·‖."""
    _, layer, x = _make(spec)
    unbiased = DoRALinear(
        nn.Linear(spec["d_in"], spec["d_out"], bias=False), rank=spec["rank"], alpha=1.0
    )
    unbiased.load_state_dict({k: v for k, v in layer.state_dict().items() if k != "bias"})
    unbiased.scale = layer.scale
    torch.testing.assert_close(layer(x) - layer.bias, unbiased(x), atol=1e-5, rtol=1e-5)


def test_bias_scaling_would_be_visible():
    """torchtune's choice, (m/‖W'‖) ⊙ (W'x + b), differs from ours on Qwen2-like q/k/v."""
    _, layer, x = _make(
        {"d_in": 8, "d_out": 6, "rank": 2, "alpha": 4.0, "use_rslora": False, "seed": 0}
    )
    factor = layer.magnitude / adapted_row_norm(
        layer.weight, layer.lora_a, layer.lora_b, layer.scale
    )
    torchtune = (layer(x) - layer.bias) + factor * layer.bias
    assert not torch.allclose(layer(x), torchtune, atol=1e-3)


@FAST
@given(layers)
def test_adapted_row_norm_equals_the_dense_norm(spec):
    _, layer, _ = _make(spec)
    dense = (layer.weight + delta_weight(layer.lora_a, layer.lora_b, layer.scale)).norm(dim=1)
    norm = adapted_row_norm(layer.weight, layer.lora_a, layer.lora_b, layer.scale)
    assert not norm.requires_grad
    torch.testing.assert_close(norm, dense, atol=1e-5, rtol=1e-4)


@FAST
@given(layers, st.booleans())
def test_merge_then_unmerge_restores_w0_and_merged_forward_matches(spec, bias):
    _, layer, x = _make(spec, bias=bias)
    w0 = layer.weight.clone()
    expected = layer(x)
    layer.merge()
    layer.merge()  # a second merge is a no-op
    torch.testing.assert_close(layer(x), expected, atol=1e-4, rtol=1e-4)
    layer.unmerge()
    # State tolerance: two roundings of m/‖W'‖ scaling (m ∈ [0.5, 1.5]·‖W₀‖), ~1e-6 relative.
    torch.testing.assert_close(layer.weight, w0, atol=1e-5, rtol=1e-5)
    assert not layer.merged and layer._merged_norm is None


def test_nf4_base_magnitude_is_the_norm_of_the_dequantized_weight():
    torch.manual_seed(0)
    layer = DoRALinear(nn.Linear(64, 16), rank=2, alpha=4.0, base_quantization="nf4")
    assert isinstance(layer.weight, NF4Tensor)
    torch.testing.assert_close(layer.magnitude, layer.weight.dequantize().norm(dim=1))
    assert "base_quantization='nf4'" in repr(layer)
    with pytest.raises(ValueError, match="cannot merge"):
        layer.merge()
