"""Curriculum learning: score samples by difficulty, then widen an easiest-first pool over time.

A curriculum has two parts (Bengio et al. 2009, "Curriculum Learning"; Platanios et al.
2019, "Competence-based Curriculum Learning for NMT"):

- a **difficulty** per sample: :func:`difficulty_scores` from corpus features (complexity and
  length, see :data:`COMPLEXITY_FEATURES` and :data:`LENGTH_FEATURES`), or
  :func:`difficulty_from_losses` from the model's own per-sample loss;
- a **pacing** function c(t) ∈ [c₀, 1], the fraction of the easiest-first pool available at
  step t (:data:`PACINGS`); each batch is drawn uniformly from that pool.

``"none"`` is the baseline: a seeded random permutation of the whole set per epoch.

Resume-safe: the state is the step. Every batch is a pure function of (difficulties,
settings, seed, step), drawn from a generator seeded by ``(seed, step)``, so a resumed run
only needs the step number to continue exactly where it stopped.

Example:
    >>> sampler = CurriculumSampler(difficulties=[3.0, 1.0, 2.0, 0.5], pacing="linear",
    ...     total_steps=10, batch_size=2, seed=0, start_fraction=0.5)
    >>> sorted(sampler.batch(0))  # the easiest half: indices 3 (0.5) and 1 (1.0)
    [1, 3]

Used by ``coursekit train --curriculum`` (enhancement H of docs/course.md); guide:
docs/lr-finder-curriculum-dashboard.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

Pacing = Literal["none", "linear", "root", "step"]
PacingFunction = Callable[[int, int, float], float]
"""A pacing of your own: ``(step, total_steps, start_fraction) -> c(t)`` (Tier H's exercise)."""

COMPLEXITY_FEATURES: tuple[str, ...] = ("cyclomatic", "nesting")
"""Complexity features used when every sample has them (``coursekit.corpus.features``)."""
LENGTH_FEATURES: tuple[str, ...] = ("tokens", "lines")
"""Length features, the first one every sample has wins; else the function's characters."""
FALLBACK_FEATURE = "function_chars"
"""Name of the fallback length measure: ``len(sample.function)``."""
STEP_INCREMENTS = 5
"""Stages of the "baby steps" pacing (Spitkovsky et al. 2010 add one length bucket per stage)."""


@dataclass(frozen=True, kw_only=True)
class Difficulties:
    """Difficulty scores of a list of samples and the features they were computed from."""

    scores: tuple[float, ...]
    """One score per sample, in input order; higher is harder."""
    basis: tuple[str, ...]
    """The features combined, e.g. ``("cyclomatic", "nesting", "tokens")`` or
    ``("function_chars",)`` when the samples carry no difficulty features."""


def _value(sample: Any, name: str) -> float | None:
    """Return feature ``name`` of a sample as a float (the fallback is computed), else None."""
    if name == FALLBACK_FEATURE:
        return float(len(sample.function))
    value = getattr(sample, "features", {}).get(name)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number and math.isfinite(value) and value >= 0 else None


def difficulty_basis(samples: Sequence[Any]) -> tuple[str, ...]:
    """Return the features every sample has: complexity ones, then one length measure.

    Example:
        >>> from types import SimpleNamespace as S
        >>> difficulty_basis([S(function="fn f() {}", features={"topic": "x"})])
        ('function_chars',)
    """
    present = lambda name: all(_value(s, name) is not None for s in samples)  # noqa: E731
    length = next((name for name in LENGTH_FEATURES if present(name)), FALLBACK_FEATURE)
    return (*(name for name in COMPLEXITY_FEATURES if present(name)), length)


def difficulty(sample: Any) -> float:
    """Return d = mean over the basis features f of ln(1 + f): one sample, unnormalised.

    The basis is :func:`difficulty_basis` of this sample alone, so scores are comparable only
    between samples with the same features; :func:`difficulty_scores` standardises over a set.

    Example:
        >>> from types import SimpleNamespace as S
        >>> round(difficulty(S(function="", features={"cyclomatic": 1, "lines": 1})), 4)
        0.6931
    """
    basis = difficulty_basis([sample])
    return sum(math.log1p(_value(sample, name)) for name in basis) / len(basis)


def difficulty_scores(samples: Sequence[Any]) -> Difficulties:
    """Return d_j = mean_f z_f(ln(1 + f_j)): z-scored log features averaged per sample.

    Each basis feature f (:func:`difficulty_basis`: cyclomatic complexity and nesting when
    every sample has them, and tokens, else lines, else the function's characters) is
    log-compressed, standardised over the samples (a constant feature contributes 0), and the
    standardised features are averaged, so complexity and length weigh the same.

    Args:
        samples: objects with ``function`` (str) and ``features`` (dict), such as
            :class:`coursekit.data.corpus.Sample`.

    Returns:
        The scores and the basis they used (``basis == ("function_chars",)`` on the seed set).
    """
    if not samples:
        raise ValueError("difficulty_scores needs at least one sample (got an empty sequence)")
    basis = difficulty_basis(samples)
    columns = np.log1p([[_value(s, name) for name in basis] for s in samples])  # (n, f)
    spread = columns.std(axis=0)
    z = (columns - columns.mean(axis=0)) / np.where(spread > 0, spread, 1.0)  # (n, f)
    return Difficulties(scores=tuple(float(v) for v in z.mean(axis=1)), basis=basis)


def difficulty_from_losses(losses: Sequence[float]) -> Difficulties:
    """Return d_j = ℓ_j: the model's own loss on sample j as its difficulty (self-paced).

    Score each training sample with a (reference or current) model's mean per-token loss
    and feed the result to :class:`CurriculumSampler`; higher loss is harder (Kumar et al.
    2010, "Self-Paced Learning"; Hacohen & Weinshall 2019 §2, "transfer scoring").

    Raises:
        ValueError: a loss that is not a finite number, naming its index.
    """
    for index, loss in enumerate(losses):
        if not (isinstance(loss, int | float) and math.isfinite(loss)):
            raise ValueError(
                f"difficulty_from_losses: losses[{index}] must be a finite number (got {loss!r})"
                "; drop or re-score that sample"
            )
    return Difficulties(scores=tuple(float(loss) for loss in losses), basis=("model_loss",))


def linear_pacing(step: int, total_steps: int, start_fraction: float) -> float:
    """Return c(t) = min(1, t(1 − c₀)/T + c₀) (Platanios et al. 2019, eq. 3).

    Example:
        >>> round(linear_pacing(5, 10, 0.2), 4)
        0.6
    """
    return min(1.0, step * (1 - start_fraction) / total_steps + start_fraction)


def root_pacing(step: int, total_steps: int, start_fraction: float) -> float:
    """Return c(t) = min(1, √(t(1 − c₀²)/T + c₀²)) (Platanios et al. 2019, eq. 6, p = 2).

    Widens fast at first, when every new sample is informative, then slowly.

    Example:
        >>> round(root_pacing(5, 10, 0.2), 4)
        0.7211
    """
    c0_squared = start_fraction**2
    return min(1.0, math.sqrt(step * (1 - c0_squared) / total_steps + c0_squared))


def step_pacing(
    step: int, total_steps: int, start_fraction: float, *, increments: int = STEP_INCREMENTS
) -> float:
    """Return c(t) = min(1, c₀ + (1 − c₀)·⌊t k / T⌋ / k): k equal "baby steps".

    The pool grows in k equal jumps (Bengio et al. 2009 §4 switch from easy to all data in
    one step; Spitkovsky et al. 2010, "From Baby Steps to Leapfrog", add a bucket at a time).

    Example:
        >>> [step_pacing(t, 10, 0.5, increments=2) for t in (0, 4, 5, 10)]
        [0.5, 0.5, 0.75, 1.0]
    """
    stage = math.floor(step * increments / total_steps)
    return min(1.0, start_fraction + (1 - start_fraction) * stage / increments)


PACINGS: Mapping[str, Callable[[int, int, float], float]] = MappingProxyType(
    {"linear": linear_pacing, "root": root_pacing, "step": step_pacing}
)
"""Pacing name → pure function ``(step, total_steps, start_fraction) -> c(t) ∈ [c₀, 1]``."""


@dataclass(frozen=True, kw_only=True)
class CurriculumSampler:
    """Batches of sample indices for each step: easiest-first pool paced by c(t), or random.

    At step t with pacing p the pool is the ⌈c(t)·n⌉ easiest samples (ties broken by index)
    and the batch is drawn from it without replacement (with, if the pool is smaller than
    the batch); with ``pacing="none"`` step t takes positions [t·b, (t + 1)·b) of a stream of
    per-epoch random permutations. Either way the generator is seeded by (seed, step, ...),
    so ``batch(k)`` needs no history: resume-safe, the state is the step.
    """

    difficulties: Sequence[float] = field(hash=False)
    """One difficulty per sample (higher is harder), e.g. ``difficulty_scores(...).scores``."""
    pacing: Pacing | PacingFunction = "linear"
    """"none" (random order, the baseline), "linear", "root" or "step" (:data:`PACINGS`), or a
    function ``(step, total_steps, start_fraction) -> c(t)`` of your own (its c(t) is clipped
    to [1/n, 1] by :meth:`pool_size`; notebooks/phase3_advanced.ipynb plugs one in)."""
    total_steps: int
    """T: the step at which the whole set is available (usually the run's ``max_steps``)."""
    batch_size: int
    """Samples per optimizer step (micro-batch size × gradient accumulation)."""
    seed: int = 0
    """Seed of the draws; the same seed and step always give the same batch."""
    start_fraction: float = 0.2
    """c₀: the fraction of the easiest samples available at step 0."""

    def __post_init__(self) -> None:
        """Validate; raise ``ValueError`` naming the field, the value, the rule and the fix."""
        rules = [
            ("difficulties", len(self.difficulties) >= 1, "must hold at least one score"),
            (
                "pacing",
                callable(self.pacing) or self.pacing in _ORDERS,
                f"must be one of {list(_ORDERS)} or a function (step, total_steps, c0) -> c",
            ),
            ("total_steps", self.total_steps >= 1, "must be >= 1"),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("seed", self.seed >= 0, "must be >= 0"),
            ("start_fraction", 0 < self.start_fraction <= 1, "must be in (0, 1]"),
        ]
        for name, ok, rule in rules:
            if not ok:
                value = getattr(self, name)
                shown = f"{len(value)} scores" if name == "difficulties" else repr(value)
                raise ValueError(f"CurriculumSampler.{name} {rule} (got {shown})")

    @cached_property
    def order(self) -> tuple[int, ...]:
        """Sample indices from easiest to hardest (a stable sort: ties keep index order)."""
        return tuple(int(i) for i in np.argsort(np.asarray(self.difficulties), kind="stable"))

    def competence(self, step: int) -> float:
        """Return c(step), the fraction of the easiest-first pool available (1 for "none")."""
        if callable(self.pacing):
            c = float(self.pacing(step, self.total_steps, self.start_fraction))
            if not math.isfinite(c):
                raise ValueError(f"the pacing function returned {c} at step {step}; return c(t)")
            return c
        if self.pacing == "none":
            return 1.0
        return PACINGS[self.pacing](step, self.total_steps, self.start_fraction)

    def pool_size(self, step: int) -> int:
        """Return ⌈c(step)·n⌉ (at least 1): how many of the easiest samples step may draw."""
        n = len(self.difficulties)
        return max(1, min(n, math.ceil(self.competence(step) * n - 1e-9)))

    def batch(self, step: int) -> list[int]:
        """Return the sample indices of optimizer step ``step`` (0-based, ≥ 0)."""
        if step < 0:
            raise ValueError(f"CurriculumSampler.batch step must be >= 0 (got {step})")
        order = _paced_batch if callable(self.pacing) else _ORDERS[self.pacing]
        return order(self, step)


def _paced_batch(sampler: CurriculumSampler, step: int) -> list[int]:
    """Draw ``batch_size`` indices uniformly from the ⌈c(t)·n⌉ easiest, seeded by (seed, t)."""
    pool = sampler.order[: sampler.pool_size(step)]
    rng = np.random.default_rng([sampler.seed, step])
    replace = len(pool) < sampler.batch_size
    return [pool[int(i)] for i in rng.choice(len(pool), sampler.batch_size, replace=replace)]


def _shuffled_batch(sampler: CurriculumSampler, step: int) -> list[int]:
    """Take positions [t·b, (t+1)·b) of the stream of per-epoch permutations (seed, epoch)."""
    n, b = len(sampler.difficulties), sampler.batch_size
    permutations: dict[int, np.ndarray] = {}
    out = []
    for position in range(step * b, (step + 1) * b):
        epoch, offset = divmod(position, n)
        if epoch not in permutations:
            permutations[epoch] = np.random.default_rng([sampler.seed, epoch, 1]).permutation(n)
        out.append(int(permutations[epoch][offset]))
    return out


_ORDERS: Mapping[str, Callable[[CurriculumSampler, int], list[int]]] = MappingProxyType(
    {"none": _shuffled_batch, **dict.fromkeys(PACINGS, _paced_batch)}
)


def batch_indices(
    difficulties: Sequence[float],
    *,
    pacing: Pacing,
    step: int,
    total_steps: int,
    batch_size: int,
    seed: int,
    start_fraction: float = 0.2,
) -> list[int]:
    """Return the indices of step ``step``'s batch; see :class:`CurriculumSampler` (the same).

    Example:
        >>> batch_indices([0.0, 1.0, 2.0], pacing="none", step=0, total_steps=1,
        ...     batch_size=3, seed=0) != []
        True
    """
    sampler = CurriculumSampler(
        difficulties=difficulties,
        pacing=pacing,
        total_steps=total_steps,
        batch_size=batch_size,
        seed=seed,
        start_fraction=start_fraction,
    )
    return sampler.batch(step)
