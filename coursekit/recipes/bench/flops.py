"""The physical limit of ``coursekit bench``: model FLOPs per token and the matmul peak.

An engine's achieved FLOP/s is the model FLOPs of every token position it processed divided
by its training seconds; the fraction of the machine's measured ``torch.mm`` peak at the
model's own matmul shapes (fp32 on the CPU; the run's dtype on a GPU, ``coursekit bench
--gpu``) says how far it is from what the hardware can do (PaLM's "model FLOPs
utilization", Chowdhery et al. 2022, Appendix B).

Legend: L layers, d hidden size, h query heads, n_kv key/value heads, d_h head dimension,
f intermediate (MLP) size, V vocabulary, s sequence length.
"""

from __future__ import annotations

import time
from typing import Any

import torch


def matmul_shapes(config: Any) -> list[tuple[int, int, int]]:
    """Return (in, out, count) of the model's weight matmuls: per-layer ones × L, the LM head.

    Args:
        config: a ``Qwen2Config`` (or anything with its size fields).

    Example:
        >>> from coursekit.tiny import tiny_qwen2_config
        >>> matmul_shapes(tiny_qwen2_config())[:2]
        [(64, 64, 4), (64, 32, 4)]
    """
    d, f, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    d_h = getattr(config, "head_dim", None) or d // config.num_attention_heads
    q, kv = config.num_attention_heads * d_h, config.num_key_value_heads * d_h
    shapes = [(d, q, L), (d, kv, 2 * L), (q, d, L), (d, f, 2 * L), (f, d, L)]
    merged: dict[tuple[int, int], int] = {}
    for k, n, count in shapes:  # q and o can share a shape: count it once, twice as often
        merged[(k, n)] = merged.get((k, n), 0) + count
    return [(k, n, c) for (k, n), c in merged.items()] + [(d, config.vocab_size, 1)]


def matmul_parameters(config: Any) -> int:
    """Return N_matmul = Σ in·out over the weight matmuls (the LM head included, embedding not).

    Example:
        >>> from coursekit.tiny import tiny_qwen2_config
        >>> matmul_parameters(tiny_qwen2_config())
        9797632
    """
    return sum(k * n * count for k, n, count in matmul_shapes(config))


def train_flops_per_token(config: Any, seq_len: int) -> int:
    """Return the forward + backward model FLOPs of one token: 6·N_matmul + 12·L·h·d_h·s.

    A weight matmul costs 2 FLOPs per weight per token forward and twice that backward
    (input and weight gradients): 6·N_matmul. Attention's two products, QKᵀ and the weighted
    sum of V, cost 2·s·(h·d_h) each per layer per token forward, 2·2·s·(h·d_h), and ×3 with
    the backward pass: 12·L·h·d_h·s (PaLM's 6N + 12·L·H·Q·T). The convention counts the full
    model whatever an engine skips: a frozen base weight needs no weight gradient, the
    causal mask halves the useful attention, coursekit runs the LM head on targets only, and
    a packed row attends within its samples; none of it changes the count. Norms, softmax,
    activations and the embedding lookup are left out (a few percent at most).

    Args:
        config: a ``Qwen2Config``.
        seq_len: s, the length of the row the token sits in.

    Example:
        >>> from coursekit.tiny import tiny_qwen2_config
        >>> train_flops_per_token(tiny_qwen2_config(), 256)
        59179008
    """
    if seq_len < 1:
        raise ValueError(f"train_flops_per_token seq_len must be >= 1 (got {seq_len})")
    d = config.hidden_size
    d_h = getattr(config, "head_dim", None) or d // config.num_attention_heads
    attention = 12 * config.num_hidden_layers * config.num_attention_heads * d_h * seq_len
    return 6 * matmul_parameters(config) + attention


def matmul_peak(
    config: Any, tokens: int, *, min_seconds: float = 0.25, max_repeats: int = 1000,
    device: str = "cpu", dtype: torch.dtype = torch.float32,
) -> dict[str, Any]:  # fmt: skip
    """Measure ``torch.mm`` FLOP/s at each weight shape with ``tokens`` rows; the best.

    Each shape (tokens × in) @ (in × out) runs once to warm up, then repeatedly until
    ``min_seconds`` have passed (or ``max_repeats`` runs); its rate is 2·tokens·in·out per
    run over the mean time. The peak is the best shape's rate, measured on the threads torch
    has now (the caller sets them). On CUDA the device is synchronized after the warm-up and
    after the last run, so the time is the kernels', not their launches'.

    Args:
        config: a ``Qwen2Config``: its matmul shapes are the ones probed.
        tokens: rows of the left operand (micro-batch × sequence length of the benchmark).
        min_seconds: time spent per shape at least.
        max_repeats: runs per shape at most.
        device: where the operands live (``cpu``, ``cuda``).
        dtype: the operands' dtype (fp32 by default; ``torch.bfloat16`` for a GPU's bf16 peak).

    Returns:
        ``peak_flops`` (FLOP/s), ``threads`` and ``shapes``: [tokens, in, out, FLOP/s] each.

    Example:
        >>> from coursekit.tiny import tiny_qwen2_config
        >>> matmul_peak(tiny_qwen2_config(), 64, min_seconds=0.01)["peak_flops"] > 0
        True
    """
    if tokens < 1:
        raise ValueError(f"matmul_peak tokens must be >= 1 (got {tokens})")
    generator = torch.Generator().manual_seed(0)
    cuda = torch.device(device).type == "cuda"
    sync = torch.cuda.synchronize if cuda else lambda: None
    rates = []
    for k, n, _ in matmul_shapes(config):
        a = torch.randn(tokens, k, generator=generator).to(device, dtype)
        b = torch.randn(k, n, generator=generator).to(device, dtype)
        torch.mm(a, b)  # warm-up: allocation, thread pool, kernel selection
        sync()
        runs, started = 0, time.perf_counter()
        while runs < max_repeats and (runs == 0 or time.perf_counter() - started < min_seconds):
            torch.mm(a, b)
            runs += 1
        sync()
        seconds = (time.perf_counter() - started) / runs
        rates.append([tokens, k, n, 2 * tokens * k * n / seconds])
    return {
        "peak_flops": max(rate[3] for rate in rates),
        "threads": torch.get_num_threads(),
        "shapes": rates,
    }


def count_model_flops(model: torch.nn.Module, seq_len: int) -> dict[str, int]:
    """Count the positions and model FLOPs of each training forward of ``model``'s Qwen2 body.

    A forward pre-hook on the ``Qwen2Model`` inside ``model`` (bare, adapted or wrapped by
    peft) adds b·s positions and b·s·``train_flops_per_token(config, min(s, seq_len))``
    FLOPs for each (b, s) batch it sees in training mode, padding included (the machine
    computes it); evaluation forwards are not counted. The cap keeps a padding-free batch,
    all rows flattened into one (1, b·s) sequence, at the attention cost of its rows.

    Args:
        model: a Qwen2 causal LM, possibly adapted or wrapped.
        seq_len: the benchmark's longest sequence (the attention term's cap).

    Returns:
        The live counter, ``{"positions": ..., "model_flops": ...}``, updated in place.

    Example:
        >>> counter = count_model_flops(model, seq_len=384)  # doctest: +SKIP
        >>> trainer.train(); counter["model_flops"]  # doctest: +SKIP
    """
    body = next(m for m in model.modules() if type(m).__name__ == "Qwen2Model")
    counter = {"positions": 0, "model_flops": 0}

    def count(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if not module.training:
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        b, s = ids.shape[:2] if ids is not None else kwargs["inputs_embeds"].shape[:2]
        counter["positions"] += b * s
        counter["model_flops"] += b * s * train_flops_per_token(module.config, min(s, seq_len))

    body.register_forward_pre_hook(count, with_kwargs=True)
    return counter
