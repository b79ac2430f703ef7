"""Checks of the Advanced exercises E (DoRA forward) and F (fake-quant + STE); H is in pacing.py.

E.dora_forward — ``dora_forward(x, W0, b, A, B, m, scale) -> y``,
    y = m ⊙ (W₀ + s·B·A)x / ‖W₀ + s·B·A‖ + b, the norm per output row, the bias not rescaled;
    compared with ``coursekit.adapters.DoRALinear``, on random shapes and on a tiny Qwen2's
    q_proj (with bias) and o_proj (without).
F.fake_quant_ste — ``fake_quant_ste(weight) -> weight``, value Q(W) = round(W/Δ)·Δ per block of
    64 with Δ = absmax/7 (``coursekit.adapters.qat.fake_quantize_int4``), gradient the identity.

Guide: docs/exercises.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import torch
from hypothesis import strategies as st
from torch import Tensor, nn

from coursekit.adapters import AdapterConfig, DoRALinear, apply
from coursekit.adapters.qat import fake_quantize_int4
from coursekit.exercises.compare import compare_tensors, counterexample, fail
from coursekit.exercises.registry import Check
from coursekit.exercises.tinymodel import tiny_qwen2

DoraForward = Callable[..., Tensor]


def _dora_inputs(d_in: int, d_out: int, rank: int, seed: int, bias: bool = True) -> dict:
    """Random x (2, 3, d_in), W₀, b, A, B (non-zero), m (not ‖W₀‖) and s."""
    g = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(2, 3, d_in, generator=g),
        "W0": torch.randn(d_out, d_in, generator=g),
        "b": torch.randn(d_out, generator=g) if bias else None,
        "A": torch.randn(rank, d_in, generator=g),
        "B": torch.randn(d_out, rank, generator=g),
        "m": torch.rand(d_out, generator=g) + 0.5,
        "scale": 0.5 + seed % 3,
    }


def _dora_layer(inputs: dict[str, Any]) -> DoRALinear:
    """Coursekit's DoRALinear holding ``inputs``' tensors."""
    d_out, d_in = inputs["W0"].shape
    rank = inputs["A"].shape[0]
    layer = DoRALinear(
        nn.Linear(d_in, d_out, bias=inputs["b"] is not None),
        rank=rank,
        alpha=inputs["scale"] * rank,
    )
    with torch.no_grad():
        layer.weight.copy_(inputs["W0"])
        if inputs["b"] is not None:
            layer.bias.copy_(inputs["b"])
        layer.lora_a.copy_(inputs["A"])
        layer.lora_b.copy_(inputs["B"])
        layer.magnitude.copy_(inputs["m"])
    assert math.isclose(layer.scale, inputs["scale"])
    return layer


def _call(dora_forward: DoraForward, inputs: dict[str, Any]) -> Any:
    copies = {k: v.clone() if isinstance(v, Tensor) else v for k, v in inputs.items()}
    return dora_forward(**copies)


def _dora_shape(dora_forward: DoraForward) -> None:
    """(2, 3, d_in) in, (2, 3, d_out) out: the leading dimensions are kept."""
    inputs = _dora_inputs(5, 4, 2, seed=0)
    y = _call(dora_forward, inputs)
    expected = _dora_layer(inputs)(inputs["x"]).detach()
    if not isinstance(y, Tensor) or y.shape != expected.shape:
        shape = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise fail(
            f"output has shape {shape}, expected {tuple(expected.shape)} for x of "
            "shape (2, 3, 5), W0 (4, 5), A (2, 5), B (4, 2)",
            "output shape",
        )


def _dora_starts_as_base(dora_forward: DoraForward) -> None:
    """B = 0 and m = ‖W₀‖ (DoRA's initialisation) give the base layer: y = W₀x + b."""
    inputs = _dora_inputs(6, 4, 2, seed=1)
    inputs["B"] = torch.zeros_like(inputs["B"])
    inputs["m"] = inputs["W0"].norm(dim=1)
    expected = inputs["x"] @ inputs["W0"].T + inputs["b"]
    compare_tensors(_call(dora_forward, inputs), expected, "B = 0, m = ‖W₀‖ gives W₀x + b")


def _dora_bias_untouched(dora_forward: DoraForward) -> None:
    """Changing b by δ changes y by exactly δ: the bias is added after the rescaling."""
    inputs = _dora_inputs(6, 4, 2, seed=2)
    before = _call(dora_forward, inputs)
    shifted = {**inputs, "b": inputs["b"] + 1.0}
    after = _call(dora_forward, shifted)
    if not isinstance(before, Tensor) or not isinstance(after, Tensor):
        raise fail("output is not a tensor", "bias untouched")
    yours = after.detach() - before.detach() + _dora_layer(inputs)(inputs["x"]).detach()
    expected = _dora_layer(shifted)(inputs["x"]).detach()
    compare_tensors(yours, expected, "bias untouched", what="output with b + 1")


_SHAPES = st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(1, 4), st.integers(0, 99))
"""(d_in, d_out, r, seed) for parity on random shapes."""


def _hint(inputs: dict[str, Any], y: Tensor) -> str:
    """Name a classic mistake that ``y`` reproduces, or nothing."""
    x, W0, A, B, m, s = (inputs[k] for k in ("x", "W0", "A", "B", "m", "scale"))
    b = inputs["b"] if inputs["b"] is not None else 0
    W = W0 + s * B @ A  # (d_out, d_in)
    mistakes = [
        (
            "the bias is added after the rescaling, not rescaled",
            (x @ W.T + b) * (m / W.norm(dim=1)),
        ),
        ("s multiplies B·A inside the norm too", x @ W.T * (m / (W0 + B @ A).norm(dim=1)) + b),
        ("m rescales each output row of the direction (W₀ + s·B·A)x / ‖W₀ + s·B·A‖", x @ W.T + b),
    ]
    if W.shape[0] == W.shape[1]:
        wrong = x @ W.T * (m / W.norm(dim=0)) + b
        mistakes.append(("the norm is per output row: over d_in, dim=1 of (d_out, d_in)", wrong))
    for hint, wrong in mistakes:
        if wrong.shape == y.shape and torch.allclose(y, wrong, rtol=1e-4, atol=1e-5):
            return f"; {hint}"
    return ""


def _dora_problem(dora_forward: DoraForward, case: tuple[int, int, int, int]) -> bool:
    inputs = _dora_inputs(*case)
    y = _call(dora_forward, inputs)
    expected = _dora_layer(inputs)(inputs["x"]).detach()
    return not (
        isinstance(y, Tensor)
        and y.shape == expected.shape
        and torch.allclose(y.detach().double(), expected.double(), rtol=1e-4, atol=1e-5)
    )


def _dora_random_shapes(dora_forward: DoraForward) -> None:
    """Hypothesis: parity with DoRALinear for any d_in, d_out, r (and seed)."""
    found = counterexample(_SHAPES, lambda case: _dora_problem(dora_forward, case), examples=60)
    if found is None:
        return
    d_in, d_out, rank, _ = found
    inputs = _dora_inputs(*found)
    y = _call(dora_forward, inputs)
    check = f"parity with DoRALinear at d_in={d_in}, d_out={d_out}, r={rank}, s={inputs['scale']}"
    if isinstance(y, Tensor):
        check += _hint(inputs, y.detach())
    compare_tensors(y, _dora_layer(inputs)(inputs["x"]).detach(), check)


def _qwen2_layer(name: str) -> DoRALinear:
    """A DoRA-wrapped projection of a tiny random Qwen2, with B ≠ 0 and m ≠ ‖W₀‖."""
    model = tiny_qwen2(seed=3)
    apply(model, AdapterConfig(method="dora", rank=4, alpha=8.0, targets=(name,)))
    layer = model.get_submodule(f"model.layers.0.self_attn.{name}")
    with torch.no_grad():
        layer.lora_b.normal_(0, 0.5)
        layer.magnitude.mul_(1.5)
    return layer


def _layer_parity(dora_forward: DoraForward, name: str, check: str) -> None:
    layer = _qwen2_layer(name)
    x = torch.randn(2, 5, layer.in_features, generator=torch.Generator().manual_seed(4))
    inputs = {
        "x": x,
        "W0": layer.weight.detach(),
        "A": layer.lora_a.detach(),
        "B": layer.lora_b.detach(),
        "m": layer.magnitude.detach(),
        "scale": layer.scale,
        "b": None if layer.bias is None else layer.bias.detach(),
    }
    compare_tensors(_call(dora_forward, inputs), layer(x).detach(), check)


def _dora_q_proj(dora_forward: DoraForward) -> None:
    """Parity on layer 0's q_proj of a tiny Qwen2 (it has a bias)."""
    _layer_parity(dora_forward, "q_proj", "tiny Qwen2 q_proj (with bias)")


def _dora_o_proj(dora_forward: DoraForward) -> None:
    """Parity on layer 0's o_proj of a tiny Qwen2 (no bias: b is None)."""
    _layer_parity(dora_forward, "o_proj", "tiny Qwen2 o_proj (b is None)")


def _dora_magnitude_gradient(dora_forward: DoraForward) -> None:
    """∂y/∂m flows: the gradient w.r.t. m equals DoRALinear's."""
    inputs = _dora_inputs(6, 4, 2, seed=5)
    layer = _dora_layer(inputs)
    layer(inputs["x"]).sum().backward()
    m = inputs["m"].clone().requires_grad_(True)
    y = dora_forward(**{**inputs, "m": m})
    check = "gradient w.r.t. m"
    if not isinstance(y, Tensor) or not y.requires_grad:
        raise fail("the output carries no gradient to m; use m in the computation", check)
    y.sum().backward()
    grad = m.grad if m.grad is not None else torch.zeros_like(m)
    compare_tensors(grad, layer.magnitude.grad, check, what="∂(Σy)/∂m")


def _fq_shape(fake_quant_ste: Callable[[Tensor], Tensor]) -> None:
    """Same shape and dtype as the weight."""
    weight = torch.randn(4, 64, generator=torch.Generator().manual_seed(0))
    y = fake_quant_ste(weight.clone())
    if not isinstance(y, Tensor) or y.shape != weight.shape or y.dtype != weight.dtype:
        got = f"{tuple(y.shape)} {y.dtype}" if isinstance(y, Tensor) else type(y).__name__
        raise fail(f"returns {got}, expected (4, 64) torch.float32", "same shape and dtype")


def _fq_values(fake_quant_ste: Callable[[Tensor], Tensor], shape: tuple[int, ...], check: str):
    weight = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
    expected = fake_quantize_int4(weight, 64)
    compare_tensors(fake_quant_ste(weight.clone()), expected, check, atol=1e-6, rtol=1e-5)


def _fq_blocks(fake_quant_ste: Callable[[Tensor], Tensor]) -> None:
    """Q per block of 64 consecutive entries (a (2, 128) weight has 4 blocks, not 2 rows)."""
    _fq_values(fake_quant_ste, (2, 128), "value equals int4 fake-quant, blocks of 64")


def _fq_short_last_block(fake_quant_ste: Callable[[Tensor], Tensor]) -> None:
    """150 entries: blocks of 64, 64 and a last block of 22."""
    _fq_values(fake_quant_ste, (3, 50), "a shorter last block (150 = 64 + 64 + 22 entries)")


def _fq_zero_block(fake_quant_ste: Callable[[Tensor], Tensor]) -> None:
    """A block of zeros stays zero (absmax 0 must not divide by zero)."""
    weight = torch.cat([torch.zeros(64), torch.linspace(-1, 1, 64)]).reshape(2, 64)
    compare_tensors(
        fake_quant_ste(weight.clone()),
        fake_quantize_int4(weight, 64),
        "an all-zero block stays zero",
        atol=1e-6,
    )


def _fq_gradient(fake_quant_ste: Callable[[Tensor], Tensor]) -> None:
    """Straight through: ∂L/∂W = ∂L/∂Q(W), the upstream gradient unchanged."""
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(2, 64, generator=g).requires_grad_(True)
    upstream = torch.randn(2, 64, generator=g)
    y = fake_quant_ste(weight)
    check = "straight-through gradient is the identity"
    if not isinstance(y, Tensor) or not y.requires_grad:
        raise fail("the output carries no gradient to the weight", check)
    (y * upstream).sum().backward()
    grad = weight.grad if weight.grad is not None else torch.zeros_like(upstream)
    compare_tensors(grad, upstream, check, what="gradient")


def _fq_input_unchanged(fake_quant_ste: Callable[[Tensor], Tensor]) -> None:
    """The weight passed in is not modified in place."""
    weight = torch.randn(2, 64, generator=torch.Generator().manual_seed(2))
    kept = weight.clone()
    fake_quant_ste(weight)
    compare_tensors(weight, kept, "input left unchanged", what="the weight after the call")


CHECKS: MappingProxyType[str, tuple[Check, ...]] = MappingProxyType(
    {
        "E.dora_forward": (
            ("output shape", _dora_shape),
            ("B = 0, m = ‖W₀‖ gives W₀x + b", _dora_starts_as_base),
            ("bias untouched", _dora_bias_untouched),
            ("parity with DoRALinear on random shapes", _dora_random_shapes),
            ("tiny Qwen2 q_proj (with bias)", _dora_q_proj),
            ("tiny Qwen2 o_proj (b is None)", _dora_o_proj),
            ("gradient w.r.t. m", _dora_magnitude_gradient),
        ),
        "F.fake_quant_ste": (
            ("same shape and dtype", _fq_shape),
            ("value equals int4 fake-quant, blocks of 64", _fq_blocks),
            ("a shorter last block", _fq_short_last_block),
            ("an all-zero block stays zero", _fq_zero_block),
            ("straight-through gradient is the identity", _fq_gradient),
            ("input left unchanged", _fq_input_unchanged),
        ),
    }
)
"""Exercise id → its ordered checks."""
