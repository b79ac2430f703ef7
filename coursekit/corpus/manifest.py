r"""Read and write a corpus manifest: one ``crate version source`` line per crate.

``source`` is the Debian package the crate came from (``librust-itoa-dev``) or the local
directory it was read from. Lines starting with ``#`` and blank lines are ignored. A
build from a manifest fetches exactly these crates and refuses a version that differs
(Debian serves one version per package; update the manifest when it moves on).

Example:
    >>> parse_manifest("itoa 1.0.1 librust-itoa-dev\n", "m.txt")
    [ManifestEntry(crate='itoa', version='1.0.1', source='librust-itoa-dev')]
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from coursekit.corpus.sources import SourceError
from coursekit.io import atomic_open

_HEADER = "# crate version source (Debian package or local path); see docs/corpus.md\n"


class ManifestEntry(NamedTuple):
    """One crate of a manifest."""

    crate: str
    version: str
    source: str


def parse_manifest(text: str, where: str) -> list[ManifestEntry]:
    r"""Parse manifest text; ``where`` names the file in errors.

    Raises:
        SourceError: a line does not have three fields.

    Example:
        >>> parse_manifest("# c\n\n", "m.txt")
        []
    """
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3:
            raise SourceError(
                f"{where}:{number}: expected 'crate version source' (got {line.strip()!r}); "
                "fix the line"
            )
        entries.append(ManifestEntry(*fields))
    return entries


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestEntry]:
    """Read a manifest file.

    Example:
        >>> read_manifest("data/corpus/manifest.txt")[0].crate  # doctest: +SKIP
        'abomonation'
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: no such manifest; check the path")
    return parse_manifest(path.read_text(encoding="utf-8"), str(path))


def write_manifest(path: str | os.PathLike[str], entries: Iterable[ManifestEntry]) -> Path:
    """Write a manifest atomically, sorted by crate and version.

    Example:
        >>> write_manifest(tmp / "manifest.txt", [])  # doctest: +SKIP
    """
    lines = sorted(f"{e.crate} {e.version} {e.source}\n" for e in entries)
    with atomic_open(path, "w") as handle:
        handle.write(_HEADER + "".join(lines))
    return Path(path)
