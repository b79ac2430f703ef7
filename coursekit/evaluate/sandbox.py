r"""Run an untrusted command under limits, in its own directory, without network.

Every run gets, where the OS allows it (probed once per process, see :func:`isolation`):

- **limits** (``setrlimit`` before exec): CPU seconds, address space, file size (which
  caps the captured output: a bigger write gets ``SIGXFSZ``), no core dumps;
- **wall time**: the whole process group is killed with ``SIGKILL`` when it runs over;
- **processes**: a fresh ``pids`` cgroup with ``pids.max`` (``RLIMIT_NPROC`` does not bind
  root); every process left in it afterwards is killed and counted;
- **namespaces** through ``unshare``: a new network namespace (only loopback, down), a PID
  namespace (everything dies with its init) and a mount namespace in which every mount is
  remounted read-only except the sandbox directory, so a write elsewhere *fails*;
- a scrubbed environment: ``PATH``, ``HOME`` and ``TMPDIR`` (the sandbox directory),
  ``LANG``, plus what the caller adds.

What is not isolated: reads (the command can read any file the user can), and, where a
probe fails, the corresponding layer; :class:`SandboxResult` reports which layers held.

Example:
    >>> result = run_sandboxed(["sh", "-c", "echo hi"], directory=tmp)  # doctest: +SKIP
    >>> (result.exit_code, result.output, result.network_isolated)  # doctest: +SKIP
    (0, 'hi\n', True)
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from coursekit.evaluate import pids_cgroup

EXCERPT_CHARS = 4000
"""Characters of output kept in :attr:`SandboxResult.output` (head and tail)."""
_NAMESPACES = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
# Inside the new mount namespace: keep the sandbox writable, make every other mount read-only.
# The command runs as a child so that death by a signal comes back as exit status 128 + n
# (unshare itself cannot re-raise some signals everywhere).
_READ_ONLY = r"""
d="$1"; shift
mount --make-rprivate / && mount --bind "$d" "$d" || exit 125
for m in $(awk '{print $2}' /proc/self/mounts | sort -u); do
  [ "$m" = "$d" ] || mount -o remount,bind,ro "$m" 2>/dev/null
done
cd "$d" || exit 125
"$@"
exit $?
"""


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """Limits of one sandboxed run (defaults suit a unit-test binary).

    Example:
        >>> SandboxLimits(wall_seconds=2).cpu_seconds
        10
    """

    wall_seconds: float = 10.0
    """Wall-clock limit; the process group is killed after it."""
    cpu_seconds: int = 10
    """``RLIMIT_CPU``; the kernel sends ``SIGXCPU``/``SIGKILL`` after it."""
    memory_bytes: int | None = 1 << 30
    """``RLIMIT_AS`` (address space), or None for none (compilers map a lot)."""
    max_processes: int = 64
    """``pids.max`` of the run's cgroup: processes and threads together."""
    output_bytes: int = 8 << 20
    """``RLIMIT_FSIZE``: the captured output and any file the command writes."""

    def __post_init__(self) -> None:
        checks = [
            ("wall_seconds", self.wall_seconds > 0, "must be > 0"),
            ("cpu_seconds", self.cpu_seconds >= 1, "must be >= 1"),
            ("memory_bytes", self.memory_bytes is None or self.memory_bytes >= 1 << 20, ">= 1 MiB"),
            ("max_processes", self.max_processes >= 1, "must be >= 1"),
            ("output_bytes", self.output_bytes >= 1024, "must be >= 1024"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(
                    f"SandboxLimits.{name} {rule} (got {getattr(self, name)!r}); raise it"
                )


@dataclass(frozen=True, kw_only=True)
class Isolation:
    """Which isolation layers this machine allows (see :func:`isolation`)."""

    namespaces: bool
    """Network, PID and mount namespaces through ``unshare``."""
    read_only: bool = False
    """Whether, inside them, a write outside the sandbox directory was seen to fail."""
    pids_cgroup: Path | None
    """The cgroup directory under which per-run ``pids`` cgroups are made, if writable."""


@dataclass(frozen=True, kw_only=True)
class SandboxResult:
    """What happened to one sandboxed command."""

    exit_code: int | None
    """Exit status (negative: killed by that signal); None when killed for wall time."""
    wall_seconds: float
    """Wall time of the run."""
    timed_out: bool
    """Killed for exceeding the wall-time limit."""
    limits_hit: tuple[str, ...]
    """Limits it ran into: ``processes``, ``wall``, ``cpu``, ``output``, ``memory``."""
    output: str
    """Excerpt of stdout and stderr together."""
    output_bytes: int
    """Bytes of output written (at most the output limit)."""
    stray_processes: int
    """Processes still alive after the command ended, then killed."""
    network_isolated: bool
    """Whether the run had its own network namespace (no network)."""
    filesystem_isolated: bool
    """Whether writes outside the sandbox directory were impossible (read-only mounts)."""
    processes_limited: bool
    """Whether a ``pids`` cgroup capped the process count."""


@functools.cache
def isolation() -> Isolation:
    """Probe, once per process, which isolation layers work here.

    Example:
        >>> isinstance(isolation().namespaces, bool)
        True
    """
    with tempfile.TemporaryDirectory(prefix="coursekit-probe-") as tmp:
        inside, outside = Path(tmp) / "inside", Path(tmp) / "outside"
        inside.mkdir()
        touch = ["sh", "-c", 'touch "$0" 2>/dev/null; exit 0', str(outside)]
        try:
            done = subprocess.run(
                [*_NAMESPACES, "sh", "-c", _READ_ONLY, "probe", str(inside), *touch],
                capture_output=True,
                timeout=10,
                check=False,
            )
            namespaces = done.returncode == 0
        except (OSError, subprocess.SubprocessError):
            namespaces = False
        read_only = namespaces and not outside.exists()
    return Isolation(
        namespaces=namespaces, read_only=read_only, pids_cgroup=pids_cgroup.find_root()
    )


def run_sandboxed(
    command: Sequence[str],
    *,
    directory: str | os.PathLike[str],
    limits: SandboxLimits | None = None,
    env: Mapping[str, str] | None = None,
) -> SandboxResult:
    """Run ``command`` in ``directory`` under ``limits`` and every isolation layer available.

    Args:
        command: program and arguments.
        directory: an existing directory: the working directory, ``HOME``, and the only
            place the command can write (where namespaces work).
        limits: the limits (default :class:`SandboxLimits`).
        env: extra environment variables on top of the scrubbed ones.

    Returns:
        The outcome; a crash, a timeout or a limit is a result, not an exception.

    Example:
        >>> run_sandboxed(["true"], directory=tmp).exit_code  # doctest: +SKIP
        0
    """
    limits = limits or SandboxLimits()
    layers = isolation()
    work = Path(directory).resolve()
    log = work.parent / f".{work.name}.{uuid.uuid4().hex}.log"
    cgroup = pids_cgroup.make(layers.pids_cgroup, limits.max_processes)
    wrapped = list(command)
    if layers.namespaces:
        wrapped = [*_NAMESPACES, "sh", "-c", _READ_ONLY, "sandbox", str(work), *wrapped]
    try:
        code, seconds, timed_out = _run(
            wrapped, work, {**scrubbed_env(work), **(env or {})}, log, limits, cgroup
        )
        strays = pids_cgroup.kill_all(cgroup)
        output, size = excerpt(log), log.stat().st_size
        limits_hit = _limits_hit(code, output, cgroup)
    finally:
        log.unlink(missing_ok=True)
        pids_cgroup.remove(cgroup)
    return SandboxResult(
        exit_code=code,
        wall_seconds=seconds,
        timed_out=timed_out,
        limits_hit=limits_hit,
        output=output,
        output_bytes=size,
        stray_processes=strays,
        network_isolated=layers.namespaces,
        filesystem_isolated=layers.read_only,
        processes_limited=cgroup is not None,
    )


def scrubbed_env(home: Path) -> dict[str, str]:
    """Return the minimal environment of a sandboxed command.

    Example:
        >>> sorted(scrubbed_env(Path("/tmp/x")))[:2]
        ['HOME', 'LANG']
    """
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
    }


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
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_FSIZE, limits.output_bytes),
        (resource.RLIMIT_CORE, 0),
    ]
    if limits.memory_bytes is not None:
        rlimits.append((resource.RLIMIT_AS, limits.memory_bytes))
    procs = str(cgroup / "cgroup.procs") if cgroup is not None else None

    def apply() -> None:  # pragma: no cover - runs in the forked child
        if procs is not None:
            with open(procs, "w") as handle:
                handle.write(str(os.getpid()))
        for kind, value in rlimits:
            resource.setrlimit(kind, (value, value + (kind == resource.RLIMIT_CPU)))

    return apply


def _limits_hit(code: int | None, output: str, cgroup: Path | None) -> tuple[str, ...]:
    """Name the limits a run ran into, from its exit status, output and cgroup events."""
    hit = []
    signal_number = -code if code is not None and code < 0 else 0
    if code is not None and code > 128:
        signal_number = code - 128  # unshare reports a signalled child as 128 + n
    if cgroup is not None and pids_cgroup.refused_forks(cgroup) > 0:
        hit.append("processes")
    if code is None:
        hit.append("wall")
    named = {int(signal.SIGXCPU): "cpu", int(signal.SIGXFSZ): "output"}
    if signal_number in named:
        hit.append(named[signal_number])
    if "memory allocation of" in output:
        hit.append("memory")
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
