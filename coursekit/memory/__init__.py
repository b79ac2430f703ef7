"""Training memory of Qwen2 fine-tuning: estimate it, measure it, plan under a GPU budget.

Guide: docs/memory.md. Used in notebooks/phase2_analysis.ipynb (memory and rank trade-offs).

Example:
    >>> from coursekit.memory import estimate, plan  # doctest: +SKIP
    >>> qwen = preset_config("qwen2.5-coder-0.5b")  # doctest: +SKIP
    >>> estimate(qwen, AdapterConfig(rank=16), TrainConfig()).total_bytes  # doctest: +SKIP
    >>> plan(8 * 2**30, preset_config("qwen2.5-coder-7b")).describe()  # doctest: +SKIP
"""

from coursekit.memory.estimate import OVERHEAD, MemoryBreakdown, Overhead, estimate
from coursekit.memory.measure import Measurement, measure
from coursekit.memory.planner import RANKS, DoesNotFit, Plan, best_rank, plan

__all__ = [
    "OVERHEAD",
    "RANKS",
    "DoesNotFit",
    "Measurement",
    "MemoryBreakdown",
    "Overhead",
    "Plan",
    "best_rank",
    "estimate",
    "measure",
    "plan",
]
