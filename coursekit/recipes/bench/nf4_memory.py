"""NF4 storage of a Qwen2 model's linear weights vs bf16: bytes and bits per parameter.

A random Qwen2 with Qwen2.5-0.5B's layer shapes (hidden 896, intermediate 4864, 14 query
heads and 2 KV heads of width 64; Qwen/Qwen2.5-0.5B config.json) but only a few layers; every
projection weight is stored as ``NF4Tensor`` and compared with its bf16 bytes. The expected
ratio is bits_per_parameter() / 16 = 4.127 / 16 ≈ 0.258 (QLoRA §3).

Used by ``benchmarks/nf4_memory.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from coursekit.adapters.config import KNOWN_TARGETS
from coursekit.adapters.nf4 import NF4Tensor, bits_per_parameter


def qwen2_half_billion_shapes(layers: int) -> Qwen2Config:
    """Qwen2.5-0.5B's dimensions (its config.json) with ``layers`` decoder layers."""
    return Qwen2Config(
        hidden_size=896,
        intermediate_size=4864,
        num_attention_heads=14,
        num_key_value_heads=2,
        num_hidden_layers=layers,
        vocab_size=1024,  # the embedding is not a target; keep it small
        tie_word_embeddings=True,
    )


def bf16_model(config: Qwen2Config) -> Qwen2ForCausalLM:
    """Return a random ``Qwen2ForCausalLM`` of ``config`` (seed 0) in bf16."""
    torch.manual_seed(0)
    return Qwen2ForCausalLM(config).to(torch.bfloat16)


@dataclass(frozen=True, kw_only=True)
class NF4Storage:
    """Bytes of the model's projection weights in bf16 and as NF4."""

    parameters: int
    """Weights of the projections (q/k/v/o/gate/up/down) in every layer."""
    bf16_bytes: int
    """Their bytes as stored (bf16: 2 per weight)."""
    nf4_bytes: int
    """Their bytes as ``NF4Tensor`` (codes, scales, and second-level constants)."""
    seconds: float
    """Time to quantize them."""
    double_quant: bool
    """Whether the block scales are themselves quantized."""

    @property
    def bits_per_parameter(self) -> float:
        """Measured bits per weight: 8 · nf4_bytes / parameters."""
        return 8 * self.nf4_bytes / self.parameters

    @property
    def ratio(self) -> float:
        """nf4_bytes / bf16_bytes."""
        return self.nf4_bytes / self.bf16_bytes


def measure(model: torch.nn.Module, *, double_quant: bool = True) -> NF4Storage:
    """Quantize every projection weight of ``model`` to NF4 and count bytes (model unchanged)."""
    bf16_bytes = nf4_bytes = parameters = 0
    start = time.perf_counter()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in KNOWN_TARGETS:
            stored = NF4Tensor.from_float(module.weight, double_quant=double_quant)
            bf16_bytes += module.weight.numel() * module.weight.element_size()
            nf4_bytes += stored.nbytes
            parameters += module.weight.numel()
    return NF4Storage(parameters=parameters, bf16_bytes=bf16_bytes, nf4_bytes=nf4_bytes,
                      seconds=time.perf_counter() - start, double_quant=double_quant)  # fmt: skip


def format_report(storage: NF4Storage, *, layers: int) -> str:
    """Return sizes, measured vs formula bits per parameter and ratio, and the time."""
    expected = bits_per_parameter(double_quant=storage.double_quant)
    return "\n".join([
        f"linear weights: {storage.parameters / 1e6:.1f} M parameters in {layers} layers",
        f"bf16: {storage.bf16_bytes / 2**20:.2f} MiB   NF4: {storage.nf4_bytes / 2**20:.2f} MiB",
        f"measured bits/parameter: {storage.bits_per_parameter:.4f} (formula {expected:.4f})",
        f"NF4 / bf16 ratio: {storage.ratio:.4f} (formula {expected / 16:.4f})",
        f"quantization time: {storage.seconds:.2f} s on {torch.get_num_threads()} threads",
    ])  # fmt: skip
