"""NF4 storage of a Qwen2 model's linear weights vs bf16: bytes and bits per parameter.

Builds a random Qwen2 with Qwen2.5-0.5B's layer shapes (hidden 896, intermediate 4864,
14 query heads and 2 KV heads of width 64; Qwen/Qwen2.5-0.5B config.json) but only a few
layers, stores every projection weight as ``NF4Tensor`` and prints the ratio to bf16. The
expected ratio is bits_per_parameter() / 16 = 4.127 / 16 ≈ 0.258 (QLoRA §3).

Run: .venv/bin/python benchmarks/nf4_memory.py [--layers 2] [--no-double-quant]
"""

from __future__ import annotations

import argparse
import time

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--no-double-quant", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(qwen2_half_billion_shapes(args.layers)).to(torch.bfloat16)
    bf16_bytes = nf4_bytes = parameters = 0
    start = time.perf_counter()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in KNOWN_TARGETS:
            stored = NF4Tensor.from_float(module.weight, double_quant=not args.no_double_quant)
            bf16_bytes += module.weight.numel() * module.weight.element_size()
            nf4_bytes += stored.nbytes
            parameters += module.weight.numel()
    seconds = time.perf_counter() - start
    expected = bits_per_parameter(double_quant=not args.no_double_quant)
    print(f"linear weights: {parameters / 1e6:.1f} M parameters in {args.layers} layers")
    print(f"bf16: {bf16_bytes / 2**20:.2f} MiB   NF4: {nf4_bytes / 2**20:.2f} MiB")
    print(f"measured bits/parameter: {8 * nf4_bytes / parameters:.4f} (formula {expected:.4f})")
    print(f"NF4 / bf16 ratio: {nf4_bytes / bf16_bytes:.4f} (formula {expected / 16:.4f})")
    print(f"quantization time: {seconds:.2f} s on {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
