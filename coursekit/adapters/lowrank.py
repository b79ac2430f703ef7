"""Pure helpers shared by every low-rank adapter: scale, init, the delta x ↦ s·B·A·x, norms.

LoRA (Hu et al. 2021, arXiv 2106.09685) adds a trainable rank-r update to a frozen linear
layer: W₀x ↦ W₀x + s·B·A·x with A of shape (r, d_in), B of shape (d_out, r) and the scale
s = α/r (LoRA §4.1), or s = α/√r with rsLoRA (Kalajdzievski 2023, arXiv 2312.03732, Thm. 3.2).
``LoRALinear`` and ``DoRALinear`` (and the QAT and multi-adapter modules) are built from these
functions; nothing here holds state.

Shape legend: b batch, s seq, d_in input features, d_out output features, r rank.

Guide: docs/adapters.md. Used in notebooks/phase2_analysis.ipynb (LoRA configuration and
targeting) and by the Phase 3 enhancements (docs/course.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Literal

import torch
from torch import Tensor, nn

from coursekit.adapters.nf4 import NF4Tensor
from coursekit.adapters.nf4_linear import nf4_linear

BaseQuantization = Literal["none", "nf4"]
"""How an adapter layer stores its frozen W₀: as is, or as NF4 codes (QLoRA)."""


def scale(alpha: float, rank: int, use_rslora: bool) -> float:
    """Return the update scale s = α/r, or s = α/√r with rsLoRA (arXiv 2312.03732, Thm. 3.2).

    Example:
        >>> scale(16, 4, False), scale(16, 4, True)
        (4.0, 8.0)
    """
    return alpha / math.sqrt(rank) if use_rslora else alpha / rank


def init_lora_(lora_a: Tensor, lora_b: Tensor) -> None:
    """Initialise A ~ kaiming_uniform(a=√5) and B = 0 in place, so that B·A = 0 at the start.

    This is peft's default (``init_lora_weights=True``), which is ``nn.Linear``'s own init for
    A; LoRA §4.1 specifies a random Gaussian A and zero B. Either way the adapted layer starts
    out equal to the frozen one.

    Args:
        lora_a: (r, d_in) down-projection A.
        lora_b: (d_out, r) up-projection B.
    """
    with torch.no_grad():
        nn.init.kaiming_uniform_(lora_a, a=math.sqrt(5))
        nn.init.zeros_(lora_b)


def lora_delta(
    x: Tensor,
    lora_a: Tensor,
    lora_b: Tensor,
    scale: float,
    dropout: Callable[[Tensor], Tensor],
) -> Tensor:
    """Return s·B·A·dropout(x) without forming B·A: two thin matmuls, (…, d_in) → (…, d_out).

    Args:
        x: (b, s, d_in) or any (…, d_in) input.
        lora_a: (r, d_in) down-projection A.
        lora_b: (d_out, r) up-projection B.
        scale: s, from ``scale``.
        dropout: applied to x on the adapter path only (LoRA §4.1 leaves W₀x untouched).
    """
    hidden = nn.functional.linear(dropout(x), lora_a) * scale  # (…, r): scale the thin tensor
    return nn.functional.linear(hidden, lora_b)  # (…, d_out)


def delta_weight(lora_a: Tensor, lora_b: Tensor, scale: float) -> Tensor:
    """Return the dense update ΔW = s·B·A of shape (d_out, d_in), as merging needs it."""
    return (lora_b @ lora_a) * scale  # (d_out, r) @ (r, d_in) → (d_out, d_in)


def row_norm(weight: Tensor) -> Tensor:
    """Return ‖W_i‖₂ for every output row i of a (d_out, d_in) weight, shape (d_out,).

    DoRA (arXiv 2402.09353, Eq. 2) initialises its magnitude vector m to this norm of W₀.
    """
    return torch.linalg.vector_norm(weight, dim=1)


def adapted_row_norm(weight: Tensor, lora_a: Tensor, lora_b: Tensor, scale: float) -> Tensor:
    """Return ‖W₀ + s·B·A‖₂ per output row, shape (d_out,), without forming the (d_out, d_in) sum.

    Expands the square row by row: ‖w + s·bA‖² = ‖w‖² + 2s·b·(A·wᵀ) + s²·b·(A·Aᵀ)·bᵀ, so the
    largest temporaries are (d_out, r) and (r, r). The result is detached, as DoRA §4.3
    prescribes (the norm is treated as a constant in the backward pass). This is the cost that
    makes DoRA slower than LoRA: one read of W₀ and a (d_out, d_in) × (d_in, r) matmul per step.

    Args:
        weight: (d_out, d_in) frozen W₀.
        lora_a: (r, d_in) down-projection A.
        lora_b: (d_out, r) up-projection B.
        scale: s, from ``scale``.
    """
    with torch.no_grad():
        # The (d_out,) and (r, ·) pieces are summed in float32, so bf16/fp16 weights keep precision.
        base_sq = torch.linalg.vector_norm(weight, dim=1, dtype=torch.float32).square()  # (d_out,)
        projected = (weight @ lora_a.T).float()  # (d_out, d_in) @ (d_in, r) → (d_out, r)
        b, a = lora_b.float(), lora_a.float()
        cross = (b * projected).sum(dim=1)  # (d_out,)
        update_sq = ((b @ (a @ a.T)) * b).sum(dim=1)  # (d_out, r) @ (r, r) → (d_out,)
        squared = base_sq + 2 * scale * cross + scale * scale * update_sq
        return squared.clamp(min=0).sqrt().to(weight.dtype)


def _frozen_parameter(weight: Tensor) -> nn.Parameter:
    return nn.Parameter(weight.detach(), requires_grad=False)


def _nf4(weight: Tensor) -> NF4Tensor:
    return NF4Tensor.from_float(weight.detach())


_BASE_STORAGE: MappingProxyType[str, Callable[[Tensor], nn.Parameter | NF4Tensor]] = (
    MappingProxyType({"none": _frozen_parameter, "nf4": _nf4})
)


def store_base_weight(weight: Tensor, base_quantization: str) -> nn.Parameter | NF4Tensor:
    """Return W₀ frozen for storage, as a plain Parameter or as NF4 codes (QLoRA).

    ``"none"`` gives a ``requires_grad=False`` Parameter sharing W₀'s memory; ``"nf4"`` gives
    an ``NF4Tensor`` (QLoRA, arXiv 2305.14314 §3) that ``load_base_weight`` dequantizes.
    """
    return _BASE_STORAGE[base_quantization](weight)


def load_base_weight(stored: nn.Parameter | NF4Tensor, dtype: torch.dtype) -> Tensor:
    """Return the stored W₀ as a dense (d_out, d_in) tensor of ``dtype``, dequantizing NF4."""
    if isinstance(stored, Tensor):
        return stored.to(dtype)
    return stored.dequantize(dtype=dtype)


def base_linear(x: Tensor, stored: nn.Parameter | NF4Tensor, bias: Tensor | None) -> Tensor:
    """Return the frozen part W₀x + b, (…, d_in) → (…, d_out), in x's dtype.

    A plain W₀ goes through ``F.linear``; an NF4 W₀ through ``nf4_linear``, which dequantizes
    in forward and again in backward, so that no dense copy of it is saved for backward.
    """
    if isinstance(stored, Tensor):
        return nn.functional.linear(x, stored.to(x.dtype), bias)
    return nf4_linear(x, stored, bias)


def check_mergeable(stored: object, base_quantization: str) -> None:
    """Raise if W₀ is not a plain tensor: adding s·B·A to NF4 codes would re-quantize it."""
    if not isinstance(stored, Tensor):
        raise ValueError(
            f"cannot merge into a base stored as {base_quantization!r} (got "
            f"{type(stored).__name__}); merge the adapter into an unquantized model instead"
        )


def init_adapter(
    module: nn.Module,
    base: nn.Linear,
    *,
    rank: int,
    alpha: float,
    dropout: float = 0.0,
    use_rslora: bool = False,
    base_quantization: str = "none",
    n_adapters: int | None = None,
) -> None:
    """Set up an adapter layer: the frozen base, the shared settings and a fresh A, B pair.

    Sets ``in_features``, ``out_features``, ``rank``, ``alpha``, ``use_rslora``,
    ``base_quantization``, ``scale`` (s), the frozen ``weight`` W₀ (dense or NF4), the frozen
    ``bias`` b, the input ``dropout``, and the trainable ``lora_a`` A (r, d_in) and ``lora_b``
    B (d_out, r) initialised by ``init_lora_`` so that B·A = 0. With ``n_adapters`` = N, A and
    B are N stacked pairs, (N, r, d_in) and (N, d_out, r), each initialised alone (multi-LoRA).
    Shared by every adapter layer (LoRA, DoRA, multi-LoRA, QAT); A and B take W₀'s dtype and
    device.
    """
    module.in_features, module.out_features = base.in_features, base.out_features
    module.rank, module.alpha, module.use_rslora = rank, alpha, use_rslora
    module.base_quantization = base_quantization
    module.scale = scale(alpha, rank, use_rslora)
    module.weight = store_base_weight(base.weight, base_quantization)
    module.bias = None if base.bias is None else store_base_weight(base.bias, "none")
    module.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
    factory = {"dtype": base.weight.dtype, "device": base.weight.device}
    stack = () if n_adapters is None else (n_adapters,)
    module.lora_a = nn.Parameter(torch.empty(*stack, rank, base.in_features, **factory))
    module.lora_b = nn.Parameter(torch.empty(*stack, base.out_features, rank, **factory))
    stacked = n_adapters is not None
    pairs = zip(module.lora_a, module.lora_b, strict=True) if stacked else [
        (module.lora_a, module.lora_b)]  # fmt: skip
    for lora_a, lora_b in pairs:
        init_lora_(lora_a, lora_b)
