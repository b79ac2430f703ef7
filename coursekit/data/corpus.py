"""The corpus of Rust function → unit-test pairs: one record schema, strict loading.

A corpus is JSON Lines, one :class:`Sample` per line, optionally gzip-compressed
(``.jsonl.gz``). A split directory holds ``train``, ``val`` and ``test`` files. Every
record is validated on load; a bad one raises :class:`CorpusError` with a one-line
message naming ``file:line``, the field and the fix, never a deep traceback.

The bundled seed set (``data/seed`` at the repository root, see its README) uses the same
schema as the real corpus that later lessons build.

Example:
    >>> splits = load_splits(seed_dir())
    >>> sample = splits["train"][0]
    >>> "#[cfg(test)]" in sample.source()
    True
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit.errors import CoursekitError
from coursekit.io import atomic_open

SPLITS = ("train", "val", "test")
"""The split names of a corpus directory, in order."""

MAX_LINE_BYTES = 2**20
"""Longest corpus line accepted, in bytes (UTF-8, without the newline): 1 MiB, ten times the
longest record of the committed corpus. Lines are read with this cap, so a runaway line (a
whole file without newlines, a dumped blob) is refused by ``file:line`` before it is held in
memory or parsed."""

_REQUIRED_TEXT = ("id", "crate", "version", "license", "path", "function", "tests")


class CorpusError(CoursekitError, ValueError):
    """A corpus file is missing, unreadable, or holds a record that breaks the schema."""


@dataclass(frozen=True, kw_only=True)
class Sample:
    r"""One focal Rust function with the unit tests written for it.

    Example:
        >>> sample = Sample(id="demo/one", crate="demo", version="0.1.0",
        ...     license="MIT", path="src/lib.rs",
        ...     function="/// One.\npub fn one() -> i32 { 1 }",
        ...     tests="#[cfg(test)]\nmod tests {}")
        >>> sample.source().startswith("/// One.")
        True
    """

    id: str
    """Unique id across the whole corpus, e.g. ``"seed/gcd"``."""
    crate: str
    """Name of the crate the function comes from."""
    version: str
    """Version of that crate."""
    license: str
    """SPDX license expression of the crate, e.g. ``"Apache-2.0"``."""
    path: str
    """Path of the source file inside the crate, e.g. ``"src/gcd.rs"``."""
    function: str
    """Full source of the focal function (or ``impl`` block) with doc comment and attributes."""
    context: str = ""
    """``use`` lines, types and helpers the function needs to compile; may be empty."""
    tests: str
    """Source of the ``#[cfg(test)] mod tests { ... }`` module that exercises it."""
    property_tests: str | None = None
    """Source of property-based tests, or ``None`` when there are none."""
    verified: bool = False
    """True only once the assembled source was compiled and its tests passed."""
    features: dict[str, Any] = field(default_factory=dict, hash=False)
    """Free-form, JSON-serialisable metadata (topic, sizes, ...); may be empty."""

    def __post_init__(self) -> None:
        for name in _REQUIRED_TEXT:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"Sample.{name} must be a non-empty string (got {value!r:.60})")
        if not isinstance(self.context, str):
            raise ValueError(f"Sample.context must be a string (got {self.context!r:.60})")
        if self.property_tests is not None and (
            not isinstance(self.property_tests, str) or not self.property_tests.strip()
        ):
            raise ValueError(
                "Sample.property_tests must be null or a non-empty string "
                f"(got {self.property_tests!r:.60})"
            )
        if not isinstance(self.verified, bool):
            raise ValueError(f"Sample.verified must be true or false (got {self.verified!r:.60})")
        if not isinstance(self.features, dict) or not all(
            isinstance(k, str) for k in self.features
        ):
            raise ValueError(
                f"Sample.features must be an object with string keys (got {self.features!r:.60})"
            )

    def source(self) -> str:
        r"""Assemble the compilable Rust file: context, then function, then the test module.

        Returns:
            The parts that are non-empty, separated by blank lines, ending in a newline.

        Example:
            >>> s = Sample(id="a", crate="c", version="1", license="MIT", path="src/a.rs",
            ...     context="use std::fmt;", function="fn f() {}", tests="mod tests {}")
            >>> s.source()
            'use std::fmt;\n\nfn f() {}\n\nmod tests {}\n'
        """
        parts = (self.context, self.function, self.tests)
        return "\n\n".join(part.strip("\n") for part in parts if part.strip()) + "\n"

    def to_record(self) -> dict[str, Any]:
        """Return the sample as a JSON-ready dict with the schema's fields in order.

        Example:
            >>> s = Sample(id="a", crate="c", version="1", license="MIT", path="src/a.rs",
            ...     function="fn f() {}", tests="mod tests {}")
            >>> list(s.to_record())[:3]
            ['id', 'crate', 'version']
        """
        return {name: getattr(self, name) for name in _FIELD_ORDER}


_FIELD_ORDER = tuple(f.name for f in dataclasses.fields(Sample))
_FIELDS = frozenset(_FIELD_ORDER)


def seed_dir() -> Path:
    """Return the directory of the bundled seed set, ``data/seed`` at the repository root.

    The path is found from this file, not the working directory.

    Raises:
        CorpusError: the directory is missing (coursekit is not installed from a checkout).

    Example:
        >>> seed_dir().name
        'seed'
    """
    directory = Path(__file__).resolve().parents[2] / "data" / "seed"
    if not directory.is_dir():
        raise CorpusError(
            f"{directory}: bundled seed data not found; install coursekit editable from a "
            "checkout of the repository (pip install -e .)"
        )
    return directory


def default_corpus_dir() -> Path:
    """Return ``data/corpus`` at the repository root when it holds a corpus, else the seed set.

    The committed corpus (built from Debian crates, see ``docs/corpus.md``) is the Phase 1
    default; the small seed set remains the fallback for installs without it.

    Example:
        >>> default_corpus_dir().name in ("corpus", "seed")
        True
    """
    corpus = Path(__file__).resolve().parents[2] / "data" / "corpus"
    return corpus if (corpus / "train.jsonl.gz").is_file() else seed_dir()


def load_corpus(path: str | os.PathLike[str]) -> list[Sample]:
    """Load and validate every record of one ``.jsonl`` or ``.jsonl.gz`` corpus file.

    Args:
        path: the file; blank lines are skipped. For a split directory use
            :func:`load_splits`.

    Returns:
        The samples in file order.

    Raises:
        CorpusError: the file is missing or unreadable (bad gzip, bad UTF-8, bad JSON), a
            record breaks the schema, or two records share an id.

    Example:
        >>> samples = load_corpus(seed_dir() / "val.jsonl")
        >>> all(s.verified for s in samples)
        True
    """
    return [sample for _, sample in _load_numbered(Path(path))]


def load_splits(directory: str | os.PathLike[str]) -> dict[str, list[Sample]]:
    """Load the ``train``, ``val`` and ``test`` files of a corpus directory.

    Each split is ``<name>.jsonl`` or ``<name>.jsonl.gz`` (not both). Ids must be unique
    across all three splits, so no sample leaks from training into evaluation.

    Args:
        directory: the corpus directory, e.g. :func:`seed_dir`.

    Returns:
        A dict from split name to its samples, in :data:`SPLITS` order.

    Raises:
        CorpusError: a split file is missing or doubled, any file fails
            :func:`load_corpus`, or an id appears in two splits.

    Example:
        >>> splits = load_splits(seed_dir())
        >>> list(splits)
        ['train', 'val', 'test']
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CorpusError(f"{directory}: not a directory; pass the folder holding train/val/test")
    splits: dict[str, list[Sample]] = {}
    first_seen: dict[str, str] = {}
    for split in SPLITS:
        path = _split_file(directory, split)
        splits[split] = []
        for line, sample in _load_numbered(path):
            where = f"{path}:{line}"
            if sample.id in first_seen:
                raise CorpusError(
                    f"{where}: field 'id': duplicate id {sample.id!r} (also at "
                    f"{first_seen[sample.id]}); ids must be unique across splits"
                )
            first_seen[sample.id] = where
            splits[split].append(sample)
    return splits


def write_corpus(path: str | os.PathLike[str], samples: Iterable[Sample]) -> Path:
    """Write samples as JSON Lines, gzip-compressed when ``path`` ends in ``.gz``.

    The write is atomic and byte-for-byte reproducible (the gzip header carries no time).

    Args:
        path: the target file; its directory must exist.
        samples: the records to write, in order.

    Returns:
        The path written.

    Example:
        >>> write_corpus(tmp_path / "x.jsonl.gz", load_corpus(seed_dir() / "val.jsonl"))
        ... # doctest: +SKIP
    """
    target = Path(path)
    text = "".join(json.dumps(s.to_record(), ensure_ascii=False) + "\n" for s in samples)
    data = text.encode("utf-8")
    if target.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with atomic_open(target, "wb") as handle:
        handle.write(data)
    return target


def _split_file(directory: Path, split: str) -> Path:
    """Return the one existing ``<split>.jsonl`` or ``<split>.jsonl.gz`` in ``directory``."""
    found = [
        p for p in (directory / f"{split}.jsonl", directory / f"{split}.jsonl.gz") if p.exists()
    ]
    if not found:
        raise CorpusError(f"{directory}: no {split}.jsonl or {split}.jsonl.gz; add the split")
    if len(found) > 1:
        raise CorpusError(f"{directory}: both {split}.jsonl and {split}.jsonl.gz; keep one")
    return found[0]


def _load_numbered(path: Path) -> list[tuple[int, Sample]]:
    """Parse ``path`` into (line number, sample) pairs, rejecting duplicate ids."""
    if path.is_dir():
        raise CorpusError(f"{path}: is a directory; use load_splits() for a split directory")
    if not path.is_file():
        raise CorpusError(f"{path}: no such corpus file; check the path")
    samples: list[tuple[int, Sample]] = []
    first_line: dict[str, int] = {}
    for line, text in _read_lines(path):
        if not text.strip():
            continue
        sample = _parse_record(text, f"{path}:{line}")
        if sample.id in first_line:
            raise CorpusError(
                f"{path}:{line}: field 'id': duplicate id {sample.id!r} (first at line "
                f"{first_line[sample.id]}); give each record a unique id"
            )
        first_line[sample.id] = line
        samples.append((line, sample))
    return samples


def _read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, decoded text) for each line of a plain or gzip file.

    No line longer than :data:`MAX_LINE_BYTES` is read whole: it is refused at its number.
    """
    compressed = path.name.endswith(".gz")
    line = 0
    try:
        with gzip.open(path, "rb") if compressed else path.open("rb") as handle:
            while raw := handle.readline(MAX_LINE_BYTES + 1):
                line += 1
                if len(raw.rstrip(b"\n")) > MAX_LINE_BYTES:
                    raise CorpusError(
                        f"{path}:{line}: line longer than {MAX_LINE_BYTES} bytes (the "
                        "MAX_LINE_BYTES cap, 1 MiB); one record must be one function and its "
                        "tests: drop or split the line"
                    )
                try:
                    yield line, raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise CorpusError(
                        f"{path}:{line}: invalid UTF-8 at byte {error.start} of the line; "
                        "re-encode the file as UTF-8"
                    ) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise CorpusError(
            f"{path}:{line + 1}: truncated or corrupt gzip ({error}); "
            "re-download or regenerate the file"
        ) from None


def _parse_record(text: str, where: str) -> Sample:
    """Decode one JSON line into a validated :class:`Sample`; ``where`` is ``file:line``."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise CorpusError(
            f"{where}: invalid JSON ({error.msg} at column {error.colno}); "
            "each line must be one JSON object"
        ) from None
    except RecursionError:
        raise CorpusError(
            f"{where}: JSON nested too deeply to parse; a record is one flat JSON object "
            "(nest only inside 'features', a few levels)"
        ) from None
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: record is {type(record).__name__}, not a JSON object")
    missing = [name for name in _FIELD_ORDER if name not in record]
    if missing:
        raise CorpusError(f"{where}: field {missing[0]!r} is missing; add it to the record")
    unknown = sorted(set(record) - _FIELDS)
    if unknown:
        raise CorpusError(
            f"{where}: field {unknown[0]!r} is not in the schema; remove it or put it in 'features'"
        )
    try:
        return Sample(**record)
    except ValueError as error:
        name = str(error).split()[0].removeprefix("Sample.")
        raise CorpusError(f"{where}: field {name!r}: {error}") from None
