"""Model surgery: put adapters into a model, freeze the rest, count, merge and unmerge.

``apply`` swaps each targeted ``nn.Linear`` for a ``LoRALinear`` or ``DoRALinear`` that shares
its frozen weight (no copy), then freezes every parameter except the adapters'. The module
names do not change, so the base model's state-dict keys (``…q_proj.weight``) stay valid.

Guide: docs/adapters.md. Used in notebooks/phase2_analysis.ipynb (LoRA configuration and
targeting) and by the phase 3 enhancements (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import MappingProxyType

from torch import nn

from coursekit.adapters.config import AdapterConfig, resolve_targets
from coursekit.adapters.dora import DoRALinear
from coursekit.adapters.lora import LoRALinear

AdapterLinear = LoRALinear | DoRALinear
"""Any module that ``apply`` puts into a model."""

ADAPTER_CLASSES: MappingProxyType[str, Callable[..., AdapterLinear]] = MappingProxyType(
    {"lora": LoRALinear, "dora": DoRALinear}
)
"""``AdapterConfig.method`` → the class that implements it (read-only)."""


def build_adapter(base: nn.Linear, config: AdapterConfig) -> AdapterLinear:
    """Return the adapter module for one linear layer, as ``config.method`` selects."""
    return ADAPTER_CLASSES[config.method](
        base,
        rank=config.rank,
        alpha=config.alpha,
        dropout=config.dropout,
        use_rslora=config.use_rslora,
        base_quantization=config.base_quantization,
    )


def apply(model: nn.Module, config: AdapterConfig) -> nn.Module:
    """Inject adapters into the modules ``config`` targets and freeze everything else.

    Afterwards only the adapter parameters (``lora_a``, ``lora_b`` and DoRA's ``magnitude``)
    have ``requires_grad=True``. The model is changed in place and returned.

    Args:
        model: a Qwen2 model (``Qwen2ForCausalLM`` or ``Qwen2Model``) or any module whose
            linear layers carry Qwen2's projection names.
        config: what to adapt and how.

    Raises:
        ValueError: the targets match no ``nn.Linear`` (for instance because adapters are
            already in place) or ``config.layers`` names a layer the model does not have.

    Example:
        >>> apply(model, AdapterConfig(rank=16, alpha=32, targets="qv"))  # doctest: +SKIP
    """
    names = resolve_targets(config, model)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for name in names:
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child_name, build_adapter(getattr(parent, child_name), config))
    return model


def adapter_modules(model: nn.Module) -> Iterator[tuple[str, AdapterLinear]]:
    """Yield (qualified name, module) for every adapter module in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear | DoRALinear):
            yield name, module


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Return {qualified name: parameter} for every parameter with ``requires_grad=True``.

    Example:
        >>> sum(p.numel() for p in trainable_parameters(model).values())  # doctest: +SKIP
        1081344
    """
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def trainable_count(model: nn.Module) -> int:
    """Return the number of trainable scalars in ``model`` (compare ``count_trainable``)."""
    return sum(p.numel() for p in trainable_parameters(model).values())


def merge(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight (see ``LoRALinear.merge``); returns ``model``."""
    for _, module in adapter_modules(model):
        module.merge()
    return model


def unmerge(model: nn.Module) -> nn.Module:
    """Undo ``merge`` on every adapter module; returns ``model``."""
    for _, module in adapter_modules(model):
        module.unmerge()
    return model
