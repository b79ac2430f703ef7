"""Model surgery: put adapters into a model, freeze the rest, count, merge and unmerge.

``apply`` swaps each targeted ``nn.Linear`` for the layer of its variant (``LoRALinear``,
``DoRALinear``, ... from ``coursekit.adapters.variants``) that shares its frozen weight (no
copy), then freezes every parameter except the adapters'. The module
names do not change, so the base model's state-dict keys (``…q_proj.weight``) stay valid.

Guide: docs/adapters.md. Used in notebooks/phase2_analysis.ipynb (LoRA configuration and
targeting) and by the Phase 3 enhancements (docs/course.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from torch import nn

from coursekit.adapters.config import AdapterConfig, resolve_targets
from coursekit.adapters.variants import VARIANTS, variant
from coursekit.errors import CoursekitWarning


def replace_linears(
    model: nn.Module, names: Iterable[str], build: Callable[[nn.Module], nn.Module]
) -> nn.Module:
    """Swap each named submodule of ``model`` for ``build(old module)``; returns ``model``.

    The one module-swapping loop of coursekit: ``apply``, ``apply_multi``, ``apply_qat`` and
    ``merge_qat`` all go through it. The new module takes the old one's place under the same
    qualified name, so state-dict keys such as ``…q_proj.weight`` stay valid.
    """
    for name in list(names):
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child_name, build(getattr(parent, child_name)))
    return model


def apply(model: nn.Module, config: AdapterConfig) -> nn.Module:
    """Inject adapters into the modules ``config`` targets and freeze everything else.

    Each targeted ``nn.Linear`` becomes ``VARIANTS[config.method].build(linear, config)``;
    afterwards only the adapter parameters (``lora_a``, ``lora_b`` and DoRA's ``magnitude``)
    have ``requires_grad=True``. The model is changed in place and returned.

    Args:
        model: a Qwen2 model (``Qwen2ForCausalLM`` or ``Qwen2Model``) or any module whose
            linear layers carry Qwen2's projection names.
        config: what to adapt and how.

    Raises:
        ValueError: the targets match no ``nn.Linear`` (for instance because adapters are
            already in place) or ``config.layers`` names a layer the model does not have.

    Warns:
        AdapterRankWarning: once, when ``config.rank`` exceeds min(d_in, d_out) of an adapted
            layer (B·A cannot have a higher rank: the extra parameters add no capacity).

    Example:
        >>> apply(model, AdapterConfig(rank=16, alpha=32, targets="qv"))  # doctest: +SKIP
    """
    names = resolve_targets(config, model)
    _warn_rank_above_width(model, names, config.rank)
    model.requires_grad_(False)
    entry = variant(config.method)
    return replace_linears(model, names, lambda linear: entry.build(linear, config))


class AdapterRankWarning(CoursekitWarning):
    """The adapter rank exceeds the width of a layer it adapts."""


def _warn_rank_above_width(model: nn.Module, names: list[str], rank: int) -> None:
    """Warn once if ``rank`` > min(in_features, out_features) of a named linear layer.

    The warning names the narrowest such layer (the first of them), so the rank it suggests
    fits every adapted layer.
    """
    narrow = [
        (name, linear.in_features, linear.out_features)
        for name in names
        if rank > min((linear := model.get_submodule(name)).in_features, linear.out_features)
    ]
    if not narrow:
        return
    name, d_in, d_out = min(narrow, key=lambda layer: min(layer[1], layer[2]))
    others = f" and {len(narrow) - 1} other adapted layer(s)" if len(narrow) > 1 else ""
    warnings.warn(
        f"AdapterConfig.rank={rank} exceeds min(d_in, d_out)={min(d_in, d_out)} of {name} "
        f"({d_in} -> {d_out}){others}: B·A has rank at most {min(d_in, d_out)}, so the extra "
        f"rank only adds parameters; use a rank <= {min(d_in, d_out)}",
        AdapterRankWarning,
        stacklevel=3,
    )


def adapter_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Yield (qualified name, module) for every adapter module ``apply`` put into ``model``."""
    for name, module in model.named_modules():
        if getattr(module, "adapter_config", None) is not None:
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


def optimizer_groups(model: nn.Module) -> list[dict[str, Any]]:
    """Return ``model``'s trainable parameters as named optimizer groups with an ``lr_scale``.

    Each adapter parameter's learning-rate multiple comes from its variant's ``lr_scale`` hook
    (LoRA+ puts B at λ·η); every other trainable parameter (a full fine-tune) gets 1. Groups
    are ``{"name", "params", "lr_scale"}``, the group at scale 1 first, parameters in
    ``model.parameters()`` order; ``coursekit.train.optim.build_optimizer`` sets each group's
    lr to ``lr_scale`` × the run's learning rate.
    """
    scales: dict[int, tuple[str, float]] = {}
    for _, module in adapter_modules(model):
        config = module.adapter_config
        for attribute, parameter in module.named_parameters(recurse=False):
            scales[id(parameter)] = (attribute, VARIANTS[config.method].lr_scale(attribute, config))
    groups: dict[float, dict[str, Any]] = {1.0: {"name": "default", "params": [], "lr_scale": 1.0}}
    for parameter in (p for p in model.parameters() if p.requires_grad):
        attribute, lr_scale = scales.get(id(parameter), ("default", 1.0))
        group = groups.setdefault(lr_scale, {"name": attribute, "params": [], "lr_scale": lr_scale})
        group["params"].append(parameter)
    return [group for group in groups.values() if group["params"]]


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
