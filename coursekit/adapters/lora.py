"""``LoRALinear``: a frozen linear layer plus a trainable low-rank update (LoRA).

Shape legend: b batch, s seq, d_in input features, d_out output features, r rank.

Guide: docs/adapters.md. Used in notebooks/phase2_analysis.ipynb (LoRA configuration and
targeting) and by the Phase 3 enhancements (docs/course.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from coursekit.adapters.lowrank import (
    BaseQuantization,
    base_linear,
    check_mergeable,
    delta_weight,
    init_adapter,
    load_base_weight,
    lora_delta,
)


class LoRALinear(nn.Module):
    """y = W₀x + b + s·B·A·dropout(x), with W₀ and b frozen and s = α/r (LoRA, arXiv 2106.09685).

    With ``use_rslora`` the scale is s = α/√r (arXiv 2312.03732). A is initialised like peft's
    default (kaiming_uniform, a = √5) and B = 0, so the layer starts equal to the base one.
    The frozen weight is shared with the ``nn.Linear`` it wraps (``base_quantization="none"``)
    or stored as NF4 codes (``"nf4"``, QLoRA) and dequantized in every forward and again in
    backward (``nf4_linear``), so no dense copy of W₀ is kept between them.

    Attributes:
        weight: frozen W₀, (d_out, d_in) Parameter with ``requires_grad=False``, or NF4Tensor.
        bias: frozen b, (d_out,) Parameter with ``requires_grad=False``, or ``None``.
        lora_a: trainable A, (r, d_in).
        lora_b: trainable B, (d_out, r).
        scale: s.
        merged: whether s·B·A is currently added into ``weight`` (see ``merge``).

    Example:
        >>> layer = LoRALinear(nn.Linear(8, 4), rank=2, alpha=4.0)
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
        self.merged = False

    def base_weight(self, dtype: torch.dtype | None = None) -> Tensor:
        """Return W₀ (or W₀ + s·B·A while merged) as a dense (d_out, d_in) tensor."""
        return load_base_weight(self.weight, dtype or self.lora_a.dtype)

    def forward(self, x: Tensor) -> Tensor:
        """Map (…, d_in) → (…, d_out): W₀x + b + s·B·A·dropout(x)."""
        out = base_linear(x, self.weight, self.bias)  # (…, d_out), no dense NF4 copy saved
        if self.merged:
            return out
        # In place is safe: linear's backward needs x and W₀ (or the NF4 codes), not its output.
        return out.add_(lora_delta(x, self.lora_a, self.lora_b, self.scale, self.dropout))

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight, W₀ ← W₀ + s·B·A, so forward is one matmul."""
        check_mergeable(self.weight, self.base_quantization)
        if not self.merged:
            self.weight += delta_weight(self.lora_a, self.lora_b, self.scale).to(self.weight)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo ``merge``: W₀ ← W₀ − s·B·A (equal to the old W₀ up to rounding)."""
        if self.merged:
            self.weight -= delta_weight(self.lora_a, self.lora_b, self.scale).to(self.weight)
            self.merged = False

    def extra_repr(self) -> str:
        """Describe the shapes and hyperparameters for ``print(model)``."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"rank={self.rank}, alpha={self.alpha}, use_rslora={self.use_rslora}, "
            f"base_quantization={self.base_quantization!r}, merged={self.merged}"
        )
