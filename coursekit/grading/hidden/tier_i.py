"""Hidden checks of Tier I: ``MetricsRecorder``.

The sub-checks of the exercise ``I.metrics_callback``,
each one hidden check (coursekit.exercises).
"""

from coursekit.exercises.registry import exercise

ID = "I.metrics_callback"
EXPORTS = exercise(ID).parts
CHECKS = exercise(ID).checks()
