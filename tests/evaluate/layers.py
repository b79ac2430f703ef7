"""Skip (or, in CI, fail) a hostile-code test whose sandbox layer this machine lacks.

``require("filesystem")`` consults the sandbox's own self-test, so a test is skipped for
exactly the reason ``coursekit doctor`` shows. With ``COURSEKIT_SANDBOX_REQUIRED=1`` (set by
``.ci/run``, which installs bubblewrap) a missing layer fails the test instead: CI must prove
every layer, not skip it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coursekit.evaluate.sandbox import isolation

REQUIRED = os.environ.get("COURSEKIT_SANDBOX_REQUIRED") == "1"


def require(*names: str) -> None:
    """Skip the calling test unless every named layer holds here (fail if REQUIRED)."""
    report = isolation()
    for name in names:
        if not report.holds(name):
            reason = report.why(name)
            if REQUIRED:
                pytest.fail(f"COURSEKIT_SANDBOX_REQUIRED=1 but {reason}")
            pytest.skip(reason)


def alive(command: str) -> bool:
    """Return whether a process runs exactly ``command`` (its argv joined by spaces)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().replace(b"\0", b" ").strip() == command.encode():
                return True
        except OSError:
            continue
    return False
