r"""Crate sources: Debian's ``librust-*-dev`` packages or any local directory, with licenses.

Debian packages every crate it ships as ``librust-<crate>-dev``, whose data holds the crate
source under ``usr/share/cargo/registry/<crate>-<version>/``. :func:`fetch_debian` runs
``apt-get download`` (no root needed) into ``<cache>/debs`` and ``dpkg-deb -x`` into
``<cache>/src/<package>``; both steps are skipped when their output is already there.
:func:`read_crate` reads a crate's name, version and license from its ``Cargo.toml``, and
:func:`is_permissive` decides whether the corpus may keep it.

Example:
    >>> is_permissive("MIT OR Apache-2.0")
    True
    >>> is_permissive("GPL-3.0-only")
    False
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from coursekit.corpus import debian_suite
from coursekit.corpus.debian_suite import split_source
from coursekit.errors import CoursekitError

PERMISSIVE = frozenset(
    {
        "MIT",
        "MIT-0",
        "Apache-2.0",
        "Apache-2.0 WITH LLVM-exception",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "0BSD",
        "ISC",
        "Zlib",
        "BSL-1.0",
        "Unlicense",
        "CC0-1.0",
        "Unicode-DFS-2016",
        "Unicode-3.0",
    }
)
"""SPDX identifiers the corpus keeps (an expression is kept when one OR-branch is all in)."""
BATCH = 50
"""Packages per ``apt-get download`` call."""


class SourceError(CoursekitError, ValueError):
    """A crate cannot be fetched, unpacked or read."""


@dataclass(frozen=True, kw_only=True)
class CrateSource:
    """A crate's source tree and the provenance every sample records."""

    name: str
    """Crate name from ``Cargo.toml``."""
    version: str
    """Crate version from ``Cargo.toml``."""
    license: str
    """SPDX license expression from ``Cargo.toml`` (``""`` when absent)."""
    root: Path
    """Directory holding ``Cargo.toml`` and ``src/``."""


def is_permissive(expression: str) -> bool:
    """Return True when an SPDX expression allows a permissive reading.

    ``A OR B`` (and Cargo's old ``A/B``) is permissive when either side is; ``A AND B``
    when both are. Parentheses are ignored; that is safe for the flat expressions crates use.

    Example:
        >>> is_permissive("(MIT OR Apache-2.0) AND Unicode-DFS-2016")
        True
    """
    flat = expression.replace("(", " ").replace(")", " ").replace("/", " OR ")
    for branch in re.split(r"\s+OR\s+", flat.strip()):
        terms = [t.strip() for t in re.split(r"\s+AND\s+", branch) if t.strip()]
        if terms and all(t in PERMISSIVE for t in terms):
            return True
    return False


def read_crate(root: str | os.PathLike[str]) -> CrateSource:
    """Read name, version and license of the crate at ``root`` from its ``Cargo.toml``.

    Raises:
        SourceError: no ``Cargo.toml``, invalid TOML, or no ``[package]`` name/version.

    Example:
        >>> read_crate("tests/fixtures/crates/mini").license  # doctest: +SKIP
        'MIT'
    """
    root = Path(root)
    manifest = root / "Cargo.toml"
    if not manifest.is_file():
        raise SourceError(f"{root}: no Cargo.toml; pass the crate's root directory")
    try:
        package = tomllib.loads(manifest.read_text(encoding="utf-8")).get("package", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise SourceError(f"{manifest}: invalid TOML ({error}); fix the file") from None
    name, version = package.get("name"), package.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        raise SourceError(
            f"{manifest}: [package] needs string 'name' and 'version' (got {name!r}, "
            f"{version!r}); workspace-inherited values are not supported"
        )
    license = package.get("license", "")
    return CrateSource(
        name=name, version=version, license=license if isinstance(license, str) else "", root=root
    )


def default_cache_dir() -> Path:
    """Return ``$COURSEKIT_CRATE_CACHE``, else ``$XDG_CACHE_HOME/coursekit/crates``.

    ``XDG_CACHE_HOME`` defaults to ``~/.cache``.

    Example:
        >>> default_cache_dir().name
        'crates'
    """
    override = os.environ.get("COURSEKIT_CRATE_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "coursekit" / "crates"


def debian_package(crate: str) -> str:
    """Return the Debian package name of a crate (``foo_bar`` → ``librust-foo-bar-dev``).

    Example:
        >>> debian_package("serde_json")
        'librust-serde-json-dev'
    """
    return f"librust-{crate.lower().replace('_', '-')}-dev"


def fetch_debian(
    crates: Sequence[str],
    *,
    cache_dir: str | Path | None = None,
    skipped: list[str] | None = None,
) -> list[Path]:
    """Download and unpack the Debian source packages of ``crates``; return their roots.

    Args:
        crates: crate names (``serde_json``) or package names (``librust-serde-json-dev``),
            either with ``@suite`` to take it from another Debian suite than the machine's
            (``librust-foo-dev@trixie``, see :mod:`coursekit.corpus.debian_suite`).
        cache_dir: where ``debs/`` and ``src/`` live (default :func:`default_cache_dir`).
        skipped: when given, a package that cannot be fetched or holds no crate is left
            out and its error message appended here, instead of raising.

    Returns:
        The crate root directories, in the order of ``crates`` (less the skipped ones).

    Raises:
        SourceError: ``apt-get``/``dpkg-deb`` is missing, or a package cannot be
            downloaded or holds no crate.

    Example:
        >>> fetch_debian(["itoa"])  # doctest: +SKIP
        [PosixPath('/root/.cache/coursekit/crates/src/librust-itoa-dev/usr/share/...')]
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    wanted = [split_source(c) for c in crates]
    wanted = [(p if p.startswith("librust-") else debian_package(p), s) for p, s in wanted]
    for suite in sorted({s for _, s in wanted}):
        debs = _debs_dir(cache, suite)
        debs.mkdir(parents=True, exist_ok=True)
        missing = [p for p, s in wanted if s == suite and _deb_file(debs, p) is None]
        for start in range(0, len(missing), BATCH):
            _download(missing[start : start + BATCH], debs, cache, suite)
    roots = []
    for package, suite in wanted:
        target = cache / "src" / (f"{package}@{suite}" if suite else package)
        try:
            roots.append(_unpack(_deb_path(_debs_dir(cache, suite), package), target))
        except SourceError as error:
            if skipped is None:
                raise
            skipped.append(str(error))
    return roots


def _debs_dir(cache: Path, suite: str) -> Path:
    """Return where a suite's ``.deb`` files go (the machine's suite: ``debs/``)."""
    return cache / "debs" / suite if suite else cache / "debs"


def _deb_file(debs: Path, package: str) -> Path | None:
    """Return the downloaded ``.deb`` of ``package``, if any."""
    found = sorted(debs.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def _deb_path(debs: Path, package: str) -> Path:
    """Return the ``.deb`` of ``package`` or raise naming the package."""
    found = _deb_file(debs, package)
    if found is None:
        raise SourceError(
            f"{package}: apt-get download failed; check the name with "
            f"`apt-cache policy {package}` and that the Debian registry is reachable"
        )
    return found


def _download(packages: list[str], debs: Path, cache: Path, suite: str) -> None:
    """Run ``apt-get download`` for a batch; on failure retry one by one, ignoring errors."""

    def fetch(names: list[str]) -> int:
        if suite:
            return debian_suite.download(names, debs, cache, suite)
        return _tool(["apt-get", "download", *names], debs)

    if fetch(packages) != 0:
        for package in packages:
            fetch([package])


def _unpack(deb: Path, target: Path) -> Path:
    """Extract ``deb`` into ``target`` (once) and return the crate directory inside it."""
    if not target.is_dir():
        partial = target.with_name(target.name + ".partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        if _tool(["dpkg-deb", "-x", str(deb), str(partial)], deb.parent) != 0:
            raise SourceError(f"{deb}: dpkg-deb -x failed; delete the file and fetch again")
        partial.rename(target)
    roots = sorted((target / "usr/share/cargo/registry").glob("*/Cargo.toml"))
    if not roots:
        raise SourceError(f"{deb}: holds no crate under usr/share/cargo/registry; skip it")
    return roots[0].parent


def _tool(command: list[str], cwd: Path) -> int:
    """Run a packaging tool quietly; return its exit code."""
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, check=False).returncode
    except FileNotFoundError:
        raise SourceError(
            f"{command[0]}: not found; fetching from Debian needs apt-get and dpkg-deb "
            "(use a local crate directory instead)"
        ) from None


def discover_crates(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[CrateSource, str]]:
    """Find the crates under ``paths``, each with a source label for the manifest.

    A path holding ``Cargo.toml`` is one crate; otherwise its subdirectories that hold one
    are crates, and so are unpacked Debian packages inside it
    (``*/usr/share/cargo/registry/*/``, the layout of the fetch cache's ``src/``). The
    label is the Debian package name for unpacked packages, else the path.

    Raises:
        SourceError: a path does not exist or holds no crate.

    Example:
        >>> [c.name for c, _ in discover_crates(["tests/fixtures/crates"])]  # doctest: +SKIP
        ['macros', 'mini', 'props']
    """
    found: list[tuple[CrateSource, str]] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise SourceError(f"{path}: no such directory; pass a crate or a folder of crates")
        roots = [path] if (path / "Cargo.toml").is_file() else _crate_dirs(path)
        if not roots:
            raise SourceError(f"{path}: no Cargo.toml in it or its subfolders; pass a crate")
        found += [(read_crate(root), _label(root)) for root in roots]
    return found


def _crate_dirs(path: Path) -> list[Path]:
    """Return the crate directories one level down or in unpacked Debian packages."""
    manifests = sorted(path.glob("*/Cargo.toml"))
    manifests += sorted(path.glob("*/usr/share/cargo/registry/*/Cargo.toml"))
    return [m.parent for m in manifests]


def _label(root: Path) -> str:
    """Return the Debian package of an unpacked crate, else the crate's path."""
    parts = root.resolve().parts
    if len(parts) > 5 and parts[-5:-1] == ("usr", "share", "cargo", "registry"):
        return parts[-6]
    return str(root)


def crates_for_manifest(
    entries: Sequence[tuple[str, str, str]], *, cache_dir: str | Path | None = None
) -> list[tuple[CrateSource, str]]:
    """Fetch the crates of manifest entries (crate, version, source) and check versions.

    Sources starting with ``librust-`` are fetched from Debian; others are local paths.

    Raises:
        SourceError: a crate cannot be fetched, or its version differs from the manifest.

    Example:
        >>> crates_for_manifest([("itoa", "1.0.1", "librust-itoa-dev")])  # doctest: +SKIP
    """
    debian = [source for _, _, source in entries if source.startswith("librust-")]
    roots = dict(zip(debian, fetch_debian(debian, cache_dir=cache_dir), strict=True))
    found = []
    for crate, version, source in entries:
        root = roots.get(source, Path(source))
        if source in roots and (root.parent / f"{crate}-{version}" / "Cargo.toml").is_file():
            root = root.parent / f"{crate}-{version}"  # a package holding several crates
        read = read_crate(root)
        if (read.name, read.version) != (crate, version):
            raise SourceError(
                f"{source}: manifest pins {crate} {version} but the source holds {read.name} "
                f"{read.version}; Debian serves one version per package, so update the "
                "manifest (rebuild without --manifest) or use a local copy of that version"
            )
        found.append((read, source))
    return found
