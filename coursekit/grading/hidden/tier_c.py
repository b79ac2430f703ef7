"""Hidden checks of Tier C: ``suggest_lr``.

The sub-checks of the exercise ``C.lr_suggester``,
each one hidden check (coursekit.exercises).
"""

from coursekit.exercises.registry import exercise

ID = "C.lr_suggester"
EXPORTS = exercise(ID).parts
CHECKS = exercise(ID).checks()
