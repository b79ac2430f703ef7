"""nf4_linear (QLoRA's 4-bit matmul): autograd parity and no dense Ŵ saved for backward."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from coursekit.adapters.dora import DoRALinear
from coursekit.adapters.lora import LoRALinear
from coursekit.adapters.nf4 import NF4Tensor
from coursekit.adapters.nf4_linear import nf4_linear

D_IN, D_OUT = 96, 40  # d_in ≠ d_out, so a saved Ŵ (or Ŵᵀ) is recognisable by its size


def _nf4(seed: int = 0) -> NF4Tensor:
    generator = torch.Generator().manual_seed(seed)
    return NF4Tensor.from_float(torch.randn(D_OUT, D_IN, generator=generator) * 0.1)


def _input(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(shape, generator=generator, dtype=dtype).requires_grad_()


@pytest.mark.parametrize("shape", [(D_IN,), (5, D_IN), (2, 3, D_IN)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_value_and_gradients_equal_autograd_through_the_dense_weight(shape, with_bias):
    weight = _nf4()
    bias = torch.randn(D_OUT, requires_grad=True) if with_bias else None
    x = _input(shape)
    x_ref = x.detach().clone().requires_grad_()
    bias_ref = None if bias is None else bias.detach().clone().requires_grad_()
    out = nf4_linear(x, weight, bias)
    ref = nn.functional.linear(x_ref, weight.dequantize(), bias_ref)
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(ref)
    out.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad)
    if with_bias:
        torch.testing.assert_close(bias.grad, bias_ref.grad)


def test_gradcheck_in_float64():
    # Ŵ is dequantized in fp32 (q[c]·absmax) and then cast, so float64 inputs see a fixed
    # float64 weight and the finite differences of gradcheck are exact up to float64 rounding.
    weight = NF4Tensor.from_float(torch.randn(6, 64, dtype=torch.float64) * 0.1)
    x = _input((3, 64), torch.float64)
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, b: nf4_linear(x, weight, b), (x, bias))


def test_no_gradient_is_computed_when_nothing_requires_it():
    weight = _nf4()
    out = nf4_linear(torch.randn(4, D_IN), weight, torch.randn(D_OUT))
    assert not out.requires_grad


def test_a_trainable_bias_alone_gets_the_summed_output_gradient():
    x, bias = torch.randn(2, 3, D_IN), torch.zeros(D_OUT, requires_grad=True)
    grad = torch.randn(2, 3, D_OUT)
    nf4_linear(x, _nf4(), bias).backward(grad)
    torch.testing.assert_close(bias.grad, grad.sum(dim=(0, 1)))


def test_frozen_bias_gets_no_gradient_and_output_can_be_added_to_in_place():
    weight, bias = _nf4(), torch.randn(D_OUT)
    x = _input((2, 3, D_IN))
    out = nf4_linear(x, weight, bias)
    out.add_(1.0)  # LoRALinear adds its s·B·A·x in place: the output must not be a view
    out.sum().backward()
    assert bias.grad is None
    torch.testing.assert_close(x.grad, weight.dequantize().sum(0).expand(2, 3, D_IN))


def _saved_sizes(forward) -> list[int]:
    """Return the numel of every tensor autograd saves for backward while ``forward`` runs."""
    sizes: list[int] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        sizes.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward().sum().backward()
    return sizes


def test_plain_linear_on_the_dequantized_weight_saves_it_but_nf4_linear_saves_nothing():
    # The falsification half: the hook does see a dense (d_out, d_in) weight when one is saved.
    weight = _nf4()
    dense = _saved_sizes(lambda: nn.functional.linear(_input((4, D_IN)), weight.dequantize()))
    assert D_OUT * D_IN in dense
    assert _saved_sizes(lambda: nf4_linear(_input((4, D_IN)), weight)) == []


@pytest.mark.parametrize("layer_class", [LoRALinear, DoRALinear])
def test_qlora_layers_save_no_dense_weight_while_the_dense_base_does(layer_class):
    torch.manual_seed(0)
    base = nn.Linear(D_IN, D_OUT)
    layers = {
        quantization: layer_class(base, rank=4, alpha=8.0, base_quantization=quantization)
        for quantization in ("none", "nf4")
    }
    for layer in layers.values():
        nn.init.normal_(layer.lora_b)  # B ≠ 0, so the whole graph is exercised
    saved = {
        quantization: _saved_sizes(lambda layer=layer: layer(_input((2, 3, D_IN))))
        for quantization, layer in layers.items()
    }
    assert D_OUT * D_IN in saved["none"]
    assert max(saved["nf4"]) < D_OUT * D_IN
    # Everything else the two layers save is the same: x, A's and B's inputs (DoRA: direction).
    assert sum(saved["none"]) - sum(saved["nf4"]) == D_OUT * D_IN


@pytest.mark.parametrize("layer_class", [LoRALinear, DoRALinear])
def test_qlora_layer_gradients_equal_the_dense_dequantized_reference(layer_class):
    torch.manual_seed(0)
    qlora = layer_class(nn.Linear(D_IN, D_OUT), rank=4, alpha=8.0, base_quantization="nf4")
    nn.init.normal_(qlora.lora_b)
    reference = layer_class(nn.Linear(D_IN, D_OUT), rank=4, alpha=8.0)
    reference.load_state_dict(
        {**qlora.state_dict(keep_vars=False), "weight": qlora.base_weight()}, strict=False
    )
    x, x_ref = _input((2, 3, D_IN)), _input((2, 3, D_IN))
    torch.testing.assert_close(qlora(x), reference(x_ref))
    qlora(x).square().sum().backward()
    reference(x_ref).square().sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    for name, parameter in qlora.named_parameters():
        torch.testing.assert_close(parameter.grad, dict(reference.named_parameters())[name].grad)


def test_multi_adapter_layer_on_nf4_saves_no_dense_weight():
    # Same claim for MultiLoRALinear: with an NF4 base, no (d_out, d_in) tensor is saved.
    from coursekit.adapters.multi import MultiLoRALinear

    torch.manual_seed(0)
    base = nn.Linear(D_IN, D_OUT)
    layers = {
        q: MultiLoRALinear(base, n_adapters=2, rank=4, alpha=8.0, base_quantization=q)
        for q in ("none", "nf4")
    }
    saved = {}
    for quantization, layer in layers.items():
        layer.indices = torch.tensor([0, 1])
        saved[quantization] = _saved_sizes(lambda layer=layer: layer(_input((2, 3, D_IN))))
    assert D_OUT * D_IN in saved["none"]
    assert max(saved["nf4"]) < D_OUT * D_IN
