#!/usr/bin/env bash
# The prepared one-GPU benchmark (docs/gpu.md), a thin entry of python -m coursekit.recipes.bench.gpu
#
#   benchmarks/gpu.sh --output DIR [--dry-run] [--no-qlora] [--no-memory] [--steps 30] ...
#
# Writes DIR/gpu.json and DIR/gpu.md. Offline: HF_HUB_OFFLINE=1, the model is a random
# 0.5B-shaped checkpoint built from coursekit's preset. Without a CUDA device it prints one line
# and exits 0. PYTHON selects the interpreter (default: python).
set -euo pipefail
export HF_HUB_OFFLINE=1
exec "${PYTHON:-python}" -m coursekit.recipes.bench.gpu "$@"
