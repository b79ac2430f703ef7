"""Instant feedback on the Phase 3 exercises: ``check(exercise_id, answer) -> CheckResult``.

``check`` runs the learner's function (or class) in a subprocess with a timeout and compares
it with coursekit's reference through property tests (hypothesis) and parity on tiny shapes
and tiny Qwen2 layers; a failure names what differs, never the reference's code.

Guide: docs/exercises.md.
"""

from coursekit.exercises.registry import EXERCISES, Exercise
from coursekit.exercises.result import CheckFailed, CheckResult
from coursekit.exercises.runner import check, run_checks

__all__ = ["EXERCISES", "CheckFailed", "CheckResult", "Exercise", "check", "run_checks"]
