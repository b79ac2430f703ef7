"""Load a tier's hidden checks: coursekit's (``coursekit/grading/hidden/``) or an instructor's.

A hidden-check module is ``tier_<letter>.py`` (``tier_e.py``) and defines ``ID`` (the id
prefix, ``"E.dora_forward"``), ``EXPORTS`` (the names the learner's module must define, in
the order the checks receive them), ``CHECKS`` (ordered ``(name, function)`` pairs;
``function(*exports)`` raises when the check fails) and optionally ``SIGNATURE`` (the
exports' signature in words, for messages). The grader loads it in its own process to know
the ids (trusted code), and again in the sandboxed child that runs the checks.

Guide: docs/grading.md ("Hidden checks").

Example:
    >>> hidden_tier("E").checks[2][0], hidden_tier("A")
    ('bias untouched', None)
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from coursekit.errors import CoursekitError
from coursekit.workspace.tiers import TIERS

BUILT_IN = Path(__file__).resolve().parent / "hidden"
"""coursekit's own hidden checks (a package; hidden from every other sandboxed run)."""


@dataclass(frozen=True, kw_only=True)
class HiddenTier:
    """One tier's hidden checks, as loaded from its module.

    Example:
        >>> tier = hidden_tier("J")
        >>> tier.exports, tier.ids()[0]
        (('save_state', 'restore_state'), 'J.resume_state/save_state returns what torch.save can write')
    """  # noqa: E501

    letter: str
    """The tier's letter."""
    id: str
    """The id prefix of its checks (``ID``)."""
    exports: tuple[str, ...]
    """What the learner's module must define (``EXPORTS``)."""
    signature: str
    """The exports' signature in words (``SIGNATURE``, else the tier's)."""
    checks: tuple[tuple[str, Callable[..., None]], ...]
    """The ordered ``(name, function)`` checks (``CHECKS``)."""
    source: str
    """The module's file, for messages."""

    def ids(self) -> list[str]:
        """Return each check's id, ``"<ID>/<name>"``, in order."""
        return [f"{self.id}/{name}" for name, _ in self.checks]


def hidden_tier(letter: str, hidden_dir: str | os.PathLike[str] | None = None) -> HiddenTier | None:
    """Return tier ``letter``'s hidden checks, or None when it has none.

    Args:
        letter: a tier letter, ``"A"`` … ``"L"``.
        hidden_dir: an instructor's folder of ``tier_<letter>.py`` modules that replaces
            coursekit's own (a tier without a file there has no hidden checks).

    Raises:
        CoursekitError: the module does not import, or ``ID``, ``EXPORTS`` or ``CHECKS``
            has the wrong shape (the message names the file and the name).

    Example:
        >>> hidden_tier("C").id
        'C.lr_suggester'
    """
    return _load(letter.upper(), None if hidden_dir is None else str(Path(hidden_dir).resolve()))


@functools.cache
def _load(letter: str, hidden_dir: str | None) -> HiddenTier | None:
    folder = BUILT_IN if hidden_dir is None else Path(hidden_dir)
    path = folder / f"tier_{letter.lower()}.py"
    if letter not in TIERS or not path.is_file():
        return None
    try:
        module = _import(letter, path, built_in=hidden_dir is None)
    except Exception as error:
        raise CoursekitError(
            f"{path}: the hidden checks do not import ({type(error).__name__}: {error}); "
            "fix the module"
        ) from None
    return _validated(letter, module, path)


def _import(letter: str, path: Path, *, built_in: bool) -> ModuleType:
    if built_in:
        return importlib.import_module(f"coursekit.grading.hidden.tier_{letter.lower()}")
    spec = importlib.util.spec_from_file_location(f"coursekit_hidden_tier_{letter.lower()}", path)
    if spec is None or spec.loader is None:
        raise ImportError("not a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _validated(letter: str, module: ModuleType, path: Path) -> HiddenTier:
    def refuse(name: str, rule: str) -> CoursekitError:
        return CoursekitError(f"{path}: {name} {rule}; fix the hidden check module")

    ident = getattr(module, "ID", None)
    if not isinstance(ident, str) or not ident or "/" in ident:
        raise refuse("ID", f"must be a non-empty str without '/' (got {ident!r})")
    exports = getattr(module, "EXPORTS", None)
    if not isinstance(exports, tuple | list) or not exports:
        raise refuse("EXPORTS", f"must be a non-empty tuple of names (got {exports!r})")
    if not all(isinstance(name, str) and name.isidentifier() for name in exports):
        raise refuse("EXPORTS", f"must hold Python identifiers (got {exports!r})")
    checks = getattr(module, "CHECKS", None)
    if not isinstance(checks, tuple | list) or not checks:
        raise refuse("CHECKS", "must be a non-empty tuple of (name, function) pairs")
    for index, pair in enumerate(checks):
        ok = isinstance(pair, tuple | list) and len(pair) == 2
        if not (ok and isinstance(pair[0], str) and pair[0].strip() and callable(pair[1])):
            raise refuse(f"CHECKS[{index}]", f"must be a (name, function) pair (got {pair!r})")
    names = [name for name, _ in checks]
    if len(set(names)) != len(names):
        raise refuse("CHECKS", f"names must be unique (got {names})")
    signature = getattr(module, "SIGNATURE", None) or TIERS[letter].signature
    return HiddenTier(
        letter=letter,
        id=ident,
        exports=tuple(exports),
        signature=str(signature),
        checks=tuple((name, function) for name, function in checks),
        source=str(path),
    )
