"""Activation accounting of one Qwen2 decoder layer: the bytes autograd saves, per token.

What each half of a decoder layer keeps for backward, read off transformers'
``modeling_qwen2.py`` (``attention_saved_bytes``, ``mlp_saved_bytes``), the transients of its
backward pass (``workspace_bytes``), which layers save anything at all (``per_layer_saved_bytes``)
and, for QLoRA, the moment an NF4 weight is dequantized (``dequantize_bytes``). Every function
is pure arithmetic on a ``transformers.Qwen2Config``; ``coursekit.memory.estimate`` sums them
into the phases of a training step.

Shape legend: b micro-batch, s sequence length, d hidden size, q = n_h·h_d query width,
k = n_kv·h_d key/value width, f SwiGLU intermediate size, r rank, a bytes per activation
element (4 fp32, 2 bf16/fp16).

Guide: docs/memory.md ("Saved per layer, per token").
"""

from __future__ import annotations

from typing import Any, Literal

from coursekit.adapters import KNOWN_TARGETS, VARIANTS, AdapterConfig, projection_shapes

Attention = Literal["sdpa", "eager"]
ATTENTIONS: tuple[str, ...] = ("sdpa", "eager")

DEQUANTIZE_BYTES = 9
"""Peak bytes per entry while ``NF4Tensor.dequantize`` runs: the unpacked uint8 codes (1), their
int32 indices (4) and the fp32 values q[c]·absmax (4); the cast to bf16 (2) comes after the
indices are freed (``coursekit.adapters.nf4.dequantize_nf4``)."""


def _adapter_bytes(adapter: AdapterConfig | None, names: tuple[str, ...], shapes: dict) -> int:
    """Elements per token the adapters on ``names`` save (``Variant.saved_elements``)."""
    if adapter is None:
        return 0
    saved = VARIANTS[adapter.method].saved_elements
    return sum(saved(shapes[n][1], adapter.rank) for n in names if n in adapter.target_names)


def attention_saved_bytes(
    model_config: Any,
    trainable: frozenset[str],
    adapter: AdapterConfig | None,
    *,
    a: int,
    attention: Attention,
    seq_len: int,
) -> int:
    """Return bytes per token the attention half of a layer saves: x, norm, q/k/v, scores.

    A linear layer saves its input only for its weight's gradient, so the norm's output is
    kept only if q, k or v train; RMSNorm keeps its fp32 input (a copy in bf16) and, if its
    weight trains, the normalized tensor. SDPA saves q, k, v, its output and a logsumexp per
    head; eager attention saves q, k and v repeated to n_h heads, the (n_h, s) softmax per
    token (fp32, plus its cast in bf16) and, for a trainable o_proj, its contiguous input.
    """
    shapes = projection_shapes(model_config)
    d, heads = model_config.hidden_size, model_config.num_attention_heads
    q, kv = shapes["q_proj"][1], shapes["k_proj"][1]
    norm = (4 * d if a != 4 else 0) + 4 + d * a * ("norm" in trainable)  # + rsqrt (b, s, 1)
    elements = d + d * any(name in trainable for name in ("q_proj", "k_proj", "v_proj"))
    if attention == "eager":
        kv_saved = q if kv < q else kv  # repeat_kv copies k and v to n_h heads
        elements += q + 2 * kv_saved + q * ("o_proj" in trainable)
        scores = heads * seq_len * (4 + (a if a != 4 else 0))
    else:
        elements += 2 * q + 2 * kv
        scores = heads * 4  # logsumexp
    attention_names = ("q_proj", "k_proj", "v_proj", "o_proj")
    return (elements + _adapter_bytes(adapter, attention_names, shapes)) * a + norm + scores


def mlp_saved_bytes(
    model_config: Any, trainable: frozenset[str], adapter: AdapterConfig | None, *, a: int
) -> int:
    """Return bytes per token the MLP half of a layer saves: residual, norm, 3f (+ f) of SwiGLU.

    The mid-layer residual (d), RMSNorm as in ``attention_saved_bytes``, the norm's output if
    gate or up train, gate, silu(gate) and up (3f) and, for a trainable down_proj, their
    product (f), plus the adapters' saved inputs.
    """
    shapes = projection_shapes(model_config)
    d, ff = model_config.hidden_size, model_config.intermediate_size
    norm = (4 * d if a != 4 else 0) + 4 + d * a * ("norm" in trainable)
    elements = d + d * any(name in trainable for name in ("gate_proj", "up_proj"))
    elements += 3 * ff + ff * ("down_proj" in trainable)
    mlp_names = ("gate_proj", "up_proj", "down_proj")
    return (elements + _adapter_bytes(adapter, mlp_names, shapes)) * a + norm


def layer_saved_bytes(
    model_config: Any,
    trainable: frozenset[str],
    adapter: AdapterConfig | None,
    *,
    a: int,
    attention: Attention,
    seq_len: int,
) -> int:
    """Return bytes per token one decoder layer saves for backward (``modeling_qwen2.py``).

    The sum of ``attention_saved_bytes`` and ``mlp_saved_bytes``.

    Args:
        model_config: a Qwen2Config.
        trainable: modules whose weights train in this layer (projection names, ``"norm"``).
        adapter: the adapter (for its rank and method), or None for a full fine-tune.
        a: bytes per activation element.
        attention: ``"sdpa"`` or ``"eager"``.
        seq_len: s (eager attention stores s scores per head per token).
    """
    half = attention_saved_bytes(
        model_config, trainable, adapter, a=a, attention=attention, seq_len=seq_len
    )
    return half + mlp_saved_bytes(model_config, trainable, adapter, a=a)


def trainable_in(layer: int, adapter: AdapterConfig | None) -> frozenset[str]:
    """Names of what trains in decoder layer ``layer`` (projections, and ``"norm"`` if full)."""
    if adapter is None:
        return frozenset((*KNOWN_TARGETS, "norm"))
    adapted = adapter.layers is None or layer in adapter.layers
    return frozenset(adapter.target_names if adapted else ())


def is_adapted(layer: int, adapter: AdapterConfig | None) -> bool:
    """Whether decoder layer ``layer`` carries adapters (every layer for a full fine-tune)."""
    return adapter is None or adapter.layers is None or layer in adapter.layers


def workspace_bytes(
    model_config: Any,
    trainable: frozenset[str],
    adapter: AdapterConfig | None,
    *,
    a: int,
    attention: Attention,
    seq_len: int,
    checkpointing: bool = False,
) -> int:
    """Return per-token bytes of a layer's backward transients: max((3f − f·δ + d)·a, eager).

    The MLP backward sums two gradient contributions to the SwiGLU product (the frozen
    down_proj's and its adapter's) out of place, 3f, while the gradient of the layer's output
    (d) waits; when down_proj trains (δ = 1) the product it saved is already freed. Eager
    attention's backward holds the softmax gradient pair (2·n_h·s) and d, but by then the
    MLP half's saved tensors (``mlp_saved_bytes``) are freed, except under gradient
    checkpointing, where the measured peak shows the recomputed layer's tensors still alive.
    Checked against the allocator trace in ``coursekit.recipes.memory_validate``.
    """
    d, ff = model_config.hidden_size, model_config.intermediate_size
    mlp = (3 * ff - ff * ("down_proj" in trainable) + d) * a
    if attention != "eager":
        return mlp
    scores = (2 * model_config.num_attention_heads * seq_len + d) * a
    freed = 0 if checkpointing else mlp_saved_bytes(model_config, trainable, adapter, a=a)
    return max(mlp, scores - freed)


def per_layer_saved_bytes(
    model_config: Any, adapter: AdapterConfig | None, a: int, attention: Attention, seq_len: int
) -> list[int]:
    """Return the saved bytes per token of every layer (adapted and plain layers differ)."""
    first_adapted = next(
        (i for i in range(model_config.num_hidden_layers) if is_adapted(i, adapter)), None
    )
    sizes = {
        adapted: layer_saved_bytes(
            model_config,
            trainable_in(first_adapted, adapter) if adapted else frozenset(),
            adapter if adapted else None,
            a=a,
            attention=attention,
            seq_len=seq_len,
        )
        for adapted in (True, False)
    }
    # Layers before the first adapted one see no tensor that requires grad: they save nothing.
    return [
        0 if first_adapted is None or i < first_adapted else sizes[is_adapted(i, adapter)]
        for i in range(model_config.num_hidden_layers)
    ]


def dequantize_bytes(model_config: Any, adapter: AdapterConfig | None) -> int:
    """Return DEQUANTIZE_BYTES · d_out · d_in of the largest NF4 projection (QLoRA), else 0.

    ``nf4_linear`` dequantizes an NF4 weight in forward and again in backward and keeps no
    dense copy between them, so one layer's dequantization is a transient of its phase.
    """
    if adapter is None or adapter.base_quantization != "nf4":
        return 0
    shapes = projection_shapes(model_config)
    largest = max(shapes[name][0] * shapes[name][1] for name in adapter.target_names)
    return largest * DEQUANTIZE_BYTES
