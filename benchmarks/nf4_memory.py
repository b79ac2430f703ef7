"""NF4 storage of a Qwen2 model's linear weights vs bf16: bytes and bits per parameter.

Builds a random Qwen2 with Qwen2.5-0.5B's layer shapes (hidden 896, intermediate 4864,
14 query heads and 2 KV heads of width 64; Qwen/Qwen2.5-0.5B config.json) but only a few
layers, stores every projection weight as ``NF4Tensor`` and prints the ratio to bf16. The
expected ratio is bits_per_parameter() / 16 = 4.127 / 16 ≈ 0.258 (QLoRA §3). The logic is
``coursekit.recipes.bench.nf4_memory``.

Run: .venv/bin/python benchmarks/nf4_memory.py [--layers 2] [--no-double-quant]
"""

from __future__ import annotations

import argparse

from coursekit.recipes.bench.nf4_memory import (
    bf16_model,
    format_report,
    measure,
    qwen2_half_billion_shapes,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--no-double-quant", action="store_true")
    args = parser.parse_args()
    model = bf16_model(qwen2_half_billion_shapes(args.layers))
    storage = measure(model, double_quant=not args.no_double_quant)
    print(format_report(storage, layers=args.layers))


if __name__ == "__main__":
    main()
