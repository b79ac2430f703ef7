"""Hidden checks of Tier H: ``pacing``.

The sub-checks of the exercise ``H.pacing``,
each one hidden check (coursekit.exercises).
"""

from coursekit.exercises.registry import exercise

ID = "H.pacing"
EXPORTS = exercise(ID).parts
CHECKS = exercise(ID).checks()
