"""Count an adapter's trainable parameters from the model config alone, without building it.

A rank-r adapter on a (d_out, d_in) linear layer trains A (r, d_in) and B (d_out, r), that is
r·(d_in + d_out) numbers; DoRA adds the magnitude vector m (d_out,). Each variant's formula is
its ``Variant.trainable`` in ``coursekit.adapters.variants``. The projection shapes of a
Qwen2 decoder layer (transformers' ``modeling_qwen2.py``), with grouped-query attention
(arXiv 2305.13245) giving k and v fewer output features:

=========  ===========  ===============================
module     d_in         d_out
=========  ===========  ===============================
q_proj     hidden       heads · head_dim
k_proj     hidden       kv_heads · head_dim
v_proj     hidden       kv_heads · head_dim
o_proj     heads·hd     hidden
gate_proj  hidden       intermediate
up_proj    hidden       intermediate
down_proj  intermediate hidden
=========  ===========  ===============================

head_dim = hidden / heads unless the config sets ``head_dim``. For Qwen2.5-Coder-0.5B
(config.json: hidden 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864) at r = 16:
``"qv"`` 1,081,344; ``"attention"`` 2,162,688; ``"all-linear"`` 8,798,208 (LoRA).

Guide: docs/adapters.md. Used in notebooks/phase2_analysis.ipynb (LoRA configuration and
targeting) and by the Phase 3 enhancements (docs/course.md).
"""

from __future__ import annotations

from typing import Any

from coursekit.adapters.config import AdapterConfig
from coursekit.adapters.variants import VARIANTS


def projection_shapes(model_config: Any) -> dict[str, tuple[int, int]]:
    """Return {module name: (d_in, d_out)} for the seven projections of one Qwen2 layer.

    Args:
        model_config: a ``transformers.Qwen2Config`` (or anything with its attributes).
    """
    hidden = model_config.hidden_size
    heads, kv_heads = model_config.num_attention_heads, model_config.num_key_value_heads
    head_dim = getattr(model_config, "head_dim", None) or hidden // heads
    intermediate = model_config.intermediate_size
    return {
        "q_proj": (hidden, heads * head_dim),
        "k_proj": (hidden, kv_heads * head_dim),
        "v_proj": (hidden, kv_heads * head_dim),
        "o_proj": (heads * head_dim, hidden),
        "gate_proj": (hidden, intermediate),
        "up_proj": (hidden, intermediate),
        "down_proj": (intermediate, hidden),
    }


def count_trainable(model_config: Any, adapter_config: AdapterConfig) -> int:
    """Return Σ over adapted layers and targets of the variant's count, r·(d_in + d_out) for LoRA.

    Equals ``trainable_count(apply(Qwen2ForCausalLM(model_config), adapter_config))``
    (tests/adapters/test_count.py checks it) but needs no weights.

    Args:
        model_config: a ``transformers.Qwen2Config`` (or anything with its attributes).
        adapter_config: the adapter to count.

    Raises:
        ValueError: ``adapter_config.layers`` names a layer the model does not have.

    Example:
        >>> from transformers import Qwen2Config  # doctest: +SKIP
        >>> qwen = Qwen2Config(hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
        ...                    num_key_value_heads=2, intermediate_size=4864)  # doctest: +SKIP
        >>> count_trainable(qwen, AdapterConfig(rank=16, targets="qv"))  # doctest: +SKIP
        1081344
    """
    num_layers = model_config.num_hidden_layers
    layers = adapter_config.layers if adapter_config.layers is not None else range(num_layers)
    outside = sorted(i for i in layers if i >= num_layers)
    if outside:
        raise ValueError(
            f"AdapterConfig.layers names layers {outside} that the model does not have (got "
            f"{adapter_config.layers!r}); use indices below num_hidden_layers={num_layers}"
        )
    shapes = projection_shapes(model_config)
    trainable = VARIANTS[adapter_config.method].trainable
    per_layer = sum(
        trainable(*shapes[name], adapter_config.rank) for name in adapter_config.target_names
    )
    return per_layer * len(layers)
