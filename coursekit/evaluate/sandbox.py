r"""Run an untrusted command without privileges, under limits, in its own directory.

Every run is wrapped by the strongest backend this machine allows (bubblewrap, else
``unshare``, else none: :mod:`coursekit.evaluate.jail`) and gets:

- **no privileges**: under bubblewrap, uid 65534 when the caller is root (the caller's own
  uid otherwise), no capabilities, ``no_new_privs``: it cannot remount, write cgroup files
  or raise its limits;
- **file system**: only the work directory is writable; under bubblewrap only the system
  directories, the paths in ``readable`` and the work directory exist at all;
- **network**: its own network namespace (loopback only, not the host's);
- **processes**: a fresh ``pids`` cgroup with ``pids.max`` (where this process may make
  one), a PID namespace, and every process left is killed when the run ends;
- **limits** (``setrlimit`` before exec, hard = soft): CPU seconds, address space, file
  size (which caps the captured output), no core dumps; **wall time**: the process group
  and the cgroup are killed with ``SIGKILL`` when it runs over;
- a scrubbed environment: ``PATH``, ``HOME`` and ``TMPDIR`` (the work directory), ``LANG``,
  plus what the caller adds.

:class:`SandboxResult` claims a layer only where :func:`isolation`'s self-test saw the
escape fail (see :mod:`coursekit.evaluate.selftest`); ``docs/sandbox.md`` has the threat
model.

Example:
    >>> result = run_sandboxed(["sh", "-c", "echo hi"], directory=tmp)  # doctest: +SKIP
    >>> (result.exit_code, result.output, result.network_isolated)  # doctest: +SKIP
    (0, 'hi\n', True)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from coursekit.evaluate import jail
from coursekit.evaluate.checks import check_command, check_directory, check_env, check_paths
from coursekit.evaluate.runner import EXCERPT_CHARS as EXCERPT_CHARS
from coursekit.evaluate.runner import Outcome
from coursekit.evaluate.runner import SandboxInputError as SandboxInputError
from coursekit.evaluate.runner import SandboxLimits as SandboxLimits
from coursekit.evaluate.runner import excerpt as excerpt
from coursekit.evaluate.selftest import Isolation as Isolation
from coursekit.evaluate.selftest import isolation as isolation


@dataclass(frozen=True, kw_only=True)
class SandboxResult(Outcome):
    """What happened to one sandboxed command (its ``Outcome``), and which isolation it had."""

    network_isolated: bool
    """Whether the self-test saw the network layer hold (no route to the host's loopback)."""
    filesystem_isolated: bool
    """Whether the self-test saw every write outside the work directory fail, remounts too."""
    processes_limited: bool
    """Whether this run had a ``pids`` cgroup and the self-test saw ``pids.max`` hold."""
    unprivileged: bool = False
    """Whether the self-test saw the command run as a non-root uid without capabilities."""
    backend: str = "none"
    """The backend that wrapped the run: ``bubblewrap``, ``unshare`` or ``none``."""


def run_sandboxed(
    command: Sequence[str],
    *,
    directory: str | os.PathLike[str],
    limits: SandboxLimits | None = None,
    env: Mapping[str, str] | None = None,
    readable: Sequence[str | os.PathLike[str]] = (),
    hidden: Sequence[str | os.PathLike[str]] | None = None,
) -> SandboxResult:
    """Run ``command`` in ``directory`` under ``limits`` and every isolation layer available.

    Args:
        command: program and arguments; the program must lie in a system directory,
            ``readable`` or ``directory`` (under bubblewrap nothing else exists).
        directory: an existing directory: the working directory, ``HOME``, and the only
            place the command can write.
        limits: the limits (default :class:`SandboxLimits`).
        env: extra environment variables on top of the scrubbed ones.
        readable: more files or directories the command may read (bound read-only under
            bubblewrap), e.g. a Rust toolchain outside ``/usr``.
        hidden: files or directories inside ``readable`` the command must not read: under
            bubblewrap each is covered by an empty read-only mount (``jail.hides``; the other
            backends leave them readable). None: :func:`default_hidden`, coursekit's hidden
            grading checks; pass ``()`` to show them (the hidden-check run does).

    Returns:
        The outcome; a crash, a timeout or a limit is a result, not an exception.

    Raises:
        SandboxInputError: an argument is invalid (the message names it).

    Example:
        >>> run_sandboxed(["true"], directory=tmp).exit_code  # doctest: +SKIP
        0
    """
    argv = check_command(command)
    work = check_directory("directory", directory)
    extra = check_env(env)
    paths = check_paths("readable", readable)
    masked = check_paths("hidden", default_hidden() if hidden is None else hidden)
    if limits is None:
        limits = SandboxLimits()
    elif not isinstance(limits, SandboxLimits):
        raise SandboxInputError(f"limits must be a SandboxLimits (got {limits!r})")
    layers = isolation()
    outcome = jail.run(
        layers.backend,
        argv,
        work=work,
        limits=limits,
        env={**scrubbed_env(work), **extra},
        readable=paths,
        cgroup_root=layers.pids_cgroup,
        hidden=masked,
    )
    return SandboxResult(
        **{field.name: getattr(outcome, field.name) for field in dataclasses.fields(outcome)},
        network_isolated=layers.holds("network"),
        filesystem_isolated=layers.holds("filesystem"),
        processes_limited=outcome.cgroup_used and layers.holds("processes"),
        unprivileged=layers.holds("unprivileged"),
        backend=layers.backend,
    )


def default_hidden() -> list[Path]:
    """Return what every sandboxed run hides unless told otherwise: the hidden checks' folder.

    ``coursekit/grading/hidden/`` lies inside the coursekit package, which the grader's
    sandboxes bind readable (notebooks import coursekit), so it is masked by default.

    Example:
        >>> [path.name for path in default_hidden()]
        ['hidden']
    """
    folder = Path(__file__).resolve().parents[1] / "grading" / "hidden"
    return [folder] if folder.is_dir() else []


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
