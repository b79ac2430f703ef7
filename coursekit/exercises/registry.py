"""The exercises ``coursekit.check`` knows: id → what the learner hands in and its checks.

An exercise's checks are an ordered tuple of ``(name, function)`` pairs; each function takes
the learner's parts (a function, a class, or for J two functions) and raises
``CheckFailed`` naming what differs. The check modules (``core``, ``advanced``, ``bonus``)
hold them per tier; this module only maps ids to them, importing a module when asked.

Guide: docs/exercises.md (each exercise with its equation and signature).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

from coursekit.errors import CoursekitError

Check = tuple[str, Callable[..., None]]
"""A named sub-check: ``(name, function(*parts))``."""


@dataclass(frozen=True, kw_only=True)
class Exercise:
    """One exercise: its id, the signature of what the learner writes, where its checks live.

    Example:
        >>> EXERCISES["E.dora_forward"].parts
        ('dora_forward',)
    """

    id: str
    """``"<tier>.<name>"``, e.g. ``"E.dora_forward"``."""
    parts: tuple[str, ...]
    """What the learner hands to ``check``, by role: one function or class, or two functions."""
    signature: str
    """The expected signature, shown when the wrong number of parts is given."""
    module: str
    """The module whose ``CHECKS[id]`` holds the ordered sub-checks."""

    def checks(self) -> tuple[Check, ...]:
        """Return the ordered ``(name, function)`` sub-checks (imports the check module).

        Example:
            >>> [name for name, _ in EXERCISES["H.pacing"].checks()][:2]
            ['returns a number', 'starts at start_fraction']
        """
        return importlib.import_module(self.module).CHECKS[self.id]


_CORE, _ADVANCED, _PACING, _BONUS = (
    f"coursekit.exercises.{m}" for m in ("core", "advanced", "pacing", "bonus")
)

EXERCISES: MappingProxyType[str, Exercise] = MappingProxyType(
    {
        e.id: e
        for e in (
            Exercise(
                id="C.lr_suggester",
                parts=("suggest_lr",),
                signature="suggest_lr(lrs, losses) -> lr",
                module=_CORE,
            ),
            Exercise(
                id="D.token_normalised_accumulation",
                parts=("step_loss",),
                signature="step_loss(loss_sums, token_counts) -> scalar tensor",
                module=_CORE,
            ),
            Exercise(
                id="E.dora_forward",
                parts=("dora_forward",),
                signature="dora_forward(x, W0, b, A, B, m, scale) -> y",
                module=_ADVANCED,
            ),
            Exercise(
                id="F.fake_quant_ste",
                parts=("fake_quant_ste",),
                signature="fake_quant_ste(weight) -> weight",
                module=_ADVANCED,
            ),
            Exercise(
                id="H.pacing",
                parts=("pacing",),
                signature="pacing(step, total_steps, start_fraction) -> fraction",
                module=_PACING,
            ),
            Exercise(
                id="I.metrics_callback",
                parts=("MetricsRecorder",),
                signature="class MetricsRecorder: on_step, on_eval, on_end; .history, .summary",
                module=_BONUS,
            ),
            Exercise(
                id="J.resume_state",
                parts=("save_state", "restore_state"),
                signature="(save_state(model, optimizer, scheduler, step, rng) -> dict, "
                "restore_state(state, model, optimizer, scheduler, rng) -> step)",
                module=_BONUS,
            ),
        )
    }
)
"""Exercise id → ``Exercise`` (read-only)."""


def exercise(exercise_id: str) -> Exercise:
    """Return the exercise named ``exercise_id``.

    Raises:
        CoursekitError: no exercise has that id (the message lists them).

    Example:
        >>> exercise("H.pacing").signature
        'pacing(step, total_steps, start_fraction) -> fraction'
    """
    if exercise_id not in EXERCISES:
        raise CoursekitError(
            f"no exercise {exercise_id!r}; choose one of {', '.join(EXERCISES)} (docs/exercises.md)"
        )
    return EXERCISES[exercise_id]
