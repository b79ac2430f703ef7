"""Validate what callers hand the sandbox and the Rust evaluator: one-line errors, no traces.

Each check returns the value in the form the sandbox uses (a list of strings, a resolved
path) or raises :class:`~coursekit.evaluate.runner.SandboxInputError` naming the argument,
the culprit and the fix.

Example:
    >>> check_seconds("timeout_s", 2)
    2.0
    >>> try:
    ...     check_seconds("timeout_s", float("inf"))
    ... except ValueError as error:
    ...     print(str(error)[:44])
    timeout_s must be a finite number of seconds
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from coursekit.evaluate.runner import MAX_SECONDS, SandboxInputError


def check_seconds(name: str, value: object) -> float:
    """Return ``value`` as seconds if it is a finite number in (0, one day]."""
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not (number > 0 and math.isfinite(number) and number <= MAX_SECONDS):
        raise SandboxInputError(
            f"{name} must be a finite number of seconds > 0 and <= {MAX_SECONDS} "
            f"(got {value!r}); pass e.g. 10"
        )
    return float(number)


def check_text(name: str, value: object) -> str:
    """Return ``value`` if it is a ``str`` that encodes to UTF-8 (no lone surrogate)."""
    if not isinstance(value, str):
        raise SandboxInputError(
            f"{name} must be a str (got {type(value).__name__}); decode bytes first"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise SandboxInputError(
            f"{name} has a lone surrogate {value[error.start]!r} at index {error.start}; "
            "remove it or decode the text with errors='replace'"
        ) from None
    return value


def check_command(command: object) -> list[str]:
    """Return ``command`` as a list of strings: non-empty, no NUL, no lone surrogate."""
    if isinstance(command, str | bytes) or not isinstance(command, Sequence) or not command:
        raise SandboxInputError(
            f"command must be a non-empty list of arguments (got {command!r}); "
            'pass e.g. ["sh", "-c", "echo hi"]'
        )
    argv = []
    for index, argument in enumerate(command):
        text = os.fspath(argument) if isinstance(argument, os.PathLike) else argument
        checked = check_text(f"command[{index}]", text)
        if "\0" in checked:
            raise SandboxInputError(f"command[{index}] contains a NUL byte; remove it")
        argv.append(checked)
    return argv


def check_directory(name: str, directory: object) -> Path:
    """Return the resolved path of an existing directory."""
    if not isinstance(directory, str | os.PathLike):
        raise SandboxInputError(f"{name} must be a path (got {type(directory).__name__})")
    path = Path(check_text(name, os.fspath(directory)))
    if "\0" in str(path) or not path.is_dir():
        raise SandboxInputError(f"{name} {str(path)!r} is not a directory; create it first")
    return path.resolve()


def check_paths(name: str, paths: object) -> list[Path]:
    """Return the resolved paths of existing files or directories (read-only binds)."""
    if isinstance(paths, str | bytes | os.PathLike) or not isinstance(paths, Sequence):
        raise SandboxInputError(f"{name} must be a list of paths (got {paths!r})")
    resolved = []
    for index, path in enumerate(paths):
        if not isinstance(path, str | os.PathLike):
            raise SandboxInputError(f"{name}[{index}] must be a path (got {path!r})")
        text = check_text(f"{name}[{index}]", os.fspath(path))
        if "\0" in text or not os.path.exists(text):
            raise SandboxInputError(f"{name}[{index}] {text!r} does not exist; drop it")
        resolved.append(Path(text).resolve())
    return resolved


def check_env(env: object) -> dict[str, str]:
    """Return ``env`` as a dict of valid variable names to values."""
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise SandboxInputError(f"env must be a mapping of str to str (got {env!r})")
    checked = {}
    for key, value in env.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise SandboxInputError(
                f"env key {key!r} is not a variable name; use a non-empty str without '='"
            )
        text = check_text(f"env[{key!r}]", value)
        if "\0" in text:
            raise SandboxInputError(f"env[{key!r}] contains a NUL byte; remove it")
        checked[key] = text
    return checked


def check_count(name: str, value: object, low: int) -> int:
    """Return ``value`` if it is an int (not a bool) >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SandboxInputError(f"{name} must be an int >= {low} (got {value!r})")
    return value
