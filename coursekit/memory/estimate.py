"""Training memory from the architecture: peak = persistent + max over the phases of a step.

Every term is bytes, computed from a ``transformers.Qwen2Config`` alone (a preset, a local
``config.json``) without building weights. Shape legend: b micro-batch, s sequence length,
d hidden size, q = n_h·h_d query width, k = n_kv·h_d key/value width (grouped-query attention),
f SwiGLU intermediate size, V vocabulary, L layers, r rank, a bytes per activation element (4
for fp32, 2 for bf16/fp16), N parameters, T trainable parameters.

* **Persistent**: base weights (N·a, or 4.127 bits for NF4-stored projections, QLoRA §3),
  adapter weights (T·a, counted by ``coursekit.adapters.count_trainable``), optimizer states
  (AdamW: two fp32 moments, 8 bytes per trainable parameter; 8-bit AdamW: 2·(1 + 4/256)
  bytes, bitsandbytes' blockwise quantization with 256-value blocks; SGD: none; in bf16/fp16
  also the fp32 master copy, 4 bytes, so AdamW costs 2 + 2 + 12 = 16 bytes per trainable
  parameter as in ZeRO §3.1, arXiv 1910.02054), and the gradients too when gradient
  accumulation keeps them across micro-batches.
* **Activations**: the tensors autograd saves for backward, read off transformers'
  ``modeling_qwen2.py`` (per layer and token in ``coursekit.memory.activations``); with
  gradient checkpointing only each layer's input (d·a per token) plus one layer recomputed
  during backward.
* **Loss head**: cross-entropy upcasts logits to fp32 and ``log_softmax`` saves its (b, s, V)
  output; at the start of backward the saved output, its gradient and the gradient of the
  logits coexist: 3·b·s·V·4 bytes, large with Qwen's 151,936-token vocabulary.
* **Phases** (the peak is their maximum): *head* (all activations + loss head), *last layer*
  (all activations + one layer's backward workspace, and for QLoRA one NF4 weight being
  dequantized: ``nf4_linear`` keeps no dense copy between forward and backward), *first
  layer* (all gradients + its workspace), *embedding* (all gradients + a tied embedding's
  two dense (V, d) gradients) and *optimizer step* (all gradients + foreach AdamW's
  temporaries, one fp32 tensor per trainable parameter).

``peak_bytes`` is what an allocator counts (``torch.cuda.max_memory_allocated``, or the CPU
allocator trace of ``coursekit.memory.measure``). ``total_bytes`` adds the framework overhead
an allocator does not count (``OVERHEAD``): that is what must fit a GPU budget.

Guide: docs/memory.md. Used in notebooks/phase2_analysis.ipynb (memory and rank trade-offs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any

from coursekit.adapters import AdapterConfig, count_trainable, projection_shapes
from coursekit.adapters.nf4 import bits_per_parameter
from coursekit.memory.activations import (
    ATTENTIONS,
    Attention,
    dequantize_bytes,
    is_adapted,
    per_layer_saved_bytes,
    trainable_in,
    workspace_bytes,
)
from coursekit.train.config import TrainConfig

GIB = 2**30

PRECISION_BYTES: MappingProxyType[str, int] = MappingProxyType({"fp32": 4, "bf16": 2, "fp16": 2})
"""``TrainConfig.precision`` → bytes per weight, gradient and activation element."""

OPTIMIZER_STATE_BYTES: MappingProxyType[str, float] = MappingProxyType(
    {"adamw": 8.0, "adamw-8bit": 2 * (1 + 4 / 256), "sgd": 0.0}
)
"""Bytes of optimizer state per trainable parameter (see the module docstring)."""

STEP_WORKSPACE_BYTES: MappingProxyType[str, float] = MappingProxyType(
    {"adamw": 4.0, "adamw-8bit": 0.0, "sgd": 0.0}
)
"""Temporaries of one optimizer step per trainable parameter: ``_foreach_sqrt`` of AdamW."""


@dataclass(frozen=True, kw_only=True)
class Overhead:
    """Memory a GPU spends outside the allocator's count: context + a fragmentation share."""

    context_bytes: int = 512 * 2**20
    """CUDA context, kernels and cuBLAS workspaces (≈ 0.3-0.6 GiB under torch 2.x; not
    counted by ``max_memory_allocated``). 512 MiB is the assumption; 0 on a CPU."""
    fragmentation: float = 0.05
    """Reserved-but-unallocated share of the caching allocator, as a fraction of the peak."""

    def __post_init__(self) -> None:
        if self.context_bytes < 0:
            raise ValueError(
                f"Overhead.context_bytes must be >= 0 (got {self.context_bytes}); use 0 on a CPU"
            )
        if not 0 <= self.fragmentation < 1:
            raise ValueError(
                f"Overhead.fragmentation must be in [0, 1) (got {self.fragmentation}); use 0.05"
            )

    def bytes_for(self, peak_bytes: int) -> int:
        """Return context + fragmentation · peak."""
        return self.context_bytes + round(self.fragmentation * peak_bytes)


OVERHEAD = Overhead()
"""The documented default overhead model (one for every configuration)."""


@dataclass(frozen=True, kw_only=True)
class MemoryBreakdown:
    """Every term of a training step's memory, in bytes (see the module docstring)."""

    base_weights: int
    """Frozen (or, for a full fine-tune, all) model weights."""
    adapter_weights: int
    """LoRA/DoRA A, B (and m) matrices."""
    gradients: int
    """One gradient per trainable parameter, in the parameter's dtype."""
    optimizer_states: int
    """AdamW moments (fp32 or 8-bit) or nothing (SGD), plus the fp32 master copy in bf16/fp16."""
    activations: int
    """Tensors saved for backward at the end of the forward pass (checkpoints only with GC)."""
    logits: int
    """Peak of the loss head: 3·b·s·V·4 (fp32 log-softmax, its gradient, the logits' gradient)."""
    workspace: int
    """Transient memory of the peak phase beyond the terms above (layer backward, step)."""
    overhead: int
    """Framework overhead outside the allocator (``Overhead``)."""
    peak_phase: str
    """Phase of the peak: head, last-layer, first-layer, embedding or optimizer-step."""
    peak_bytes: int
    """What the allocator holds at the peak (compare with ``measure``)."""
    live_at_peak: tuple[tuple[str, int], ...]
    """(term, bytes) alive at the peak; they sum to ``peak_bytes``."""

    @property
    def total_bytes(self) -> int:
        """Peak plus overhead: what must fit the GPU."""
        return self.peak_bytes + self.overhead

    @property
    def dominant_term(self) -> str:
        """The largest term alive at the peak."""
        return max(self.live_at_peak, key=lambda item: item[1])[0]

    def to_dict(self) -> dict[str, Any]:
        """Return the terms, the peak and the total as plain JSON-ready values."""
        data = asdict(self)
        data["live_at_peak"] = dict(self.live_at_peak)
        data["total_bytes"] = self.total_bytes
        return data


def parameter_count(model_config: Any) -> int:
    """Return N = V·d (+ V·d untied head) + L·(q/k/v/o/MLP weights, q/k/v biases, 2 norms) + d.

    Example:
        >>> from coursekit.presets import preset_config
        >>> parameter_count(preset_config("qwen2.5-coder-0.5b"))
        494032768
    """
    shapes = projection_shapes(model_config)
    d, vocab = model_config.hidden_size, model_config.vocab_size
    per_layer = sum(d_in * d_out for d_in, d_out in shapes.values()) + 2 * d
    per_layer += sum(shapes[name][1] for name in ("q_proj", "k_proj", "v_proj"))  # biases
    head = 0 if model_config.tie_word_embeddings else vocab * d
    return vocab * d + head + model_config.num_hidden_layers * per_layer + d


def base_weight_bytes(model_config: Any, adapter: AdapterConfig | None, a: int) -> int:
    """Return N·a, with the adapted projections at 4.127 bits (NF4 + double quant) for QLoRA."""
    total = parameter_count(model_config) * a
    if adapter is None or adapter.base_quantization != "nf4":
        return total
    shapes = projection_shapes(model_config)
    quantized = sum(shapes[name][0] * shapes[name][1] for name in adapter.target_names)
    n_layers = len(adapter.layers or range(model_config.num_hidden_layers))
    nf4 = quantized * bits_per_parameter() / 8 + 4 * len(adapter.target_names)  # + fp32 offset
    return total - n_layers * (quantized * a - round(nf4))


Phase = Callable[[dict[str, int]], tuple[tuple[str, int], ...]]

PHASES: MappingProxyType[str, Phase] = MappingProxyType(
    {
        "head": lambda t: (("activations", t["activations"]), ("logits", t["logits"])),
        "last-layer": lambda t: (
            ("activations", t["layer_activations"] + t["recompute"]),
            ("gradients", t["head_gradients"]),
            ("workspace", t["last_workspace"]),
        ),
        "first-layer": lambda t: (
            ("activations", t["first_layer"]),
            ("gradients", t["gradients"]),
            ("workspace", t["first_workspace"]),
        ),
        "embedding": lambda t: (
            ("gradients", t["gradients"]),
            ("workspace", t["embedding_workspace"]),
        ),
        "optimizer-step": lambda t: (
            ("gradients", t["gradients"]),
            ("workspace", t["step_workspace"]),
        ),
    }
)
"""Phase name → what is alive in it besides the persistent terms."""


def _transient_terms(
    model_config: Any, adapter: AdapterConfig | None, train: TrainConfig, attention: Attention
) -> dict[str, int]:
    """Per-phase sizes (bytes) that are not persistent: activations, loss head, workspaces."""
    a, full = PRECISION_BYTES[train.precision], adapter is None
    tokens, d = train.micro_batch_size * train.seq_len, model_config.hidden_size
    vocab = model_config.vocab_size
    layers = per_layer_saved_bytes(model_config, adapter, a, attention, train.seq_len)
    # After the last layer: the final residual, the final RMSNorm (fp32 copy; its normalized
    # output and lm_head's input when they train) and the int64 input ids and labels.
    final = d * a + (4 * d if a != 4 else 0) + 2 * d * a * full + 16
    checkpoints = model_config.num_hidden_layers * d * a
    stored = checkpoints if train.gradient_checkpointing else sum(layers)
    head_gradient = vocab * d * a * full  # the lm_head (tied: embedding) gradient

    def workspace(layer: int) -> int:
        trainable = trainable_in(layer, adapter)
        layer_adapter = adapter if is_adapted(layer, adapter) else None
        return dequantized + tokens * workspace_bytes(
            model_config,
            trainable,
            layer_adapter,
            a=a,
            attention=attention,
            seq_len=train.seq_len,
            checkpointing=train.gradient_checkpointing,
        )

    dequantized = dequantize_bytes(model_config, adapter)

    return {
        "activations": tokens * (stored + final),
        "layer_activations": tokens * stored,
        # The recomputed layer's input is its checkpoint, already in ``stored``.
        "recompute": tokens * (max(layers) - d * a) * train.gradient_checkpointing,
        "first_layer": tokens * layers[0],
        "logits": max(3 * tokens * vocab * 4, tokens * vocab * 4 + head_gradient),
        "head_gradients": head_gradient + d * a * full,
        "last_workspace": workspace(model_config.num_hidden_layers - 1),
        "first_workspace": workspace(0),
        # Embedding backward builds a dense (V, d) gradient and adds it to the tied lm_head's
        # gradient out of place: two more (V, d) tensors for a moment.
        "embedding_workspace": 2 * vocab * d * a * (full and model_config.tie_word_embeddings),
    }


def estimate(
    model_config: Any,
    adapter_config: AdapterConfig | None,
    train_config: TrainConfig,
    *,
    attention: Attention = "sdpa",
    overhead: Overhead = OVERHEAD,
) -> MemoryBreakdown:
    """Return peak = persistent + max over phases of a training step's memory, in bytes.

    Args:
        model_config: a ``transformers.Qwen2Config`` (no weights are built).
        adapter_config: LoRA/DoRA/QLoRA (``base_quantization="nf4"``); None = full fine-tune.
        train_config: micro-batch b, seq_len s, precision, optimizer, gradient checkpointing.
        attention: ``"sdpa"`` (transformers' default) or ``"eager"`` (stores b·n_h·s² scores).
        overhead: the framework overhead model added to the peak for ``total_bytes``.

    Raises:
        ValueError: an unknown ``attention``, or adapter layers the model does not have.

    Example:
        >>> from coursekit.presets import preset_config
        >>> from coursekit.train.config import TrainConfig
        >>> e = estimate(preset_config("qwen2.5-coder-0.5b"), None, TrainConfig(precision="bf16"))
        >>> e.base_weights
        988065536
    """
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {ATTENTIONS} (got {attention!r}); pick one")
    a = PRECISION_BYTES[train_config.precision]
    trainable = (
        parameter_count(model_config)
        if adapter_config is None
        else count_trainable(model_config, adapter_config)
    )
    gradients = trainable * a
    master = 4 if a < 4 else 0  # mixed precision's fp32 master copy (ZeRO §3.1)
    optimizer = OPTIMIZER_STATE_BYTES[train_config.optimizer] + master
    persistent = {
        "base_weights": base_weight_bytes(model_config, adapter_config, a),
        "adapter_weights": 0 if adapter_config is None else trainable * a,
        "optimizer_states": round(trainable * optimizer),
    }
    accumulate = train_config.gradient_accumulation > 1
    terms = _transient_terms(model_config, adapter_config, train_config, attention)
    terms["gradients"] = 0 if accumulate else gradients
    terms["step_workspace"] = round(trainable * STEP_WORKSPACE_BYTES[train_config.optimizer])
    if accumulate:
        persistent["gradients"] = gradients
    phases = {name: phase(terms) for name, phase in PHASES.items()}
    peak_phase = max(phases, key=lambda name: sum(size for _, size in phases[name]))
    live = _merge(persistent, phases[peak_phase])
    peak = sum(size for _, size in live)
    return MemoryBreakdown(
        **{key: value for key, value in persistent.items() if key != "gradients"},
        gradients=gradients,
        activations=terms["activations"],
        logits=terms["logits"],
        workspace=dict(live).get("workspace", 0),
        overhead=overhead.bytes_for(peak),
        peak_phase=peak_phase,
        peak_bytes=peak,
        live_at_peak=live,
    )


def _merge(
    persistent: dict[str, int], phase: tuple[tuple[str, int], ...]
) -> tuple[tuple[str, int], ...]:
    """Add a phase's (term, bytes) pairs to the persistent terms, summing repeated names."""
    live = dict(persistent)
    for name, size in phase:
        live[name] = live.get(name, 0) + size
    return tuple(live.items())
