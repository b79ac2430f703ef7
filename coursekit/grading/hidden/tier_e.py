"""Hidden checks of Tier E: ``dora_forward``.

The sub-checks of the exercise ``E.dora_forward``,
each one hidden check (coursekit.exercises).
"""

from coursekit.exercises.registry import exercise

ID = "E.dora_forward"
EXPORTS = exercise(ID).parts
CHECKS = exercise(ID).checks()
