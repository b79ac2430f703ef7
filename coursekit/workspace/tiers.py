"""The enhancement tiers A–L of the course, as data: what to build, where to read, the reference.

A learner picks at least one Core tier (A–D) and one Advanced tier (E–H); the Bonus tiers
(I–L) are optional (docs/course.md, Phase 2). Each tier names the module the learner's
workspace gets for it (``enhancements/<letter>_<slug>.py``) and the test file that counts
towards it (``tests/test_<letter>_<slug>.py``).

Example:
    >>> TIERS["E"].module, TIERS["E"].level
    ('e_dora', 'advanced')
    >>> parse_tiers("a, E")
    ('A', 'E')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from coursekit.exercises.registry import EXERCISES

Level = Literal["core", "advanced", "bonus"]


@dataclass(frozen=True, kw_only=True)
class Tier:
    """One enhancement of the course: its letter, names, level, guide and reference code."""

    letter: str
    """The tier's letter, ``"A"`` … ``"L"``."""
    slug: str
    """A Python identifier naming the enhancement (``"dora"``)."""
    title: str
    """The enhancement in words, as the course's table names it."""
    level: Level
    """Core (A–D), Advanced (E–H) or Bonus (I–L)."""
    task: str
    """What the learner implements, in one or two sentences."""
    guide: str
    """The coursekit guide to read (a path under ``docs/``)."""
    reference: str
    """coursekit's reference implementation (a path under ``coursekit/``)."""
    exports: tuple[str, ...] = ()
    """The names the grader's hidden checks import from the learner's module, in the order
    the checks receive them (the exercise's parts, ``coursekit.exercises``, or
    :data:`OWN_CONTRACTS`); empty: the tier has no hidden checks."""
    signature: str = ""
    """The signature of :attr:`exports` in words (the exercise's), e.g.
    ``"dora_forward(x, W0, b, A, B, m, scale) -> y"``; empty without hidden checks."""

    @property
    def module(self) -> str:
        """The learner's module for this tier, ``<letter>_<slug>`` (``"e_dora"``)."""
        return f"{self.letter.lower()}_{self.slug}"

    @property
    def contract(self) -> str:
        """What the grader's hidden checks call from the learner's module, in one sentence.

        Example:
            >>> TIERS["F"].contract
            "the grader's hidden checks call fake_quant_ste (signature: fake_quant_ste(weight) -> weight) from this module"
            >>> TIERS["A"].contract
            'Tier A has no hidden checks: your tests, coverage and ENHANCEMENT.md are graded'
        """  # noqa: E501
        if not self.exports:
            return (
                f"Tier {self.letter} has no hidden checks: your tests, coverage and "
                "ENHANCEMENT.md are graded"
            )
        names = " and ".join(self.exports)
        return (
            f"the grader's hidden checks call {names} (signature: {self.signature}) "
            "from this module"
        )

    @property
    def test_prefix(self) -> str:
        """The file-name prefix of the tests that count for this tier (``"test_e_"``)."""
        return f"test_{self.letter.lower()}_"


_ROWS = (
    # letter, slug, title, level, task, guide, reference
    (
        "A",
        "rank_ablation",
        "rank ablation (r = 4, 8, 16, 32, 64) with metrics logging",
        "core",
        "Train at each rank over several seeds and log the metrics of every run.",
        "docs/experiments.md",
        "coursekit/recipes/ablate.py",
    ),
    (
        "B",
        "mlp_targets",
        "MLP target strategy (gate/up/down projections)",
        "core",
        "Adapt the MLP projections and compare trainable counts, memory and loss.",
        "docs/adapters.md",
        "coursekit/adapters/config.py",
    ),
    (
        "C",
        "lr_finder",
        "learning-rate finder (LR range test, automatic choice)",
        "core",
        "Sweep the learning rate exponentially and suggest one from the loss curve.",
        "docs/lr-finder-curriculum-dashboard.md",
        "coursekit/train/lr_finder.py",
    ),
    (
        "D",
        "gradient_accumulation",
        "gradient accumulation",
        "core",
        "Accumulate micro-batches, normalising by the total number of target tokens.",
        "docs/training.md",
        "coursekit/train/loop.py",
    ),
    (
        "E",
        "dora",
        "DoRA (weight-decomposed low-rank adaptation)",
        "advanced",
        "y = m ⊙ (W₀ + sBA)x / ‖W₀ + sBA‖ + b, the bias left unscaled.",
        "docs/adapters.md",
        "coursekit/adapters/dora.py",
    ),
    (
        "F",
        "qat",
        "quantization-aware LoRA",
        "advanced",
        "Fake-quantize the weight in the forward pass with a straight-through gradient.",
        "docs/quantization-and-multi-adapter.md",
        "coursekit/adapters/qat.py",
    ),
    (
        "G",
        "multi_adapter",
        "multi-adapter (several LoRA adapters trained at once)",
        "advanced",
        "Hold several adapters on one layer and train them simultaneously.",
        "docs/quantization-and-multi-adapter.md",
        "coursekit/adapters/multi.py",
    ),
    (
        "H",
        "curriculum",
        "curriculum learning (difficulty-based ordering)",
        "advanced",
        "Score samples by difficulty and write a pacing function for the order.",
        "docs/lr-finder-curriculum-dashboard.md",
        "coursekit/data/curriculum.py",
    ),
    (
        "I",
        "dashboard",
        "dashboard loss graphs",
        "bonus",
        "A metrics callback and a live plot of the losses.",
        "docs/lr-finder-curriculum-dashboard.md",
        "coursekit/display/dashboard.py",
    ),
    (
        "J",
        "resume",
        "checkpoint save and resume",
        "bonus",
        "Save everything a run needs to resume exactly, and resume from it.",
        "docs/training.md",
        "coursekit/train/checkpoint.py",
    ),
    (
        "K",
        "custom_corpus",
        "custom corpus integration (your own Rust code)",
        "bonus",
        "Turn your own Rust crate into training samples with coursekit corpus.",
        "docs/corpus.md",
        "coursekit/corpus/build.py",
    ),
    (
        "L",
        "benchmarks",
        "benchmark suite comparing methods",
        "bonus",
        "Benchmark the methods against each other at one budget.",
        "docs/benchmarks.md",
        "coursekit/recipes/bench/suite.py",
    ),
)

EXERCISE_OF = {
    "C": "C.lr_suggester",
    "D": "D.token_normalised_accumulation",
    "E": "E.dora_forward",
    "F": "F.fake_quant_ste",
    "H": "H.pacing",
    "I": "I.metrics_callback",
    "J": "J.resume_state",
}
"""Tier letter → the exercise whose parts and checks are the tier's hidden contract
(coursekit/grading/hidden/)."""
OWN_CONTRACTS = {
    "B": (("lora_trainable_count",), "lora_trainable_count(model_config, rank, targets) -> int"),
    "G": (("multi_lora_forward",), "multi_lora_forward(x, W0, b, A, B, indices, scale) -> y"),
}
"""Tier letter → (exports, signature) of hidden checks that are not an exercise's (theirs are
in coursekit/grading/hidden/tier_b.py and tier_g.py). A, K and L have no hidden checks."""


def _contract(letter: str) -> tuple[tuple[str, ...], str]:
    if letter in EXERCISE_OF:
        spec = EXERCISES[EXERCISE_OF[letter]]
        return spec.parts, spec.signature
    return OWN_CONTRACTS.get(letter, ((), ""))


TIERS: dict[str, Tier] = {
    row[0]: Tier(
        letter=row[0],
        slug=row[1],
        title=row[2],
        level=row[3],
        task=row[4],
        guide=row[5],
        reference=row[6],
        exports=_contract(row[0])[0],
        signature=_contract(row[0])[1],
    )
    for row in _ROWS
}
"""Tier letter → :class:`Tier`, in the course's order."""


def parse_tiers(text: str) -> tuple[str, ...]:
    """Return the tier letters of ``"A,E"`` (any case, spaces allowed), sorted, each once.

    Raises:
        ValueError: an unknown letter, or no Core tier or no Advanced tier among them.

    Example:
        >>> parse_tiers("E,a,i")
        ('A', 'E', 'I')
        >>> parse_tiers("A,Z")
        Traceback (most recent call last):
        ValueError: tier 'Z' is not one of A-L (docs/course.md, Phase 2); pass e.g. --tiers A,E
    """
    letters = [part.strip().upper() for part in text.split(",") if part.strip()]
    for letter in letters:
        if letter not in TIERS:
            raise ValueError(
                f"tier {letter!r} is not one of A-L (docs/course.md, Phase 2); "
                "pass e.g. --tiers A,E"
            )
    chosen = tuple(sorted(set(letters)))
    check_choice(chosen)
    return chosen


def check_choice(letters: tuple[str, ...]) -> None:
    """Raise unless ``letters`` holds at least one Core and one Advanced tier (the course's rule).

    Raises:
        ValueError: a level missing, naming the letters that would fill it.

    Example:
        >>> check_choice(("A", "E"))
        >>> check_choice(("A", "B"))
        Traceback (most recent call last):
        ValueError: tiers ('A', 'B') have no Advanced tier: add one of E, F, G, H
    """
    for level in ("core", "advanced"):
        if not any(TIERS[letter].level == level for letter in letters if letter in TIERS):
            options = ", ".join(t.letter for t in TIERS.values() if t.level == level)
            raise ValueError(f"tiers {letters} have no {level.title()} tier: add one of {options}")
