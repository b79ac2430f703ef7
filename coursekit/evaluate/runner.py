r"""Run one already-wrapped command under limits: the layer every sandbox backend shares.

:func:`execute` starts a command with ``setrlimit`` limits applied before ``exec`` (hard =
soft, so an unprivileged process cannot raise them), in a fresh ``pids`` cgroup where the
machine allows one, in its own session; kills the process group and the cgroup on wall
time; and classifies what happened (:attr:`Outcome.limits_hit`). The isolation itself
(namespaces, read-only mounts, an unprivileged uid) is the wrapper's job, see
:mod:`coursekit.evaluate.jail`.

Example:
    >>> outcome = execute(["true"], work=tmp, env={}, limits=SandboxLimits())  # doctest: +SKIP
    >>> outcome.exit_code  # doctest: +SKIP
    0
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from coursekit.errors import CoursekitError
from coursekit.evaluate import pids_cgroup

EXCERPT_CHARS = 4000
"""Characters of output kept in an outcome's ``output`` (head and tail)."""
MAX_SECONDS = 24 * 3600
"""Largest wall or CPU limit accepted (one day): a bigger one is surely a mistake."""
MAX_TASKS = 1 << 22
"""Largest ``max_processes`` accepted (Linux's ``pid_max`` ceiling)."""
_MEMORY_MARKERS = ("memory allocation of", "LLVM ERROR: out of memory", "Cannot allocate memory")
_STACK_MARKER = "has overflowed its stack"


class SandboxInputError(CoursekitError, ValueError):
    """A sandbox or Rust-evaluation argument is invalid; the message names it and the fix."""


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """Limits of one sandboxed run (defaults suit a unit-test binary).

    Example:
        >>> SandboxLimits(wall_seconds=2).cpu_seconds
        10
    """

    wall_seconds: float = 10.0
    """Wall-clock limit; the process group (and the cgroup) is killed after it."""
    cpu_seconds: int = 10
    """``RLIMIT_CPU``; the kernel sends ``SIGXCPU``, then ``SIGKILL`` a second later."""
    memory_bytes: int | None = 1 << 30
    """``RLIMIT_AS`` (address space), or None for none."""
    max_processes: int = 64
    """``pids.max`` of the run's cgroup: processes and threads together."""
    output_bytes: int = 8 << 20
    """``RLIMIT_FSIZE``: the captured output and any file the command writes."""

    def __post_init__(self) -> None:
        wall = self.wall_seconds
        if isinstance(wall, bool) or not isinstance(wall, int | float):
            _refuse("wall_seconds", wall, "must be a number of seconds")
        if not (wall > 0 and math.isfinite(wall) and wall <= MAX_SECONDS):
            _refuse("wall_seconds", wall, f"must be > 0 and <= {MAX_SECONDS} (finite)")
        _check_int("cpu_seconds", self.cpu_seconds, 1, MAX_SECONDS)
        if self.memory_bytes is not None:
            _check_int("memory_bytes", self.memory_bytes, 1 << 20, 1 << 62)
        _check_int("max_processes", self.max_processes, 1, MAX_TASKS)
        _check_int("output_bytes", self.output_bytes, 1024, 1 << 62)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        _refuse(name, value, "must be an int")
    elif not low <= value <= high:
        _refuse(name, value, f"must be >= {low} and <= {high}")


def _refuse(name: str, value: object, rule: str) -> None:
    raise SandboxInputError(f"SandboxLimits.{name} {rule} (got {value!r}); pass a value in range")


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What :func:`execute` observed, before isolation is added to it."""

    exit_code: int | None
    """Exit status (negative: killed by that signal); None when killed for wall time."""
    wall_seconds: float
    """Wall time of the run."""
    timed_out: bool
    """Killed for exceeding the wall-time limit."""
    limits_hit: tuple[str, ...]
    """Limits it ran into: ``processes``, ``wall``, ``cpu``, ``output``, ``memory``, ``stack``."""
    output: str
    """Excerpt of stdout and stderr together."""
    output_bytes: int
    """Bytes of output written (at most the output limit)."""
    stray_processes: int
    """Processes still in the run's cgroup after the command ended, then killed."""
    cgroup_used: bool
    """Whether the run had its own ``pids`` cgroup."""


def execute(
    command: list[str],
    *,
    work: Path,
    env: dict[str, str],
    limits: SandboxLimits,
    cgroup_root: Path | None = None,
) -> Outcome:
    """Run ``command`` in ``work`` under ``limits``; the log lives next to ``work``.

    Args:
        command: the wrapped command (the jail's wrapper, then the program).
        work: the working directory.
        env: the whole environment.
        limits: the limits.
        cgroup_root: where to make the run's ``pids`` cgroup (None: no cgroup).

    Returns:
        The outcome; a crash, a timeout or a limit is a result, not an exception.
    """
    log = work.parent / f".{work.name}.{uuid.uuid4().hex}.log"
    cgroup = pids_cgroup.make(cgroup_root, limits.max_processes)
    try:
        code, seconds, timed_out = _run(command, work, env, log, limits, cgroup)
        strays = pids_cgroup.kill_all(cgroup)
        output, size = excerpt(log), log.stat().st_size
        limits_hit = _limits_hit(code, output, cgroup)
    finally:
        log.unlink(missing_ok=True)
        pids_cgroup.remove(cgroup)
    return Outcome(
        exit_code=code,
        wall_seconds=seconds,
        timed_out=timed_out,
        limits_hit=limits_hit,
        output=output,
        output_bytes=size,
        stray_processes=strays,
        cgroup_used=cgroup is not None,
    )


def _run(
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    log: Path,
    limits: SandboxLimits,
    cgroup: Path | None,
) -> tuple[int | None, float, bool]:
    """Start the command with limits; kill its process group (and cgroup) on wall time."""
    start = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_preexec(limits, cgroup),  # limits must apply before exec
            start_new_session=True,
        )
        try:
            code: int | None = process.wait(timeout=limits.wall_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            pids_cgroup.kill_all(cgroup)
            process.wait()
            code = None
    return code, time.monotonic() - start, code is None


def _preexec(limits: SandboxLimits, cgroup: Path | None) -> Callable[[], None]:
    """Return the child's pre-exec step: join the cgroup, then set the rlimits."""
    rlimits = [
        (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
        (resource.RLIMIT_FSIZE, limits.output_bytes, limits.output_bytes),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    if limits.memory_bytes is not None:
        rlimits.append((resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes))
    procs = str(cgroup / "cgroup.procs") if cgroup is not None else None

    def apply() -> None:  # pragma: no cover - runs in the forked child
        if procs is not None:
            with open(procs, "w") as handle:
                handle.write(str(os.getpid()))
        for kind, soft, hard in rlimits:
            resource.setrlimit(kind, (soft, hard))

    return apply


def _limits_hit(code: int | None, output: str, cgroup: Path | None) -> tuple[str, ...]:
    """Name the limits a run ran into, from its exit status, output and cgroup events."""
    hit = []
    signal_number = -code if code is not None and code < 0 else 0
    if code is not None and code > 128:
        signal_number = code - 128  # the wrappers report a signalled child as 128 + n
    if cgroup is not None and pids_cgroup.refused_forks(cgroup) > 0:
        hit.append("processes")
    if code is None:
        hit.append("wall")
    named = {int(signal.SIGXCPU): "cpu", int(signal.SIGXFSZ): "output"}
    if signal_number in named:
        hit.append(named[signal_number])
    if any(marker in output for marker in _MEMORY_MARKERS):
        hit.append("memory")
    if _STACK_MARKER in output:
        hit.append("stack")
    return tuple(hit)


def excerpt(log: Path) -> str:
    """Return the log, or its head and tail around a truncation marker if it is long.

    Example:
        >>> excerpt(Path("/dev/null"))
        ''
    """
    size = log.stat().st_size
    half = EXCERPT_CHARS // 2
    with log.open("rb") as handle:
        if size <= EXCERPT_CHARS:
            return handle.read().decode("utf-8", errors="replace")
        head = handle.read(half)
        handle.seek(size - half)
        tail = handle.read()
    dropped = size - len(head) - len(tail)
    return (
        head.decode("utf-8", errors="replace")
        + f"\n... [{dropped} bytes of output truncated] ...\n"
        + tail.decode("utf-8", errors="replace")
    )
