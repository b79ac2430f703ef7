"""Low-rank adapters for Qwen2: the variant registry, model surgery, peft-format I/O, counting.

Example:
    >>> from coursekit.adapters import AdapterConfig, apply, save_adapter
    >>> config = AdapterConfig(method="dora", rank=16, alpha=32, targets="all-linear")
    >>> apply(model, config)  # doctest: +SKIP
    >>> save_adapter(model, "runs/adapter")  # doctest: +SKIP

Guide: docs/adapters.md.
"""

from coursekit.adapters.config import KNOWN_TARGETS, TARGET_PRESETS, AdapterConfig, resolve_targets
from coursekit.adapters.count import count_trainable, projection_shapes
from coursekit.adapters.dora import DoRALinear
from coursekit.adapters.inject import (
    AdapterRankWarning,
    adapter_modules,
    apply,
    merge,
    optimizer_groups,
    replace_linears,
    trainable_count,
    trainable_parameters,
    unmerge,
)
from coursekit.adapters.lora import LoRALinear
from coursekit.adapters.lowrank import init_lora_, lora_delta, scale
from coursekit.adapters.multi import (
    MultiLoRALinear,
    adapter_indices,
    apply_multi,
    extract_adapter,
    load_one_adapter,
    multi_adapter_loss,
    save_one_adapter,
)
from coursekit.adapters.nf4 import NF4Tensor, bits_per_parameter
from coursekit.adapters.peft_format import load_adapter, read_adapter, save_adapter
from coursekit.adapters.qat import QATLoRALinear, apply_qat, merge_qat
from coursekit.adapters.variants import (
    VARIANTS,
    Variant,
    method_of,
    register,
    run_methods,
    split_method,
)

__all__ = [
    "KNOWN_TARGETS",
    "TARGET_PRESETS",
    "VARIANTS",
    "AdapterConfig",
    "AdapterRankWarning",
    "DoRALinear",
    "LoRALinear",
    "MultiLoRALinear",
    "NF4Tensor",
    "QATLoRALinear",
    "Variant",
    "adapter_indices",
    "adapter_modules",
    "apply",
    "apply_multi",
    "apply_qat",
    "bits_per_parameter",
    "count_trainable",
    "extract_adapter",
    "init_lora_",
    "load_adapter",
    "load_one_adapter",
    "lora_delta",
    "merge",
    "merge_qat",
    "method_of",
    "multi_adapter_loss",
    "optimizer_groups",
    "projection_shapes",
    "read_adapter",
    "register",
    "replace_linears",
    "resolve_targets",
    "run_methods",
    "save_adapter",
    "save_one_adapter",
    "scale",
    "split_method",
    "trainable_count",
    "trainable_parameters",
    "unmerge",
]
