"""Errors and warnings that coursekit raises for things a user can cause.

Every message is one line that names the culprit (a file and line, a field and its value)
and says what to do about it.
"""

from __future__ import annotations


class CoursekitError(Exception):
    """Base class of the errors coursekit raises for bad input or a missing resource."""


class ModelNotFoundError(CoursekitError, FileNotFoundError):
    """A model is not a local directory nor cached, and the hub is out of reach."""


class CoursekitWarning(UserWarning):
    """Base class of every warning coursekit emits, so graders and tests can filter them."""
