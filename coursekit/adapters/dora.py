"""``DoRALinear``: LoRA with the weight split into magnitude and direction (DoRA).

Shape legend: b batch, s seq, d_in input features, d_out output features, r rank.

Guide: docs/adapters.md. Reference implementation of enhancement E (DoRA), phase 3
(docs/course.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from coursekit.adapters.lowrank import (
    BaseQuantization,
    adapted_row_norm,
    base_linear,
    check_mergeable,
    delta_weight,
    init_adapter,
    load_base_weight,
    lora_delta,
    row_norm,
)


class DoRALinear(nn.Module):
    """y = m ⊙ (W₀ + s·B·A)x / ‖W₀ + s·B·A‖ + b, the norm per output row (DoRA, arXiv 2402.09353).

    DoRA (Eq. 5) keeps the direction of W₀ + s·B·A and learns its per-row length m, initialised
    to ‖W₀‖ so that the layer starts equal to the base one. Following §4.3 the norm is
    detached (a constant in the backward pass), which saves memory and barely changes accuracy.
    The norm is computed from (d_out, r) and (r, r) products, never forming W₀ + s·B·A (see
    ``adapted_row_norm``). Dropout applies to the input of the low-rank path only. An NF4 W₀
    (QLoRA) is dequantized for the norm and for W₀x, and again in backward (``nf4_linear``):
    no dense copy of it is saved for backward.

    The bias is added after the rescaling, not rescaled: DoRA decomposes the weight, and b is
    not part of it. peft does the same; torchtune rescales the bias too, which changes Qwen2's
    q/k/v projections (they have biases). ``tests/adapters/test_dora.py`` pins this.

    Attributes:
        weight: frozen W₀, (d_out, d_in) Parameter with ``requires_grad=False``, or NF4Tensor.
        bias: frozen b, (d_out,) Parameter with ``requires_grad=False``, or ``None``.
        lora_a: trainable A, (r, d_in).
        lora_b: trainable B, (d_out, r).
        magnitude: trainable m, (d_out,).
        scale: s = α/r, or α/√r with rsLoRA.
        merged: whether ``weight`` currently holds m ⊙ (W₀ + s·B·A) / ‖W₀ + s·B·A‖.

    Example:
        >>> layer = DoRALinear(nn.Linear(8, 4), rank=2, alpha=4.0)
        >>> layer(torch.randn(3, 8)).shape
        torch.Size([3, 4])
    """

    def __init__(
        self,
        base: nn.Linear,
        *,
        rank: int,
        alpha: float,
        dropout: float = 0.0,
        use_rslora: bool = False,
        base_quantization: BaseQuantization = "none",
    ) -> None:
        super().__init__()
        init_adapter(
            self, base, rank=rank, alpha=alpha, dropout=dropout, use_rslora=use_rslora,
            base_quantization=base_quantization,
        )  # fmt: skip
        self.magnitude = nn.Parameter(row_norm(self.base_weight().detach()))  # (d_out,)
        self.merged = False
        # ‖W₀ + s·B·A‖ at merge time, for unmerge; a buffer so that .to(device) moves it.
        self._merged_norm: Tensor | None
        self.register_buffer("_merged_norm", None, persistent=False)

    def base_weight(self, dtype: torch.dtype | None = None) -> Tensor:
        """Return W₀ (or the merged weight while merged) as a dense (d_out, d_in) tensor."""
        return load_base_weight(self.weight, dtype or self.lora_a.dtype)

    def forward(self, x: Tensor) -> Tensor:
        """Map (…, d_in) → (…, d_out): (m / ‖W₀ + s·B·A‖) ⊙ (W₀x + s·B·A·dropout(x)) + b."""
        if self.merged:
            return base_linear(x, self.weight, self.bias)
        # The dense W₀ lives only inside this no-grad call; the norm comes back detached.
        norm = adapted_row_norm(self.base_weight(x.dtype), self.lora_a, self.lora_b, self.scale)
        direction = base_linear(x, self.weight, None) + lora_delta(
            x, self.lora_a, self.lora_b, self.scale, self.dropout
        )  # (…, d_out); an NF4 W₀ is dequantized again in backward, not saved
        out = direction * (self.magnitude / norm)  # (…, d_out) ⊙ (d_out,)
        # In place is safe: the product's backward needs its inputs, not its output.
        return out if self.bias is None else out.add_(self.bias)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the adapter into the weight: W ← m ⊙ (W₀ + s·B·A) / ‖W₀ + s·B·A‖ (bias as is)."""
        check_mergeable(self.weight, self.base_quantization)
        if not self.merged:
            adapted = self.weight + delta_weight(self.lora_a, self.lora_b, self.scale)
            self._merged_norm = row_norm(adapted)  # (d_out,)
            self.weight.copy_(adapted * (self.magnitude / self._merged_norm)[:, None])
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo ``merge`` with the norm saved then: W₀ ← W · ‖W₀ + s·B·A‖ / m − s·B·A."""
        if self.merged:
            assert self._merged_norm is not None  # set by merge
            factor = (self._merged_norm / self.magnitude)[:, None]  # (d_out, 1)
            self.weight.mul_(factor).sub_(delta_weight(self.lora_a, self.lora_b, self.scale))
            self.merged, self._merged_norm = False, None

    def extra_repr(self) -> str:
        """Describe the shapes and hyperparameters for ``print(model)``."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"rank={self.rank}, alpha={self.alpha}, use_rslora={self.use_rslora}, "
            f"base_quantization={self.base_quantization!r}, merged={self.merged}"
        )
