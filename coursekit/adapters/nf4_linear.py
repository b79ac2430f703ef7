"""``nf4_linear``: y = x·Ŵᵀ + b over an NF4-stored frozen weight, keeping no dense Ŵ for backward.

Autograd through ``F.linear(x, W.dequantize())`` saves the dense (d_out, d_in) Ŵ whenever x
requires grad (it is what the gradient w.r.t. x needs), so a QLoRA model would hold a dense
copy of every quantized weight until backward: the memory NF4 was meant to save. QLoRA
(Dettmers et al. 2023, arXiv 2305.14314, §3 and Eq. 5) instead dequantizes again in the
backward pass, as bitsandbytes' ``MatMul4Bit`` does: the forward keeps a reference to the
4-bit codes only, and Ŵ exists for the duration of one matmul in each direction.

Gradients, for y = x·Ŵᵀ + b with Ŵ frozen: ∂L/∂x = ∂L/∂y · Ŵ (needs Ŵ, not x) and, if the
bias trains, ∂L/∂b = Σ ∂L/∂y over every leading dimension (needs nothing saved). So nothing
is saved for backward at all.

Shape legend: b batch, s seq, d_in input features, d_out output features.

Used by ``LoRALinear`` and ``DoRALinear`` through ``coursekit.adapters.lowrank.base_linear``
(``base_quantization="nf4"``); see docs/quantization-and-multi-adapter.md.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from coursekit.adapters.nf4 import NF4Tensor


class NF4Linear(torch.autograd.Function):
    """y = x·Ŵᵀ + b with Ŵ dequantized from NF4 in forward and again in backward (QLoRA §3)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: NF4Tensor, bias: Tensor | None) -> Tensor:
        """Return x·Ŵᵀ + b, (…, d_in) → (…, d_out); save a reference to the codes, no tensor."""
        ctx.weight = weight  # the module holding the 4-bit codes, not a dense tensor
        ctx.has_bias = bias is not None
        # A fresh (not view) output, so that callers may add to it in place (LoRA's s·B·A·x);
        # ``F.linear`` on a 3-D input returns a view, which autograd forbids modifying here.
        out = x.new_empty((*x.shape[:-1], weight.shape[0]))  # (…, d_out)
        flat_x, flat_out = x.reshape(-1, x.shape[-1]), out.view(-1, weight.shape[0])
        dense = weight.dequantize(x.dtype).T  # (d_in, d_out), a temporary freed on return
        if bias is None:
            torch.mm(flat_x, dense, out=flat_out)  # (b·s, d_in) @ (d_in, d_out)
        else:
            torch.addmm(bias, flat_x, dense, out=flat_out)
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, None, Tensor | None]:
        """Return ∂L/∂x = ∂L/∂y · Ŵ (dequantizing again), None for Ŵ, and Σ ∂L/∂y for b."""
        grad_x = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out @ ctx.weight.dequantize(grad_out.dtype)  # (…, d_out) @ (d_out, d_in)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_out.reshape(-1, grad_out.shape[-1]).sum(dim=0)  # (d_out,)
        return grad_x, None, grad_bias


def nf4_linear(x: Tensor, weight: NF4Tensor, bias: Tensor | None = None) -> Tensor:
    """Return y = x·Ŵᵀ + b, (…, d_in) → (…, d_out), saving no dense Ŵ for backward (QLoRA §3).

    Equal to ``F.linear(x, weight.dequantize(x.dtype), bias)`` in value and in the gradients
    w.r.t. x and b; the frozen Ŵ gets none.

    Args:
        x: (…, d_in) input in the compute dtype (Ŵ is dequantized to it).
        weight: the frozen (d_out, d_in) weight as an ``NF4Tensor``.
        bias: (d_out,) bias, or None.

    Example:
        >>> w = NF4Tensor.from_float(torch.randn(4, 64))
        >>> nf4_linear(torch.randn(3, 64, requires_grad=True), w).shape
        torch.Size([3, 4])
    """
    return NF4Linear.apply(x, weight, bias)
