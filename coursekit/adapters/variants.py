"""The adapter-variant registry: what each adapter method is, in one table.

A *variant* is one way of adapting a frozen linear layer W₀ (d_out, d_in) with a rank-r update.
Its ``Variant`` entry carries everything the rest of coursekit needs to know about it, so that
no other module restates it:

- ``layer``: the ``nn.Module`` class that ``apply`` swaps in for each targeted ``nn.Linear``;
- ``rank_stabilized``: the update scale, s = α/r, or s = α/√r (rsLoRA, arXiv 2312.03732);
- ``trainable``: the trainable-parameter formula (d_in, d_out, r) ↦ count, which
  ``count_trainable`` and the memory planner use without building a model;
- ``saved_elements``: activation elements per token the adapter path keeps for backward,
  (d_out, r) ↦ count, for ``coursekit.memory``;
- ``peft_keys`` and ``parameter_keys``: how the variant is written to and recognised in peft's
  ``adapter_config.json``, and its tensors' key suffixes in ``adapter_model.safetensors``;
- ``lr_scale``: an optimizer hook, (parameter name, config) ↦ multiple of the base learning rate
  (LoRA+ trains B faster); the trainer receives named parameter groups built from it.

The *run methods* (``coursekit train --method``, ``RunSpec.method``) are derived from the
registry: every variant ``v``, ``q`` + ``v`` for the same variant on an NF4-quantized base
(``qlora`` is QLoRA, arXiv 2305.14314), and ``full`` for no adapter at all.

Adding a variant is one module (its layer class or hook), one ``register`` call below and its
tests; docs/adapters.md ("How to add an adapter variant") walks through LoRA+.

Guide: docs/adapters.md. Used in notebooks/phase2_analysis.ipynb (LoRA configuration and
targeting) and by the phase 3 enhancements (docs/course.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from torch import nn

from coursekit.adapters.dora import DoRALinear
from coursekit.adapters.lora import LoRALinear
from coursekit.adapters.loraplus import loraplus_lr_scale

if TYPE_CHECKING:
    from coursekit.adapters.config import AdapterConfig

QUANTIZED_PREFIX = "q"
"""A run method ``q<variant>`` is ``<variant>`` on an NF4 base (``qlora``, ``qdora``)."""
FULL = "full"
"""The run method without an adapter: every weight trains."""


def _low_rank(d_in: int, d_out: int, rank: int) -> int:
    """A (r, d_in) and B (d_out, r): r·(d_in + d_out) numbers."""
    return rank * (d_in + d_out)


def _low_rank_saved(d_out: int, rank: int) -> int:
    """B's input, A·x: r elements per token (A's input x is the base layer's, saved anyway)."""
    return rank


def _unit_lr(parameter: str, config: AdapterConfig) -> float:
    """Every adapter parameter trains at the base learning rate."""
    return 1.0


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One adapter method: its layer, formulas, peft mapping and optimizer hook."""

    name: str
    """The method's name in ``AdapterConfig.method`` and ``--method`` (lower case)."""
    summary: str
    """One line for tables and help: the update and the paper."""
    layer: type[nn.Module]
    """Built as ``layer(base, rank=, alpha=, dropout=, use_rslora=, base_quantization=)``."""
    rank_stabilized: bool = False
    """Scale the update by α/√r (rsLoRA) instead of α/r."""
    trainable: Callable[[int, int, int], int] = _low_rank
    """Trainable parameters of one adapted (d_in → d_out) layer at rank r."""
    saved_elements: Callable[[int, int], int] = _low_rank_saved
    """Elements per token the adapter path saves for backward, given (d_out, r)."""
    peft_keys: Mapping[str, Any] = field(default_factory=dict)
    """peft LoraConfig fields that identify the variant, e.g. ``{"use_dora": True}``; a field
    left out must be false in the file."""
    parameter_keys: Mapping[str, str] = field(
        default_factory=lambda: {"lora_a": "lora_A.weight", "lora_b": "lora_B.weight"}
    )
    """Layer attribute → peft's key suffix in ``adapter_model.safetensors``."""
    lr_scale: Callable[[str, AdapterConfig], float] = _unit_lr
    """(layer attribute, config) ↦ multiple of the base learning rate for that parameter."""

    def build(self, base: nn.Linear, config: AdapterConfig) -> nn.Module:
        """Return the adapter layer for ``base``, remembering ``config`` as ``adapter_config``."""
        layer = self.layer(
            base,
            rank=config.rank,
            alpha=config.alpha,
            dropout=config.dropout,
            use_rslora=self.rank_stabilized,
            base_quantization=config.base_quantization,
        )
        layer.adapter_config = config
        return layer


_VARIANTS: dict[str, Variant] = {}
VARIANTS: Mapping[str, Variant] = MappingProxyType(_VARIANTS)
"""Variant name → ``Variant``, in registration order (read-only; add with ``register``)."""

PEFT_FLAGS = ("use_dora", "use_rslora")
"""peft LoraConfig flags that tell variants apart; each variant's ``peft_keys`` sets them."""


def register(variant: Variant) -> Variant:
    """Add ``variant`` to ``VARIANTS`` and return it.

    Raises:
        ValueError: the name is taken, is not lower case, or would clash with a run method.
    """
    name = variant.name
    if name in _VARIANTS or name == FULL or not name.isidentifier() or name != name.lower():
        raise ValueError(
            f"Variant.name {name!r} must be a new lower-case identifier other than {FULL!r} "
            f"(registered: {list(_VARIANTS)}); pick another name"
        )
    _VARIANTS[name] = variant
    return variant


register(Variant(name="lora", summary="W₀x + (α/r)·BAx (arXiv 2106.09685)", layer=LoRALinear))
register(
    Variant(
        name="dora",
        summary="m ⊙ (W₀ + (α/r)BA)x / ‖W₀ + (α/r)BA‖ + b (arXiv 2402.09353)",
        layer=DoRALinear,
        trainable=lambda d_in, d_out, rank: rank * (d_in + d_out) + d_out,  # + magnitude m
        saved_elements=lambda d_out, rank: rank + d_out,  # + the direction before rescaling
        peft_keys={"use_dora": True},
        parameter_keys={
            "lora_a": "lora_A.weight",
            "lora_b": "lora_B.weight",
            "magnitude": "lora_magnitude_vector",
        },
    )
)
register(
    Variant(
        name="rslora",
        summary="W₀x + (α/√r)·BAx, rank-stabilized scale (arXiv 2312.03732)",
        layer=LoRALinear,
        rank_stabilized=True,
        peft_keys={"use_rslora": True},
    )
)
register(
    Variant(
        name="loraplus",
        summary="LoRA with B's learning rate × loraplus_lr_ratio (arXiv 2402.12354)",
        layer=LoRALinear,
        lr_scale=loraplus_lr_scale,
    )
)


def variant(name: str) -> Variant:
    """Return the registered variant ``name``.

    Raises:
        ValueError: no variant has that name.
    """
    if name not in VARIANTS:
        raise ValueError(f"adapter method must be one of {list(VARIANTS)} (got {name!r})")
    return VARIANTS[name]


def peft_variant(data: Mapping[str, Any]) -> Variant | None:
    """Return the first variant whose ``peft_keys`` match a peft config's flags, else None.

    A LoRA+ adapter is a plain LoRA adapter on disk (its difference is in training), so it
    reads back as ``lora``.
    """
    flags = {flag: bool(data.get(flag, False)) for flag in PEFT_FLAGS}
    for entry in VARIANTS.values():
        if all(flags[flag] == bool(entry.peft_keys.get(flag, False)) for flag in PEFT_FLAGS):
            return entry
    return None


def lora_update_variants() -> tuple[str, ...]:
    """Return the variants whose layer and optimizer are plain LoRA's (only s may differ).

    These are what the multi-adapter and QAT layers, which stack or fake-quantize a LoRA
    update, can train: ``("lora", "rslora")`` with the built-in registry.
    """
    lora = VARIANTS["lora"]
    return tuple(
        name
        for name, entry in VARIANTS.items()
        if entry.layer is lora.layer and entry.lr_scale is lora.lr_scale
    )


def run_methods() -> tuple[str, ...]:
    """Return every run method: the variants, ``q``+variant (NF4 base) for each, and ``full``."""
    return (*VARIANTS, *(QUANTIZED_PREFIX + name for name in VARIANTS), FULL)


def split_method(method: str) -> tuple[str, str] | None:
    """Return (variant, base quantization) for a run method, None for ``full``.

    Raises:
        ValueError: ``method`` is not one of ``run_methods()``.

    Example:
        >>> split_method("qlora"), split_method("dora"), split_method("full")
        (('lora', 'nf4'), ('dora', 'none'), None)
    """
    if method == FULL:
        return None
    if method in VARIANTS:
        return method, "none"
    base = method.removeprefix(QUANTIZED_PREFIX)
    if method.startswith(QUANTIZED_PREFIX) and base in VARIANTS:
        return base, "nf4"
    raise ValueError(f"method must be one of {list(run_methods())} (got {method!r})")


def method_of(config: AdapterConfig | None) -> str:
    """Return the run method of an adapter config (``full`` for None); inverse of ``split_method``.

    Example:
        >>> from coursekit.adapters.config import AdapterConfig
        >>> method_of(AdapterConfig(method="lora", base_quantization="nf4"))
        'qlora'
    """
    if config is None:
        return FULL
    quantized = config.base_quantization == "nf4"
    return QUANTIZED_PREFIX + config.method if quantized else config.method
