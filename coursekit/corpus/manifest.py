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

import json
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


def read_crate_list(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Read crate names: a model's ``build.json`` (``pretrained_crates``) or one per line.

    A text file may have ``#`` comments and blank lines; a line's first word is the crate
    (so a manifest also works). Returns the sorted, unique names.

    Raises:
        SourceError: the file is missing, or a JSON file has no ``pretrained_crates`` list.

    Example:
        >>> read_crate_list("data/models/qwen2.5-coder-nano/build.json")[:1]  # doctest: +SKIP
        ('Inflector',)
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path}: no such crate list; check the path")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            crates = json.loads(text).get("pretrained_crates")
        except (json.JSONDecodeError, AttributeError):
            crates = None
        if not isinstance(crates, list) or not all(
            isinstance(c, list) and c and isinstance(c[0], str) for c in crates
        ):
            raise SourceError(
                f"{path}: field pretrained_crates: expected a list of [crate, version] pairs; "
                "pass a model build record that has it, or a text file with one crate per line"
            )
        return tuple(sorted({c[0] for c in crates}))
    names = [line.split()[0] for line in text.splitlines() if line.strip()]
    return tuple(sorted({n for n in names if not n.startswith("#")}))
