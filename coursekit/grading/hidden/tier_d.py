"""Hidden checks of Tier D: ``step_loss``.

The sub-checks of the exercise ``D.token_normalised_accumulation``,
each one hidden check (coursekit.exercises).
"""

from coursekit.exercises.registry import exercise

ID = "D.token_normalised_accumulation"
EXPORTS = exercise(ID).parts
CHECKS = exercise(ID).checks()
