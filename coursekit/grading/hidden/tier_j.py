"""Hidden checks of Tier J: ``save_state/restore_state``.

The sub-checks of the exercise ``J.resume_state``,
each one hidden check (coursekit.exercises).
"""

from coursekit.exercises.registry import exercise

ID = "J.resume_state"
EXPORTS = exercise(ID).parts
CHECKS = exercise(ID).checks()
