"""Per-run ``pids`` cgroups: cap how many processes a sandboxed command may run, then reap.

``RLIMIT_NPROC`` does not bind root, so the sandbox puts each run into a fresh cgroup with
``pids.max`` set (cgroup v1 ``/sys/fs/cgroup/pids`` or v2 ``/sys/fs/cgroup``), kills every
process still in it when the run ends, and removes it. :func:`find_root` says whether this
machine lets us make one.

Example:
    >>> root = find_root()  # doctest: +SKIP
    >>> group = make(root, 16)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from pathlib import Path

ROOTS = (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup"))
"""Where a child cgroup with ``pids.max`` is tried, in order."""


def find_root() -> Path | None:
    """Return a cgroup directory in which a child with ``pids.max`` can be made, or None."""
    for root in ROOTS:
        child = root / f"coursekit-probe-{os.getpid()}"
        try:
            child.mkdir()
        except OSError:
            continue
        try:
            if (child / "pids.max").is_file():
                return root
        finally:
            child.rmdir()
    return None


def make(root: Path | None, max_processes: int) -> Path | None:
    """Create a per-run ``pids`` cgroup under ``root`` with ``pids.max`` set, or None."""
    if root is None:
        return None
    cgroup = root / f"coursekit-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    try:
        cgroup.mkdir()
        (cgroup / "pids.max").write_text(str(max_processes))
    except OSError:  # pragma: no cover - the probe said it works
        remove(cgroup)
        return None
    return cgroup


def kill_all(cgroup: Path | None) -> int:
    """Kill every process left in ``cgroup`` until none is; return how many there were."""
    if cgroup is None:
        return 0
    seen: set[int] = set()
    for _ in range(100):
        pids = {int(p) for p in (cgroup / "cgroup.procs").read_text().split()}
        if not pids:
            break
        seen |= pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return len(seen)


def remove(cgroup: Path | None) -> None:
    """Remove a per-run cgroup (it must be empty)."""
    if cgroup is not None:
        for _ in range(50):
            try:
                cgroup.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # pragma: no cover - a process is still exiting
                time.sleep(0.02)


def refused_forks(cgroup: Path) -> int:
    """Return how often the cgroup refused a fork (``pids.events`` max count)."""
    try:
        return int((cgroup / "pids.events").read_text().split()[-1])
    except (OSError, ValueError, IndexError):  # pragma: no cover - cgroup v1 without events
        return 0
