"""Hidden checks of Tier G: ``multi_lora_forward``, against ``MultiLoRALinear``.

``multi_lora_forward(x, W0, b, A, B, indices, scale) -> y`` with x (b, s, d_in), W0
(d_out, d_in), b (d_out,) or None, A (N, r, d_in), B (N, d_out, r), indices (b,) integers
in 0..N−1: y_i = W₀x_i + b + s·B_{k(i)}·A_{k(i)}·x_i, example i through its own adapter
k(i) = indices[i] (``coursekit.adapters.multi``, docs/quantization-and-multi-adapter.md).
G has no ``coursekit.check`` exercise: these checks are its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from hypothesis import strategies as st
from torch import Tensor, nn

from coursekit.adapters.multi import MultiLoRALinear
from coursekit.exercises.compare import compare_tensors, counterexample, fail
from coursekit.workspace.tiers import TIERS

ID = "G.multi_lora_forward"
EXPORTS, SIGNATURE = TIERS["G"].exports, TIERS["G"].signature

Forward = Callable[..., Tensor]


def _inputs(d_in: int, d_out: int, rank: int, n: int, seed: int, bias: bool = True) -> dict:
    """Random x (b, 3, d_in) with b = n + 1, W₀, b, A, B (non-zero) and indices using each k."""
    g = torch.Generator().manual_seed(seed)
    batch = n + 1
    indices = torch.cat([torch.randperm(n, generator=g), torch.randint(n, (1,), generator=g)])
    return {
        "x": torch.randn(batch, 3, d_in, generator=g),
        "W0": torch.randn(d_out, d_in, generator=g),
        "b": torch.randn(d_out, generator=g) if bias else None,
        "A": torch.randn(n, rank, d_in, generator=g),
        "B": torch.randn(n, d_out, rank, generator=g),
        "indices": indices,
        "scale": 0.5 + seed % 3,
    }


def _expected(inputs: dict[str, Any]) -> Tensor:
    """The expected output: coursekit's MultiLoRALinear with ``inputs``' tensors, on x."""
    n, rank, d_in = inputs["A"].shape
    d_out = inputs["W0"].shape[0]
    base = nn.Linear(d_in, d_out, bias=inputs["b"] is not None)
    layer = MultiLoRALinear(base, n_adapters=n, rank=rank, alpha=inputs["scale"] * rank)
    with torch.no_grad():
        layer.weight.copy_(inputs["W0"])
        if inputs["b"] is not None:
            layer.bias.copy_(inputs["b"])
        layer.lora_a.copy_(inputs["A"])
        layer.lora_b.copy_(inputs["B"])
    layer.indices = inputs["indices"]
    return layer(inputs["x"]).detach()


def _call(forward: Forward, inputs: dict[str, Any]) -> Any:
    return forward(**{k: v.clone() if isinstance(v, Tensor) else v for k, v in inputs.items()})


def _shape(forward: Forward) -> None:
    """(b, 3, d_in) in, (b, 3, d_out) out."""
    inputs = _inputs(5, 4, 2, 3, seed=0)
    y = _call(forward, inputs)
    if not isinstance(y, Tensor) or y.shape != (4, 3, 4):
        shape = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        raise fail(f"output has shape {shape}, expected (4, 3, 4) for x of (4, 3, 5)", "shape")


def _base(forward: Forward) -> None:
    """B = 0 for every adapter gives the base layer, y = W₀x + b."""
    inputs = _inputs(6, 5, 2, 3, seed=1) | {"B": torch.zeros(3, 5, 2)}
    expected = inputs["x"] @ inputs["W0"].T + inputs["b"]
    compare_tensors(_call(forward, inputs), expected, "B = 0 gives W₀x + b")


def _routing(forward: Forward) -> None:
    """Each example gets its own adapter: example i changes only with adapter indices[i]."""
    inputs = _inputs(6, 5, 2, 3, seed=2)
    compare_tensors(_call(forward, inputs), _expected(inputs), "each example its own adapter")
    swapped = inputs | {"indices": inputs["indices"].flip(0)}
    compare_tensors(
        _call(forward, swapped), _expected(swapped), "each example its own adapter", what="output"
    )


def _no_bias(forward: Forward) -> None:
    """With b None, no bias is added."""
    inputs = _inputs(4, 6, 3, 2, seed=3, bias=False)
    compare_tensors(_call(forward, inputs), _expected(inputs), "b is None")


def _unused_adapter(forward: Forward) -> None:
    """An adapter no example uses gets no gradient; a used one does."""
    inputs = _inputs(4, 3, 2, 3, seed=4) | {"indices": torch.tensor([0, 2, 0, 2])}
    a = inputs["A"].clone().requires_grad_(True)
    b = inputs["B"].clone().requires_grad_(True)
    y = forward(**(inputs | {"A": a, "B": b}))
    if not isinstance(y, Tensor) or not y.requires_grad:
        raise fail("the output carries no gradient to A and B", "an unused adapter")
    y.square().sum().backward()
    if a.grad is None or b.grad is None:
        raise fail("A or B received no gradient", "an unused adapter")
    if a.grad[1].abs().max() > 0 or b.grad[1].abs().max() > 0:
        raise fail("adapter 1 is used by no example but received a gradient", "an unused adapter")
    if a.grad[0].abs().max() == 0 or b.grad[2].abs().max() == 0:
        raise fail("adapters 0 and 2 are used but received no gradient", "an unused adapter")


_CASES = st.tuples(*(st.integers(1, 6) for _ in range(3)), st.integers(1, 4), st.integers(0, 99))
"""(d_in, d_out, r, N, seed)."""


def _problem(forward: Forward, case: tuple[int, ...]) -> bool:
    inputs = _inputs(*case)
    y = _call(forward, inputs)
    expected = _expected(inputs)
    return not (
        isinstance(y, Tensor)
        and y.shape == expected.shape
        and torch.allclose(y.detach().double(), expected.double(), rtol=1e-4, atol=1e-5)
    )


def _random(forward: Forward) -> None:
    """Hypothesis: parity with MultiLoRALinear for any d_in, d_out, r, N (and seed)."""
    found = counterexample(_CASES, lambda case: _problem(forward, case), examples=40)
    if found is not None:
        d_in, d_out, rank, n, _ = found
        check = f"parity with MultiLoRALinear at d_in={d_in}, d_out={d_out}, r={rank}, N={n}"
        compare_tensors(_call(forward, _inputs(*found)), _expected(_inputs(*found)), check)


CHECKS = (
    ("output shape", _shape),
    ("B = 0 gives W₀x + b", _base),
    ("each example its own adapter", _routing),
    ("b is None", _no_bias),
    ("an unused adapter gets no gradient", _unused_adapter),
    ("parity with MultiLoRALinear on random shapes", _random),
)
