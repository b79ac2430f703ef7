"""Hidden checks of Tier F: ``fake_quant_ste``.

The sub-checks of the exercise ``F.fake_quant_ste``,
each one hidden check (coursekit.exercises).
"""

from coursekit.exercises.registry import exercise

ID = "F.fake_quant_ste"
EXPORTS = exercise(ID).parts
CHECKS = exercise(ID).checks()
