r"""apt for another Debian suite than the machine's own, with no root and no system change.

The committed corpus began with the machine's suite (Debian bookworm). Newer suites ship
more Rust crates (trixie: 3,070 ``librust-*-dev`` packages against bookworm's 1,513), so the
corpus takes the crates that only a newer suite has from it. :func:`apt_options` makes a
private apt state for a suite under ``<cache>/apt/<suite>/`` (its own ``sources.list``,
package lists and an empty status file), so ``apt-get update``/``download`` for that suite
touch nothing of the system's apt. Packages are still verified by apt against Debian's
archive keyring (``/usr/share/keyrings/debian-archive-keyring.gpg``).

A manifest names such a package as ``<package>@<suite>`` (``librust-foo-dev@trixie``);
:func:`split_source` reads that form back.

Example:
    >>> split_source("librust-foo-dev@trixie")
    ('librust-foo-dev', 'trixie')
    >>> split_source("librust-foo-dev")
    ('librust-foo-dev', '')
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from coursekit.errors import CoursekitError

MIRROR = "http://deb.debian.org/debian"
"""The Debian archive the private suites read."""
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
"""Debian's archive keyring (package ``debian-archive-keyring``); apt checks the suite's
``InRelease`` signature with it."""
_SUITE = re.compile(r"[a-z][a-z0-9-]{1,30}")


class SuiteError(CoursekitError, ValueError):
    """A Debian suite cannot be set up or read."""


def split_source(source: str) -> tuple[str, str]:
    """Split a manifest source ``package@suite`` into (package, suite).

    The suite is ``""`` for the machine's own.

    Raises:
        SuiteError: the suite name is not a plain Debian suite name.
    """
    package, _, suite = source.partition("@")
    if suite and not _SUITE.fullmatch(suite):
        raise SuiteError(
            f"{source}: {suite!r} is not a Debian suite name (like 'trixie'); fix the source"
        )
    return package, suite


def apt_options(cache: Path, suite: str) -> list[str]:
    """Return the ``-o`` options of a private apt for ``suite`` under ``cache/apt/suite``.

    Creates the directories, ``sources.list`` and an empty status file the first time.

    Raises:
        SuiteError: the suite name is invalid, or Debian's archive keyring is missing.

    Example:
        >>> apt_options(Path("/tmp/c"), "trixie")[:2]  # doctest: +SKIP
        ['-o', 'Dir::Etc::SourceList=/tmp/c/apt/trixie/sources.list']
    """
    split_source(f"x@{suite}")
    if not KEYRING.is_file():
        raise SuiteError(
            f"{KEYRING}: missing; install the Debian package debian-archive-keyring to fetch "
            f"from suite {suite}"
        )
    root = cache / "apt" / suite
    for sub in ("lists/partial", "cache/archives/partial"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sources = root / "sources.list"
    if not sources.is_file():
        sources.write_text(f"deb [signed-by={KEYRING}] {MIRROR} {suite} main\n")
    (root / "status").touch()
    settings = {
        "Dir::Etc::SourceList": sources,
        "Dir::Etc::SourceParts": root / "sources.list.d",
        "Dir::State::Lists": root / "lists",
        "Dir::State::Status": root / "status",
        "Dir::Cache": root / "cache",
        "Debug::NoLocking": 1,
    }
    return [part for key, value in settings.items() for part in ("-o", f"{key}={value}")]


def update(cache: Path, suite: str) -> list[str]:
    """Read ``suite``'s package lists once (skipped when they are there); return the options.

    Raises:
        SuiteError: ``apt-get update`` fails (the message has apt's last line).
    """
    options = apt_options(cache, suite)
    lists = cache / "apt" / suite / "lists"
    if not any(lists.glob("*_Packages*")):
        done = _run(["apt-get", *options, "update"])
        if done.returncode != 0 or not any(lists.glob("*_Packages*")):
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SuiteError(
                f"apt-get update for suite {suite} failed ({last}); check that "
                f"{MIRROR} is reachable"
            )
    return options


def rust_packages(cache: Path, suite: str) -> list[str]:
    """Return the sorted ``librust-*-dev`` packages of ``suite``, without feature packages.

    Feature packages (names with ``+``) hold no source of their own.

    Example:
        >>> len(rust_packages(cache, "trixie"))  # doctest: +SKIP
        3070
    """
    return _source_packages(update(cache, suite))


def machine_rust_packages() -> list[str]:
    """Return the sorted ``librust-*-dev`` packages of the machine's own apt suite.

    Feature packages are left out, as in :func:`rust_packages`.

    Example:
        >>> machine_rust_packages()[:1]  # doctest: +SKIP
        ['librust-abomonation-dev']
    """
    return _source_packages([])


def _source_packages(options: list[str]) -> list[str]:
    """List ``apt-cache pkgnames librust-`` under ``options``, keeping ``-dev`` without ``+``."""
    names = _run(["apt-cache", *options, "pkgnames", "librust-"]).stdout.split()
    return sorted(n for n in names if n.endswith("-dev") and "+" not in n)


def new_rust_packages(cache: Path, suite: str) -> list[str]:
    """Return ``suite``'s Rust packages whose crate the machine's own suite does not ship.

    Crates are compared by package name without a version suffix (``librust-foo-0.3-dev``
    is crate ``foo``), so a newer suite's second version of a known crate is left out and
    the corpus keeps one version per crate.

    Example:
        >>> new_rust_packages(cache, "trixie")[:1]  # doctest: +SKIP
        ['librust-abi-stable-dev']
    """
    known = {crate_key(n) for n in machine_rust_packages()}
    return [p for p in rust_packages(cache, suite) if crate_key(p) not in known]


def crate_key(package: str) -> str:
    """Return the crate part of a ``librust-<crate>[-<version>]-dev`` package name.

    Example:
        >>> crate_key("librust-foo-bar-0.3-dev")
        'foo-bar'
    """
    core = package.removeprefix("librust-").removesuffix("-dev")
    return re.sub(r"-[0-9][0-9.]*$", "", core)


def download(packages: list[str], debs: Path, cache: Path, suite: str) -> int:
    """Run ``apt-get download`` for ``packages`` of ``suite`` into ``debs``; return its status."""
    options = update(cache, suite)
    return _run(["apt-get", *options, "download", *packages], cwd=debs).returncode


def _run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run an apt tool quietly."""
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SuiteError(
            f"{command[0]}: not found; fetching from Debian needs apt-get and apt-cache"
        ) from None
