r"""Prove which sandbox layers hold here by attempting each escape inside the sandbox.

:func:`probe` picks the strongest backend that starts (:mod:`coursekit.evaluate.jail`),
then runs one script through it, exactly as :func:`coursekit.evaluate.sandbox.run_sandboxed`
runs untrusted code, that tries to get out:

- **unprivileged**: creates a file in the work directory (whose owner, seen from the host,
  is its host uid) and reports ``CapEff`` and ``NoNewPrivs``; held when that uid is not 0,
  no capability is left and ``no_new_privs`` is set;
- **filesystem**: writes a host file outside the work directory and appends to a host file
  it can see read-only (mode 0666, so only the mount stops it); remounts every mount
  read-write and tries again; tries again from a nested user namespace; writes a sysctl
  (its own value back); held when the host sees no change. Remounts and the sysctl are
  tried only inside a jail's namespaces: with the ``none`` backend they would act on the
  host itself (and the plain write already shows the layer missing);
- **network**: connects to a listener this process opened on 127.0.0.1; held when
  nothing connects;
- **processes**: writes ``max`` into its own ``pids.max`` (directly, after a remount, and
  through a cgroup file system mounted in a nested user namespace), then forks
  ``sleep`` until refused; held when fewer processes ran than the limit;
- **limits**: raises its hard ``RLIMIT_CPU``, ``RLIMIT_AS`` and ``RLIMIT_FSIZE``; held
  when each is refused;
- **cleanup**: leaves a ``setsid`` background process; held when it is dead afterwards.

:func:`isolation` caches the result per process; ``coursekit doctor`` shows it as one row.

Example:
    >>> report = isolation()  # doctest: +SKIP
    >>> report.holds("network"), report.missing  # doctest: +SKIP
    (True, ())
"""

from __future__ import annotations

import functools
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from coursekit.evaluate import jail, pids_cgroup
from coursekit.evaluate.runner import SandboxInputError, SandboxLimits

LAYERS = ("unprivileged", "filesystem", "network", "processes", "limits", "cleanup")
"""Every layer the self-test probes, in the order it reports them."""
PROBE_TASKS = 8
"""``max_processes`` of the probe run."""
ENV_BACKEND = "COURSEKIT_SANDBOX"
"""Environment variable that forces a backend (``bubblewrap``, ``unshare``, ``none``)."""
_SCRIPT = r"""
outside="$1"; port="$2"; marker="$3"; guarded="$4"; jailed="$5"
: > .owner
grep -E '^(CapEff|NoNewPrivs):' /proc/self/status | tr -d ' \t' | tr ':' '='
setsid sleep "$marker" </dev/null >/dev/null 2>&1 &
write() { echo "$1" > "$outside"; echo "$1" >> "$guarded"; } 2>/dev/null
write plain
remount() { for m in "$@"; do mount -o remount,bind,rw "$m"; done 2>/dev/null; }
# Without a jail these would be the host's own mounts and sysctls: never touch them then.
if [ "$jailed" = 1 ]; then remount / $(awk '{print $2}' /proc/self/mounts); write remount; fi
unshare -Urm sh -c 'for m in $(awk "{print \$2}" /proc/self/mounts); do
  mount -o remount,bind,rw "$m"; done; echo nested > "$0"; echo nested >> "$1"' \
  "$outside" "$guarded" 2>/dev/null
if [ "$jailed" = 1 ] && v=$(cat /proc/sys/kernel/printk_ratelimit 2>/dev/null); then
  (echo "$v" > /proc/sys/kernel/printk_ratelimit) 2>/dev/null && echo sysctl=written
fi
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && echo net=connected
for limit in t v f; do ulimit -H -"$limit" unlimited 2>/dev/null && echo "rlimit=$limit"; done
cg=$(sed -n -e 's/^[0-9]*:pids://p' -e 's/^0:://p' /proc/self/cgroup | head -n1)
raise() { for f in "$@"; do echo max > "$f"; done 2>/dev/null; }
raise "/sys/fs/cgroup/pids$cg/pids.max" "/sys/fs/cgroup$cg/pids.max"
if [ "$jailed" = 1 ]; then
  remount /sys/fs/cgroup/pids /sys/fs/cgroup
  raise "/sys/fs/cgroup/pids$cg/pids.max" "/sys/fs/cgroup$cg/pids.max"
fi
mkdir cg && unshare -UrmC sh -c '{ mount -t cgroup -o pids none cg || mount -t cgroup2 none cg
  } && for f in cg/pids.max cg"$0"/pids.max; do echo max > "$f"; done' "$cg" 2>/dev/null
sh -c 'n=0; while [ $n -lt 24 ]; do sleep 30 & n=$((n+1)); echo "forks=$n"; done' 2>/dev/null
"""


@dataclass(frozen=True, kw_only=True)
class Layer:
    """One isolation layer and what its escape attempt saw."""

    name: str
    """One of :data:`LAYERS`."""
    enforced: bool
    """Whether the escape attempt failed (the layer holds)."""
    detail: str
    """What was seen, or why the layer is missing."""


@dataclass(frozen=True, kw_only=True)
class Isolation:
    """The self-test's verdict: the backend in use and which layers hold.

    Example:
        >>> Isolation(backend="none", version="none", layers=(), fix="", pids_cgroup=None,
        ...     seconds=0.0).missing
        ()
    """

    backend: str
    """The backend every sandboxed run uses (:data:`coursekit.evaluate.jail.BACKENDS`)."""
    version: str
    """The backend's version, e.g. ``bubblewrap 0.8.0``."""
    layers: tuple[Layer, ...]
    """Every probed layer, in :data:`LAYERS` order."""
    fix: str
    """What to do about the missing layers ("" when all hold)."""
    pids_cgroup: Path | None
    """Where per-run ``pids`` cgroups are made (None: nowhere writable)."""
    seconds: float
    """Wall time of the probe."""

    def holds(self, name: str) -> bool:
        """Return whether layer ``name`` was seen to hold."""
        return any(layer.name == name and layer.enforced for layer in self.layers)

    @property
    def missing(self) -> tuple[str, ...]:
        """Names of the layers that do not hold."""
        return tuple(layer.name for layer in self.layers if not layer.enforced)

    def why(self, name: str) -> str:
        """Return one line saying why layer ``name`` does not hold (for skips and doctor)."""
        detail = next((layer.detail for layer in self.layers if layer.name == name), "")
        return f"sandbox layer {name!r} not enforced ({self.version}): {detail}; {self.fix}"


_PROBING = threading.Lock()


def isolation() -> Isolation:
    """Return :func:`probe`'s verdict, computed once per process (threads wait for it)."""
    with _PROBING:
        return _isolation()


@functools.cache
def _isolation() -> Isolation:
    return probe()


def probe(backend: str | None = None) -> Isolation:
    """Pick a backend (the strongest that starts, or ``backend``) and try every escape.

    Args:
        backend: force one of :data:`coursekit.evaluate.jail.BACKENDS`; default: the
            environment variable ``COURSEKIT_SANDBOX``, else the strongest that starts.

    Raises:
        SandboxInputError: ``backend`` (or ``COURSEKIT_SANDBOX``) is not a known backend.
    """
    start = time.monotonic()
    chosen, skipped = _choose(backend or os.environ.get(ENV_BACKEND) or None)
    cgroup_root = pids_cgroup.find_root()
    with tempfile.TemporaryDirectory(prefix="coursekit-selftest-") as tmp:
        layers = _attempt(chosen, Path(tmp).resolve(), cgroup_root)
    fix = _fix(chosen, skipped, layers)
    return Isolation(
        backend=chosen,
        version=jail.version(chosen),
        layers=layers,
        fix=fix,
        pids_cgroup=cgroup_root,
        seconds=time.monotonic() - start,
    )


def _choose(forced: str | None) -> tuple[str, list[str]]:
    """Return the backend to use and, for each stronger one skipped, why."""
    if forced is not None and forced not in jail.BACKENDS:
        raise SandboxInputError(
            f"{ENV_BACKEND}={forced!r} is not a sandbox backend; use one of "
            f"{', '.join(jail.BACKENDS)} (or unset it)"
        )
    if forced is not None:
        reason = jail.available(forced)
        return (forced, [f"forced by {ENV_BACKEND}={forced}"]) if not reason else ("none", [reason])
    skipped = []
    for backend in jail.BACKENDS:
        reason = jail.available(backend)
        if not reason:
            return backend, skipped
        skipped.append(reason)
    return "none", skipped


def _attempt(backend: str, tmp: Path, cgroup_root: Path | None) -> tuple[Layer, ...]:
    """Run the escape script through ``backend`` and judge each layer from the host."""
    box, outside, guarded = tmp / "box", tmp / "outside", tmp / "guarded"
    box.mkdir()
    tmp.chmod(0o777)  # only the mounts, not file modes, may stop the writes
    guarded.write_text("unchanged\n")
    guarded.chmod(0o666)
    marker = f"{uuid.uuid4().int % 10_000 + 1000}.{os.getpid() % 1000:03d}"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        jailed = "0" if backend == "none" else "1"
        script = ["bash", "-c", _SCRIPT, "probe", str(outside), str(port), marker, str(guarded)]
        script.append(jailed)
        limits = SandboxLimits(wall_seconds=20, cpu_seconds=20, max_processes=PROBE_TASKS)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(box), "LANG": "C.UTF-8"}
        outcome = jail.run(
            backend, script, work=box, limits=limits, env=env, readable=[guarded],
            cgroup_root=cgroup_root,
        )  # fmt: skip
        connected = _accepted(listener)
    seen = dict(re.findall(r"^(\w+)=(\S*)", outcome.output, re.MULTILINE))
    wrote = outside.exists() or guarded.read_text() != "unchanged\n" or "sysctl" in seen
    stray = _alive(f"sleep {marker}", kill=True)
    forks = max((int(n) for n in re.findall(r"^forks=(\d+)$", outcome.output, re.M)), default=0)
    return (
        _unprivileged(seen, box / ".owner"),
        Layer(name="filesystem", enforced=not wrote, detail=_filesystem_detail(wrote, seen)),
        Layer(
            name="network",
            enforced=not connected and "net" not in seen,
            detail="a connection to a listener on the host's 127.0.0.1 got through"
            if connected or "net" in seen
            else "no route to the host's 127.0.0.1 (own network namespace)",
        ),
        _processes(outcome.cgroup_used, forks),
        Layer(
            name="limits",
            enforced=not any(key == "rlimit" for key in seen),
            detail="a hard rlimit was raised from inside"
            if "rlimit" in seen
            else "hard rlimits (cpu, address space, file size) cannot be raised",
        ),
        Layer(
            name="cleanup",
            enforced=not stray,
            detail="a setsid background process outlived the run"
            if stray
            else "background processes die with the run",
        ),
    )


def _unprivileged(seen: dict[str, str], made: Path) -> Layer:
    """Judge the identity the command ran with: its file's host owner, its capabilities."""
    try:
        host_uid = made.stat().st_uid
        caps = int(seen["CapEff"], 16)
    except (OSError, KeyError, ValueError):
        return Layer(name="unprivileged", enforced=False, detail="the probe did not report")
    no_new_privs = seen.get("NoNewPrivs") == "1"
    enforced = host_uid != 0 and caps == 0 and no_new_privs
    detail = (
        f"host uid {host_uid}, capabilities {caps:#x}, "
        f"no_new_privs {'set' if no_new_privs else 'unset'}"
    )
    return Layer(name="unprivileged", enforced=enforced, detail=detail)


def _filesystem_detail(wrote: bool, seen: dict[str, str]) -> str:
    if "sysctl" in seen:
        return "a sysctl under /proc/sys was written"
    if wrote:
        return "a write outside the work directory reached the host"
    return "writes outside the work directory fail, also after remount attempts"


def _processes(cgroup_used: bool, forks: int) -> Layer:
    if not cgroup_used:
        detail = "no writable pids cgroup (it needs root with /sys/fs/cgroup writable)"
        return Layer(name="processes", enforced=False, detail=detail)
    if forks >= PROBE_TASKS:
        detail = f"{forks} processes started under max_processes={PROBE_TASKS}"
        return Layer(name="processes", enforced=False, detail=detail)
    detail = f"pids.max held: forks refused after {forks} under max_processes={PROBE_TASKS}"
    return Layer(name="processes", enforced=True, detail=detail)


def _fix(backend: str, skipped: list[str], layers: tuple[Layer, ...]) -> str:
    """Say how to get the missing layers: the stronger backends' reasons first."""
    missing = [layer.name for layer in layers if not layer.enforced]
    if not missing:
        return ""
    hints = list(skipped) if backend != "bubblewrap" else []
    if "processes" in missing and any(
        layer.name == "processes" and "no writable" in layer.detail for layer in layers
    ):
        hints.append("run as root for a per-run pids cgroup")
    return "; ".join(hints) or f"{backend} does not enforce it on this machine"


def _accepted(listener: socket.socket) -> bool:
    """Return whether a connection is waiting on the non-blocking ``listener``."""
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


def _alive(command: str, *, kill: bool = False) -> bool:
    """Return whether a process runs exactly ``command``; ``kill`` ends it (and says True)."""
    found = False
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().replace(b"\0", b" ").strip() == command.encode():
                found = True
                if kill:
                    os.kill(int(cmdline.parent.name), 9)
        except (OSError, ValueError):
            continue
    return found


def doctor_row(report: Isolation | None = None) -> tuple[str, str, str]:
    """Return ``coursekit doctor``'s sandbox row as (status, detail, fix).

    OK when every layer held; WARN naming each layer that did not, why, and the fix.

    Example:
        >>> doctor_row(Isolation(backend="none", version="none", fix="f", pids_cgroup=None,
        ...     seconds=0.1, layers=(Layer(name="network", enforced=False, detail="d"),)))
        ('WARN', 'none: not enforced: network (d)', 'f')
    """
    try:
        report = report if report is not None else isolation()
    except SandboxInputError as error:
        return "WARN", str(error), f"unset {ENV_BACKEND}"
    if not report.missing:
        held = ", ".join(layer.name for layer in report.layers)
        who = next(layer.detail for layer in report.layers if layer.name == "unprivileged")
        return "OK", f"{report.version}: {held} hold ({who}; self-test {report.seconds:.1f} s)", ""
    gaps = ", ".join(
        f"{layer.name} ({layer.detail})" for layer in report.layers if not layer.enforced
    )
    return "WARN", f"{report.version}: not enforced: {gaps}", report.fix
