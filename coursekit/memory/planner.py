"""Plan a fine-tune under a GPU budget: the best configuration whose estimate fits, or why not.

The objective is lexicographic and written down so that a plan can be argued with. Among the
candidates whose ``estimate(...).total_bytes`` (peak + framework overhead) is at most the
budget, prefer, in this order:

1. the **longest sequence** (the requested ``seq_len``, then halves down to 128): truncating
   samples changes the task, so context is kept first;
2. the **method**: full fine-tuning > LoRA > QLoRA. Full updates every weight; LoRA matches it
   closely on most tasks (LoRA §7, arXiv 2106.09685); QLoRA adds NF4 quantization error and a
   dequantization per forward (QLoRA §4, arXiv 2305.14314);
3. the **largest rank** in ``RANKS`` (the rank optimizer; more capacity per adapted layer);
4. the **largest micro-batch** up to the requested one (the rest by gradient accumulation, so
   the effective batch stays the requested ``micro_batch_size × gradient_accumulation``);
5. **no gradient checkpointing** (it recomputes the forward: about a third more compute).

Candidates are visited in exactly that order and the first that fits is returned, so a larger
budget (a superset of feasible candidates) never yields a worse plan, and no plan is ever
over budget. GPU sizes are binary: an "8 GB" card has 8 GiB (2^33 bytes).

Guide: docs/memory.md. Used by ``coursekit plan`` and the Phase 2 widget explorer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit.adapters import AdapterConfig, method_of, run_methods, split_method
from coursekit.errors import CoursekitError
from coursekit.loading import LOAD_ERRORS, read_config, resolve_model
from coursekit.memory.estimate import GIB, OVERHEAD, Attention, MemoryBreakdown, Overhead, estimate
from coursekit.presets import PRESETS, preset_config
from coursekit.tiny import tiny_qwen2_config
from coursekit.train.config import TrainConfig

METHODS: tuple[str, ...] = ("full", "lora", "qlora")
"""The run methods the planner searches, in order of preference (objective item 2); any
subset of ``coursekit.adapters.run_methods()`` can be passed to ``plan``."""
RANKS: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256)
"""Ranks the rank optimizer chooses from (objective item 3 picks the largest that fits)."""
MIN_SEQ_LEN = 128
"""Shortest sequence the planner proposes before giving up."""
PLAN_TRAIN = TrainConfig(micro_batch_size=8, seq_len=512, precision="bf16")
"""Default request: 8 sequences of 512 tokens per step in bf16, AdamW."""


class DoesNotFit(CoursekitError, ValueError):
    """No configuration fits the budget; carries the minimum memory and its dominant term."""

    def __init__(self, message: str, *, minimum_bytes: int, dominant_term: str) -> None:
        super().__init__(message)
        self.minimum_bytes = minimum_bytes
        self.dominant_term = dominant_term


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A configuration that fits, with its estimate."""

    method: str
    """A run method of ``coursekit.adapters.run_methods()``: ``"full"``, ``"lora"``, ..."""
    adapter_config: AdapterConfig | None
    """The adapter (None for a full fine-tune)."""
    train_config: TrainConfig
    """Micro-batch, accumulation, sequence length, gradient checkpointing."""
    estimate: MemoryBreakdown
    """The memory estimate of this configuration."""
    budget_bytes: int
    """The budget it was planned for."""

    @property
    def score(self) -> tuple[int, int, int, int, int]:
        """The objective as a tuple; larger is better (compare plans with it)."""
        rank = 0 if self.adapter_config is None else self.adapter_config.rank
        return (
            self.train_config.seq_len,
            len(METHODS) - _preference(self.method),
            rank if self.method != "full" else RANKS[-1] + 1,
            self.train_config.micro_batch_size,
            int(not self.train_config.gradient_checkpointing),
        )

    def describe(self) -> str:
        """One line: method, rank, batch, sequence, checkpointing, memory vs budget."""
        train = self.train_config
        rank = "" if self.adapter_config is None else f" rank {self.adapter_config.rank}"
        targets = "" if self.adapter_config is None else f" on {self.adapter_config.targets}"
        return (
            f"{self.method}{rank}{targets}, micro-batch {train.micro_batch_size} × "
            f"{train.gradient_accumulation} accumulation, seq {train.seq_len}, gradient "
            f"checkpointing {'on' if train.gradient_checkpointing else 'off'}: "
            f"{self.estimate.total_bytes / GIB:.2f} GiB of {self.budget_bytes / GIB:.2f} GiB"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the plan as JSON-ready values."""
        adapter = self.adapter_config
        return {
            "method": self.method,
            "rank": None if adapter is None else adapter.rank,
            "alpha": None if adapter is None else adapter.alpha,
            "targets": None if adapter is None else adapter.targets,
            "micro_batch_size": self.train_config.micro_batch_size,
            "gradient_accumulation": self.train_config.gradient_accumulation,
            "seq_len": self.train_config.seq_len,
            "gradient_checkpointing": self.train_config.gradient_checkpointing,
            "budget_bytes": self.budget_bytes,
            "estimate": self.estimate.to_dict(),
        }


def adapter_for(
    method: str, rank: int, targets: Any, *, alpha: float | None = None
) -> AdapterConfig | None:
    """Return a run method's adapter (``coursekit.adapters.split_method``), None for ``full``.

    ``alpha`` defaults to 2·rank. Raises ``ValueError`` for a method not in
    ``run_methods()`` (and whatever ``AdapterConfig`` rejects).
    """
    parts = split_method(method)
    if parts is None:
        return None
    variant, quantization = parts
    return AdapterConfig(
        method=variant,
        rank=rank,
        alpha=2.0 * rank if alpha is None else alpha,
        targets=targets,
        base_quantization=quantization,
    )


def model_config_from(name: str) -> Any:
    """Return the Qwen2Config of a preset, ``tiny``, ``nano``/a bundled model, or a directory's."""
    if name == "tiny":
        return tiny_qwen2_config()
    if name in PRESETS:
        return preset_config(name)
    name = resolve_model(name)  # "nano" and bundled names → their directory; others unchanged
    if Path(name, "config.json").is_file():
        from transformers import AutoConfig

        read_config(name)  # a broken config.json is named here, not deep in transformers
        try:
            return AutoConfig.from_pretrained(name)
        except LOAD_ERRORS as error:
            raise CoursekitError(
                f"{Path(name, 'config.json')}: not a transformers model config "
                f"({' '.join(str(error).split())}); point --model at a Qwen2 checkpoint"
            ) from None
    raise ValueError(
        f"--model {name!r} is neither a preset nor a directory with config.json; use one of "
        f"{', '.join(PRESETS)}, 'tiny', 'nano' or a checkpoint directory"
    )


def _powers_down(start: int, floor: int) -> list[int]:
    values = [start]
    while values[-1] // 2 >= floor:
        values.append(values[-1] // 2)
    return values


def _preference(method: str) -> int:
    """Rank of a method in ``METHODS`` (other run methods after them, in the order given)."""
    return METHODS.index(method) if method in METHODS else len(METHODS)


def candidates(
    train_config: TrainConfig, methods: Sequence[str], targets: Any
) -> Iterator[tuple[str, AdapterConfig | None, TrainConfig]]:
    """Yield (method, adapter, train config) from best to worst under the objective."""
    wanted = train_config.sequences_per_step
    for seq_len in _powers_down(train_config.seq_len, min(MIN_SEQ_LEN, train_config.seq_len)):
        for method in sorted(methods, key=_preference):
            for rank in (RANKS[-1],) if method == "full" else RANKS[::-1]:
                for batch in _powers_down(train_config.micro_batch_size, 1):
                    for checkpointing in (False, True):
                        train = dataclasses.replace(
                            train_config,
                            micro_batch_size=batch,
                            gradient_accumulation=math.ceil(wanted / batch),
                            seq_len=seq_len,
                            gradient_checkpointing=checkpointing,
                        )
                        yield method, adapter_for(method, rank, targets), train


def _check(budget_bytes: float, methods: Sequence[str]) -> None:
    if isinstance(budget_bytes, bool) or not (
        isinstance(budget_bytes, int | float) and 0 < budget_bytes < math.inf
    ):
        raise ValueError(
            f"plan budget_bytes must be a finite number > 0 (got {budget_bytes!r}); pass e.g. "
            "8 * 2**30"
        )
    unknown = [m for m in methods if m not in run_methods()]
    if unknown or not methods:
        raise ValueError(
            f"plan methods must be a non-empty list of {list(run_methods())}, best first (got "
            f"{list(methods)!r})"
        )


def plan(
    budget_bytes: float,
    model_config: Any,
    *,
    train_config: TrainConfig = PLAN_TRAIN,
    methods: Sequence[str] = METHODS,
    targets: Any = "all-linear",
    attention: Attention = "sdpa",
    overhead: Overhead = OVERHEAD,
) -> Plan:
    """Return the best configuration whose ``total_bytes`` ≤ ``budget_bytes`` (module objective).

    Args:
        budget_bytes: GPU memory available, bytes (``8 * 2**30`` for an 8 GB card).
        model_config: a ``transformers.Qwen2Config``.
        train_config: the request: its micro-batch and seq_len are maxima, its effective batch
            is kept by gradient accumulation; precision and optimizer are used as given.
        methods: run methods to consider (``METHODS``' order first: full > lora > qlora).
        targets: adapter targets for LoRA and QLoRA (QLoRA §4 adapts all linear layers).
        attention: ``"sdpa"`` or ``"eager"``.
        overhead: framework overhead model (``estimate``).

    Raises:
        DoesNotFit: nothing fits; names the minimum achievable memory and its dominant term.
        ValueError: a budget that is not a finite number > 0, or an unknown method.
    """
    _check(budget_bytes, methods)
    smallest: Plan | None = None
    for method, adapter, train in candidates(train_config, methods, targets):
        breakdown = estimate(model_config, adapter, train, attention=attention, overhead=overhead)
        candidate = Plan(
            method=method,
            adapter_config=adapter,
            train_config=train,
            estimate=breakdown,
            budget_bytes=int(budget_bytes),
        )
        if breakdown.total_bytes <= budget_bytes:
            return candidate
        if smallest is None or breakdown.total_bytes < smallest.estimate.total_bytes:
            smallest = candidate
    assert smallest is not None  # candidates always yields at least one configuration
    raise _does_not_fit(smallest)


def _does_not_fit(smallest: Plan) -> DoesNotFit:
    breakdown = smallest.estimate
    term = breakdown.dominant_term
    size = dict(breakdown.live_at_peak)[term]
    return DoesNotFit(
        f"does not fit: the smallest configuration is {smallest.describe()}, dominated by "
        f"{term} ({size / GIB:.2f} GiB); use a GPU with at least "
        f"{math.ceil(breakdown.total_bytes / GIB)} GB or a smaller model",
        minimum_bytes=breakdown.total_bytes,
        dominant_term=term,
    )


def best_rank(
    budget_bytes: float,
    model_config: Any,
    adapter_config: AdapterConfig,
    train_config: TrainConfig,
    *,
    attention: Attention = "sdpa",
    overhead: Overhead = OVERHEAD,
) -> int:
    """Return the largest r in ``RANKS`` whose estimate with ``adapter_config`` fits the budget.

    Raises:
        DoesNotFit: even rank 4 does not fit.
    """
    for rank in RANKS[::-1]:  # the loop ends on the smallest rank
        adapter = dataclasses.replace(adapter_config, rank=rank)
        breakdown = estimate(
            model_config, adapter, train_config, attention=attention, overhead=overhead
        )
        if breakdown.total_bytes <= budget_bytes:
            return rank
    smallest = Plan(
        method=method_of(adapter),
        adapter_config=adapter,
        train_config=train_config,
        estimate=breakdown,
        budget_bytes=int(budget_bytes),
    )
    raise _does_not_fit(smallest)
