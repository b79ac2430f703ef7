r"""The pretraining manifest: every permissively licensed Rust crate Debian ships, pinned.

The corpus (``manifest.txt``) holds only crates that gave function → test pairs. The nano
model's pretraining wants all the Rust it may read, so :func:`build_pretrain_manifest` lists
every ``librust-*-dev`` package of the machine's Debian suite (bookworm) and of a newer suite
for the crates the machine's lacks (trixie, ``package@trixie``), fetches them into the crate
cache, reads each crate's ``Cargo.toml`` and keeps one version per crate (the machine's
suite first, then the newest) whose license is permissive
(:func:`coursekit.corpus.sources.is_permissive`). The result is an ordinary manifest
(``crate version source``), so a rebuild fetches exactly these versions and refuses others.

Which crates the model may *not* read (the corpus's validation and test crates) is decided
when the text is written (:mod:`coursekit.corpus.pretrain_text`), not here: the manifest does
not depend on how a corpus was dealt.

Example:
    >>> build_pretrain_manifest("data/corpus/pretrain-manifest.txt")  # doctest: +SKIP
    {'packages': 3088, 'crates': 2890, 'not_permissive': 160, 'skipped': 12, ...}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from coursekit.corpus.manifest import ManifestEntry, write_manifest
from coursekit.corpus.sources import (
    CrateSource,
    default_cache_dir,
    fetch_debian,
    is_permissive,
    read_crate,
)

DEFAULT_SUITE = "trixie"
"""The newer Debian suite whose extra crates join the machine's suite's."""


def debian_rust_packages(cache: Path, suite: str = DEFAULT_SUITE) -> list[str]:
    """Return the machine suite's Rust packages, then ``suite``'s whose crate it lacks.

    Feature packages (``+`` in the name) hold no source and are left out.
    """
    from coursekit.corpus.debian_suite import machine_rust_packages, new_rust_packages

    packages = machine_rust_packages()
    return (
        packages + [f"{p}@{suite}" for p in new_rust_packages(cache, suite)] if suite else packages
    )


def pick_crates(found: Sequence[tuple[CrateSource, str]]) -> tuple[list[ManifestEntry], int]:
    """Keep one permissive version per crate name; return (entries, crates not permissive).

    The first source listing a crate wins (the machine's suite before the newer one); among
    versions of one source the highest version wins.

    Example:
        >>> from pathlib import Path
        >>> a = CrateSource(name="a", version="1.0.0", license="MIT", root=Path("."))
        >>> b = CrateSource(name="b", version="0.1.0", license="GPL-3.0", root=Path("."))
        >>> pick_crates([(a, "librust-a-dev"), (b, "librust-b-dev")])
        ([ManifestEntry(crate='a', version='1.0.0', source='librust-a-dev')], 1)
    """
    chosen: dict[str, tuple[tuple[int, tuple[int, ...]], ManifestEntry]] = {}
    refused: set[str] = set()
    for crate, source in found:
        if not is_permissive(crate.license):
            refused.add(crate.name)
            continue
        rank = (int("@" in source), tuple(-v for v in _version_key(crate.version)))
        best = chosen.get(crate.name)
        if best is None or rank < best[0]:
            chosen[crate.name] = (rank, ManifestEntry(crate.name, crate.version, source))
    entries = sorted(e for _, e in chosen.values())
    return entries, len(refused - set(chosen))


def build_pretrain_manifest(
    out: str | os.PathLike[str],
    *,
    suite: str = DEFAULT_SUITE,
    cache_dir: str | Path | None = None,
    packages: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, int]:
    """Fetch Debian's Rust packages and write the pretraining manifest ``out`` (atomically).

    Args:
        out: the manifest file to write.
        suite: the newer suite whose extra crates are added (``""``: the machine's only).
        cache_dir: the Debian crate cache (resumable: fetched packages are kept there).
        packages: the packages to read instead of listing them (tests, or a subset).
        log: receives progress lines.

    Returns:
        Counts: ``packages``, ``crates`` written, ``not_permissive``, ``skipped`` packages.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    wanted = list(packages) if packages is not None else debian_rust_packages(cache, suite)
    log(f"pretrain manifest: fetching {len(wanted)} packages into {cache} (kept; resumable)")
    skipped: list[str] = []
    fetch_debian(wanted, cache_dir=cache, skipped=skipped)
    found: list[tuple[CrateSource, str]] = []
    for package in wanted:
        registry = cache / "src" / package / "usr" / "share" / "cargo" / "registry"
        for root in sorted(p.parent for p in registry.glob("*/Cargo.toml")):
            try:
                found.append((read_crate(root), package))
            except ValueError as error:  # an unreadable Cargo.toml: skip that crate
                skipped.append(str(error))
    entries, refused = pick_crates(found)
    write_manifest(out, entries)
    for message in skipped:
        log(f"skipped: {message}")
    return {"packages": len(wanted), "crates": len(entries), "not_permissive": refused,
            "skipped": len(skipped)}  # fmt: skip


def _version_key(version: str) -> tuple[int, ...]:
    """Return the numeric parts of a version for ordering (``1.10.0`` > ``1.9.3``).

    Example:
        >>> _version_key("1.10.0-rc.1")
        (1, 10, 0, 1)
    """
    parts = [p for p in version.replace("-", ".").replace("+", ".").split(".")]
    return tuple(int(p) for p in parts if p.isdigit())
