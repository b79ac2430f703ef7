r"""Wrap a command so that it runs without privileges, in its own namespaces.

Three backends, best first (:func:`available` says which work here, and why not):

``bubblewrap``
    Debian's ``bwrap`` (Flatpak's sandbox). A new, empty root holds only read-only binds of
    the system (``/usr``, ``/etc``, the ``/bin``-style links), of what the caller names
    readable (the Rust toolchain), a private ``/tmp``, a fresh ``/proc`` and minimal
    ``/dev``, and the work directory, the only thing writable. New PID, network (loopback
    only), IPC, UTS and cgroup namespaces; ``--die-with-parent``; ``no_new_privs``. Run by
    root, bwrap keeps only ``CAP_SETUID``/``CAP_SETGID``/``CAP_SETPCAP`` for ``setpriv``,
    which becomes uid/gid 65534 (``nobody``) with empty capability sets before the program
    starts; run by anyone else, bwrap makes a user namespace (the caller's own uid, no
    capabilities) and forbids nested ones.
``unshare``
    util-linux's ``unshare`` (network, mount, PID namespaces; a user namespace when not
    root), every mount remounted read-only but the work directory, ``/run`` hidden, then
    ``setpriv`` drops every capability (bounding and inheritable sets) and sets
    ``no_new_privs``. The uid stays the caller's (root stays uid 0, without capabilities),
    and the whole file system stays readable.
``none``
    The command itself: only the limits of :mod:`coursekit.evaluate.runner` apply.

Example:
    >>> wrap("none", ["true"], work=Path("/tmp/x"), readable=())
    ['true']
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from coursekit.evaluate.runner import Outcome, SandboxLimits, execute

BACKENDS = ("bubblewrap", "unshare", "none")
"""Every backend, strongest first."""
SANDBOX_UID = 65534
"""The uid and gid (``nobody``/``nogroup``) a root caller's command runs as under bwrap."""
INSTALL_BWRAP = "apt-get install bubblewrap"
"""How to get the strongest backend on Debian and Ubuntu (``dnf install bubblewrap``...)."""
TMP_BYTES = 64 << 20
"""Size of the sandbox's private ``/tmp`` (a tmpfs: its pages are memory)."""
SYSTEM = ("/usr", "/etc")
"""Read-only in every bubblewrap sandbox, with the top-level links and dirs below."""
_TOP_LEVEL = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_OPTIONAL = ("/nix/store",)
_UNSHARE = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
# Inside the new mount namespace: hide /run (daemons' sockets), keep the work directory
# writable, make every other mount read-only, then drop every capability. The command runs
# as a child so that death by a signal comes back as exit status 128 + n.
_READ_ONLY = r"""
d="$1"; shift
mount --make-rprivate / && mount --bind "$d" "$d" || exit 125
case "$d" in /run|/run/*) ;; *) [ -d /run ] && mount -t tmpfs -o mode=755 tmpfs /run ;; esac
for m in $(awk '{print $2}' /proc/self/mounts | sort -u); do
  [ "$m" = "$d" ] || mount -o remount,bind,ro "$m" 2>/dev/null
done
cd "$d" || exit 125
setpriv --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
exit $?
"""


def is_root() -> bool:
    """Return whether this process runs as root (then bwrap drops to :data:`SANDBOX_UID`)."""
    return os.geteuid() == 0


def drops_to_nobody(backend: str) -> bool:
    """Return whether ``backend`` runs the command as :data:`SANDBOX_UID` (work dir chowned).

    Example:
        >>> drops_to_nobody("none")
        False
    """
    return backend == "bubblewrap" and is_root() and shutil.which("setpriv") is not None


def wrap(
    backend: str,
    command: Sequence[str],
    *,
    work: Path,
    readable: Sequence[Path],
    hidden: Sequence[Path] = (),
) -> list[str]:
    """Return ``command`` wrapped by ``backend`` (one of :data:`BACKENDS`).

    Args:
        backend: ``bubblewrap``, ``unshare`` or ``none``.
        command: the program and its arguments.
        work: the resolved work directory: the working directory and the only writable one.
        readable: resolved paths bound read-only (bubblewrap only; the other backends leave
            the whole file system readable).
        hidden: resolved paths inside ``readable`` that the command must not read: under
            bubblewrap an empty read-only tmpfs (a directory) or ``/dev/null`` (a file) is
            mounted over each; the other backends cannot hide them (:func:`hides`).
    """
    if backend == "bubblewrap":
        args = _bwrap_arguments(work, readable, hidden)
        return [*args, "--", *_privilege_drop(work), *command]
    if backend == "unshare":
        user = [] if is_root() else ["--user", "--map-root-user"]
        script = ["sh", "-c", _READ_ONLY, "jail", str(work)]
        return [_UNSHARE[0], *user, *_UNSHARE[1:], *script, *command]
    return list(command)


def _privilege_drop(work: Path) -> list[str]:
    """Root's bwrap keeps three capabilities for this setpriv; it ends them all."""
    if not drops_to_nobody("bubblewrap"):
        return []
    ids = str(SANDBOX_UID)
    return [
        *("setpriv", "--reuid", ids, "--regid", ids, "--clear-groups"),
        *("--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"),
        *("sh", "-c", 'cd -- "$0" && exec "$@"', str(work)),  # nobody's dir, mode kept
    ]


def hides(backend: str) -> bool:
    """Return whether ``backend`` can make paths inside ``readable`` unreadable (``hidden``).

    Example:
        >>> hides("bubblewrap"), hides("unshare"), hides("none")
        (True, False, False)
    """
    return backend == "bubblewrap"


def _bwrap_arguments(
    work: Path, readable: Sequence[Path], hidden: Sequence[Path] = ()
) -> list[str]:
    """Return bwrap and its options, up to (not including) ``--``."""
    args = [shutil.which("bwrap") or "bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net"]
    args += ["--unshare-uts", "--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    if drops_to_nobody("bubblewrap"):
        args += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):
            args += ["--cap-add", cap]
    elif is_root():  # no setpriv: a user namespace maps uid 65534 to root, no capabilities
        args += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
        args += _if_supported("--disable-userns")
    else:
        args += ["--unshare-user", *_if_supported("--disable-userns")]
    for path in SYSTEM:
        args += ["--ro-bind", path, path]
    for top in _TOP_LEVEL:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for path in _OPTIONAL:
        args += ["--ro-bind-try", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777"]
    args += [*_if_supported("--size", str(TMP_BYTES)), "--tmpfs", "/tmp"]
    made: set[Path] = {Path("/"), Path("/tmp")}
    for source, writable in [*((p, False) for p in readable if not _is_system(p)), (work, True)]:
        for parent in reversed(source.parents):
            if parent not in made and not _is_system(parent):
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        args += ["--bind" if writable else "--ro-bind", str(source), str(source)]
    args += _masks(hidden, readable)
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]  # no tmpfs pages but /tmp's
    return args if drops_to_nobody("bubblewrap") else [*args, "--chdir", str(work)]


def _masks(hidden: Sequence[Path], readable: Sequence[Path]) -> list[str]:
    """Mount over each hidden path that a readable bind exposes (the others do not exist)."""
    args: list[str] = []
    for path in hidden:
        exposed = any(path == top or top in path.parents for top in map(Path, readable))
        if not exposed and not _is_system(path):
            continue
        if path.is_dir():
            args += ["--perms", "0000", "--tmpfs", str(path), "--remount-ro", str(path)]
        elif path.exists():
            args += ["--ro-bind", "/dev/null", str(path)]
    return args


def _if_supported(option: str, *values: str) -> list[str]:
    """Return ``[option, *values]`` if this bwrap lists ``option`` in its ``--help``."""
    return [option, *values] if option in _bwrap_options() else []


@functools.cache
def _bwrap_options() -> frozenset[str]:
    """The options ``bwrap --help`` lists (0.8.0 has all; older ones may lack some)."""
    try:
        done = subprocess.run(
            [shutil.which("bwrap") or "bwrap", "--help"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(re.findall(r"^\s+(--[a-z0-9-]+)", done.stdout, re.MULTILINE))


def _is_system(path: Path) -> bool:
    """Whether ``path`` lies in a directory every bwrap sandbox binds already."""
    return any(path == Path(top) or Path(top) in path.parents for top in SYSTEM + _TOP_LEVEL)


def available(backend: str) -> str:
    """Return "" if ``backend`` starts a trivial command here, else why not (one line).

    Example:
        >>> available("none")
        ''
    """
    if backend == "none":
        return ""
    tool = "bwrap" if backend == "bubblewrap" else "unshare"
    if shutil.which(tool) is None:
        package = "bubblewrap" if tool == "bwrap" else "util-linux"
        return f"{tool} missing: {INSTALL_BWRAP if tool == 'bwrap' else 'install ' + package}"
    if backend == "unshare" and shutil.which("setpriv") is None:
        return "setpriv missing: install util-linux"
    with tempfile.TemporaryDirectory(prefix="coursekit-jail-") as tmp:
        work = Path(tmp).resolve()
        if drops_to_nobody(backend):
            os.chown(work, SANDBOX_UID, SANDBOX_UID)
        try:
            done = subprocess.run(
                wrap(backend, ["true"], work=work, readable=()),
                cwd=work,
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as error:
            return f"{tool} does not start: {error}"
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return f"{tool} cannot make its namespaces here ({said})"
    return ""


def version(backend: str) -> str:
    """Return ``bwrap --version`` ("bubblewrap 0.8.0"), or the backend's name.

    Example:
        >>> version("none")
        'none'
    """
    if backend != "bubblewrap":
        return backend
    try:
        done = subprocess.run(
            ["bwrap", "--version"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return backend
    return done.stdout.strip() or backend


def run(
    backend: str,
    command: Sequence[str],
    *,
    work: Path,
    limits: SandboxLimits,
    env: dict[str, str],
    readable: Sequence[Path] = (),
    cgroup_root: Path | None = None,
    hidden: Sequence[Path] = (),
) -> Outcome:
    """Run ``command`` wrapped by ``backend`` under ``limits`` (see :func:`runner.execute`).

    Where the command runs as :data:`SANDBOX_UID`, the work directory is lent to that uid
    for the run and given back afterwards; its mode is restored after every run (files the
    command made stay as it left them).
    """
    lend = drops_to_nobody(backend)
    owner = work.stat()
    if lend:
        os.chown(work, SANDBOX_UID, SANDBOX_UID)
    try:
        wrapped = wrap(backend, command, work=work, readable=readable, hidden=hidden)
        return execute(wrapped, work=work, env=env, limits=limits, cgroup_root=cgroup_root)
    finally:
        if lend:
            os.chown(work, owner.st_uid, owner.st_gid)
        os.chmod(work, stat.S_IMODE(owner.st_mode))
