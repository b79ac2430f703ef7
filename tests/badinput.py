"""Helpers for bad-input tests: one line on stderr, the documented status, nothing changed.

Use ``expect_cli_error`` for the ``coursekit`` command (run in-process, so an exception that
escapes ``main`` fails the test: that is the traceback a user would have seen) and
``tree_digest`` to prove that a bad input changed nothing already saved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pytest

from coursekit.cli import main


def expect_cli_error(
    argv: Sequence[str], capsys: pytest.CaptureFixture[str], *names: str, status: int = 2
) -> str:
    """Run ``coursekit argv``; assert ``status`` and one stderr line containing every name.

    Returns the line. ``SystemExit`` (argparse) is caught and its code used as the status.
    """
    try:
        code = main(list(argv))
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code == status, f"exit status {code}, expected {status}: {err}"
    assert len(err.splitlines()) == 1, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    for name in names:
        assert name in err, f"{name!r} is not named in: {err}"
    return err


def tree_digest(root: Path) -> dict[str, str]:
    """Return {relative path: sha256} of every file under ``root`` ({} if it does not exist)."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
