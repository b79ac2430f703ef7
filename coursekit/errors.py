"""Errors and warnings that coursekit raises for things a user can cause.

Every message is one line that names the culprit (a file and line, a field and its value)
and says what to do about it.
"""

from __future__ import annotations

import os
from pathlib import Path


class CoursekitError(Exception):
    """Base class of the errors coursekit raises for bad input or a missing resource."""


class ModelNotFoundError(CoursekitError, FileNotFoundError):
    """A model is not a local directory nor cached, and the hub is out of reach."""


class CoursekitWarning(UserWarning):
    """Base class of every warning coursekit emits, so graders and tests can filter them."""


def cannot_write(path: str | os.PathLike[str], what: str, error: OSError) -> CoursekitError:
    """Return the one-line error for ``what`` that could not be written to ``path``.

    The reason is the OS's, or, when an ancestor of ``path`` is a file, that file.

    Example:
        >>> denied = PermissionError(13, "Permission denied")
        >>> print(cannot_write("no-such-dir/m", "the model", denied))
        no-such-dir/m: cannot write the model there (Permission denied); choose a directory
        you can write
    """
    reason = error.strerror or str(error)
    for place in (Path(path), *Path(path).parents):
        if place.exists() and not place.is_dir():
            reason = f"{place} is a file, not a directory"
            break
    return CoursekitError(
        f"{path}: cannot write {what} there ({reason}); choose a directory you can write"
    )
