"""Quantization-aware LoRA (Tier F): train y = Q(W₀ + s·B·A)x + b through a fake quantizer Q.

Plain LoRA trains W₀ + s·B·A in full precision; a model deployed as merged 4-bit weights is
then quantized after training, and every update smaller than half a quantization step is
rounded away. Quantization-aware training (QAT) puts Q in the forward pass instead, so the
loss is the loss of the weights that will actually be deployed. Q is piecewise constant, so
its gradient is replaced by the identity, the straight-through estimator (STE; Bengio et al.
2013, arXiv 1308.3432): forward Q(W), backward ∂L/∂W := ∂L/∂Q(W). Only A and B train; the
gradient reaching them is that of plain LoRA evaluated at the quantized weight. QA-LoRA
(Xu et al. 2023, arXiv 2309.14717) pursues the same goal with group-wise quantization.

Two quantizers, chosen by ``quant`` (a ``Literal`` dispatched through ``FAKE_QUANTIZERS``):
``"nf4"`` is QLoRA's NF4 with double quantization (``coursekit.adapters.nf4``); ``"int4"`` is
symmetric integer rounding per block, w ↦ round(w/Δ)·Δ with Δ = absmax/7 and codes in -7..7.

Shape legend: d_in input features, d_out output features, r rank.

Used in docs/quantization-and-multi-adapter.md (Tier F) and tests/adapters/test_qat.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import MappingProxyType
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from coursekit.adapters.config import AdapterConfig, resolve_targets
from coursekit.adapters.inject import replace_linears
from coursekit.adapters.lowrank import delta_weight, init_adapter
from coursekit.adapters.nf4 import BLOCK_SIZES, NF4Tensor
from coursekit.adapters.variants import VARIANTS, lora_update_variants

QuantKind = Literal["nf4", "int4"]

INT4_LEVELS = 7
"""Largest symmetric int4 code: codes are -7..7, so that zero is exact and ±absmax too."""


def fake_quantize_nf4(weight: Tensor, block_size: int = 64) -> Tensor:
    """Return Q(W) = dequantize(quantize(W)) in NF4 with double quantization (QLoRA §3)."""
    return NF4Tensor.from_float(weight, block_size=block_size).dequantize(weight.dtype)


def fake_quantize_int4(weight: Tensor, block_size: int = 64) -> Tensor:
    """Return Q(W) = round(W/Δ)·Δ per block of ``block_size`` entries, Δ = absmax/7."""
    flat = weight.detach().reshape(-1).float()  # (n,)
    blocks = nn.functional.pad(flat, (0, -flat.numel() % block_size)).reshape(-1, block_size)
    step = blocks.abs().amax(dim=1, keepdim=True).clamp(min=1e-38) / INT4_LEVELS  # (n_b, 1)
    rounded = (blocks / step).round().clamp(-INT4_LEVELS, INT4_LEVELS) * step  # (n_b, block)
    return rounded.reshape(-1)[: flat.numel()].reshape(weight.shape).to(weight.dtype)


FAKE_QUANTIZERS: MappingProxyType[str, Callable[[Tensor, int], Tensor]] = MappingProxyType(
    {"nf4": fake_quantize_nf4, "int4": fake_quantize_int4}
)
"""``quant`` → its fake quantizer W ↦ Q(W), same shape and dtype (read-only)."""


def check_quantizer(quant: str, block_size: int) -> None:
    """Raise ``ValueError`` unless ``quant`` names a fake quantizer and ``block_size`` is valid."""
    if quant not in FAKE_QUANTIZERS:
        raise ValueError(f"quant must be one of {get_args(QuantKind)} (got {quant!r}); use 'nf4'")
    if block_size not in BLOCK_SIZES:
        raise ValueError(f"block_size must be one of {BLOCK_SIZES} (got {block_size}); use 64")


def straight_through(weight: Tensor, quant: QuantKind = "nf4", block_size: int = 64) -> Tensor:
    """Return a tensor whose value is Q(W) and whose gradient w.r.t. W is the identity (STE)."""
    quantized = FAKE_QUANTIZERS[quant](weight.detach(), block_size)
    return weight + (quantized - weight).detach()


class QATLoRALinear(nn.Module):
    """y = Q(W₀ + s·B·A)·x + b with W₀, b frozen, A, B trained through the STE (LoRA + QAT).

    The forward forms the dense merged weight (d_out, d_in) every step, which costs one
    quantization per layer per step; that is the price of training the deployed weights.

    Attributes:
        weight: frozen W₀, (d_out, d_in), shared with the wrapped ``nn.Linear``.
        bias: frozen b, (d_out,), or ``None``.
        lora_a: trainable A, (r, d_in), kaiming-uniform init.
        lora_b: trainable B, (d_out, r), zero init, so training starts at Q(W₀).
        scale: s = α/r, or α/√r with ``use_rslora``.

    Example:
        >>> layer = QATLoRALinear(nn.Linear(64, 32), rank=4, alpha=8.0, quant="int4")
        >>> layer(torch.randn(3, 64)).shape
        torch.Size([3, 32])
    """

    def __init__(
        self,
        base: nn.Linear,
        *,
        rank: int,
        alpha: float,
        use_rslora: bool = False,
        quant: QuantKind = "nf4",
        block_size: int = 64,
    ) -> None:
        super().__init__()
        check_quantizer(quant, block_size)
        init_adapter(self, base, rank=rank, alpha=alpha, use_rslora=use_rslora)
        self.quant, self.block_size = quant, block_size

    def merged_weight(self) -> Tensor:
        """Return W₀ + s·B·A, (d_out, d_in), differentiable in A and B."""
        return self.weight + delta_weight(self.lora_a, self.lora_b, self.scale)

    def forward(self, x: Tensor) -> Tensor:
        """Map (…, d_in) → (…, d_out): Q(W₀ + s·B·A)x + b, gradients straight through Q."""
        weight = straight_through(self.merged_weight(), self.quant, self.block_size)
        return nn.functional.linear(x, weight, self.bias)

    @torch.no_grad()
    def to_linear(self, *, quantize: bool = False) -> nn.Linear:
        """Return an ``nn.Linear`` holding W₀ + s·B·A, or Q(W₀ + s·B·A) with ``quantize``."""
        merged = self.merged_weight()
        if quantize:
            merged = FAKE_QUANTIZERS[self.quant](merged, self.block_size)
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        linear.to(merged)
        linear.weight.copy_(merged)
        if self.bias is not None:
            linear.bias.copy_(self.bias)
        return linear.requires_grad_(False)

    def extra_repr(self) -> str:
        """Describe the shapes and hyperparameters for ``print(model)``."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"rank={self.rank}, alpha={self.alpha}, quant={self.quant!r}, "
            f"block_size={self.block_size}"
        )


def _check_config(config: AdapterConfig) -> None:
    if config.method not in lora_update_variants():
        raise ValueError(
            f"AdapterConfig.method must be 'lora' for apply_qat (got {config.method!r}): QAT "
            "trains a LoRA update; DoRA's rescaling is not supported; set method='lora'"
        )
    rules = (
        ("dropout", 0.0, "the quantized merged weight multiplies x as one matrix"),
        ("base_quantization", "none", "QAT merges into a full-precision W₀"),
    )
    for field, required, reason in rules:
        if getattr(config, field) != required:
            raise ValueError(
                f"AdapterConfig.{field} must be {required!r} for apply_qat (got "
                f"{getattr(config, field)!r}): {reason}; set {field}={required!r}"
            )


def apply_qat(
    model: nn.Module, config: AdapterConfig, *, quant: QuantKind = "nf4", block_size: int = 64
) -> nn.Module:
    """Swap each targeted ``nn.Linear`` for a ``QATLoRALinear`` and freeze everything else.

    The model is changed in place and returned; afterwards only ``lora_a`` and ``lora_b``
    train. Targets are resolved as ``coursekit.adapters.apply`` resolves them.

    Raises:
        ValueError: ``config`` asks for DoRA, dropout or an NF4 base (QAT needs plain LoRA on
            a full-precision base), ``quant`` or ``block_size`` is unknown, or the targets
            match nothing.
    """
    _check_config(config)
    check_quantizer(quant, block_size)
    names = resolve_targets(config, model)
    model.requires_grad_(False)
    return replace_linears(
        model,
        names,
        lambda linear: QATLoRALinear(
            linear,
            rank=config.rank,
            alpha=config.alpha,
            use_rslora=VARIANTS[config.method].rank_stabilized,
            quant=quant,
            block_size=block_size,
        ),
    )


def qat_modules(model: nn.Module) -> Iterator[tuple[str, QATLoRALinear]]:
    """Yield (qualified name, module) for every ``QATLoRALinear`` in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, QATLoRALinear):
            yield name, module


def merge_qat(model: nn.Module, *, quantize: bool = False) -> nn.Module:
    """Replace each ``QATLoRALinear`` by an ``nn.Linear`` of W₀ + s·B·A (or its Q); in place."""
    names = [name for name, _ in qat_modules(model)]
    return replace_linears(model, names, lambda module: module.to_linear(quantize=quantize))


@torch.no_grad()
def quantize_weights_(
    model: nn.Module, names: Iterable[str], *, quant: QuantKind = "nf4", block_size: int = 64
) -> nn.Module:
    """Overwrite the ``weight`` of each named module with Q(weight); returns ``model``.

    This simulates deploying merged weights in 4 bits: apply it to the merged linear layers
    of a plain LoRA model (after ``coursekit.adapters.merge``) or of a QAT model (after
    ``merge_qat``) and evaluate.
    """
    check_quantizer(quant, block_size)
    for name in names:
        weight = model.get_submodule(name).weight
        weight.copy_(FAKE_QUANTIZERS[quant](weight, block_size))
    return model
