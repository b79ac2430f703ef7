r"""Write raw Rust source of a corpus's crates: the nano model's pretraining and held-out text.

By default only crates of the corpus's ``train`` split are used, so the nano model never
pretrains on code from the evaluation crates; ``splits=("val", "test")`` writes the held-out
text its perplexity is measured on. Given a pretraining manifest
(:mod:`coursekit.corpus.pretrain_manifest`: every permissive Rust crate Debian ships), the
text is those crates' source instead, less every crate of the corpus's validation and test
splits (by name, any version); with ``pairs`` the training split's own function → test pairs
follow as documents (``// pair <crate>/<path>``, the function, then its tests).

Every ``.rs`` file under a crate's ``src/`` is included once: files equal after
:func:`coursekit.corpus.dedup.normalise` (comments and whitespace ignored) are written only the
first time, and ``exclude`` drops files already seen elsewhere (the held-out text excludes
every file that is also in the training text). Each document is
``// <crate>/<path>\\n<source>\\n`` followed by :data:`DOCUMENT_SEPARATOR`, the way Qwen's
pretraining joins documents. The output is large (tens of MB) and is not committed.

Example:
    >>> write_pretrain_text("data/corpus", "pretrain.rs")  # doctest: +SKIP
    {'crates': 579, 'files': 6869, 'duplicates': 49, 'excluded': 0, 'bytes': 72105087}
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from coursekit.corpus.dedup import digest, normalise
from coursekit.corpus.manifest import read_manifest
from coursekit.corpus.sources import CrateSource, crates_for_manifest
from coursekit.data.corpus import load_splits
from coursekit.io import atomic_open

MAX_FILE_BYTES = 200_000
"""Larger source files (generated tables, mostly) are skipped."""
DOCUMENT_SEPARATOR = "<|endoftext|>"
"""Written after every document (Qwen's end-of-text token, a special token of its tokenizer)."""


def write_pretrain_text(
    corpus_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    splits: Collection[str] = ("train",),
    exclude: Collection[str] = frozenset(),
    cache_dir: str | Path | None = None,
    manifest: str | os.PathLike[str] | None = None,
    pairs: bool = False,
) -> dict[str, int]:
    """Write the deduplicated source of the crates of ``splits`` of a corpus to ``out``.

    Args:
        corpus_dir: a corpus directory with ``<split>.jsonl.gz`` and ``manifest.txt``.
        out: the text file to write (atomically).
        splits: whose crates to include.
        exclude: dedup digests (``digest(normalise(source))``) of files to leave out.
        cache_dir: the Debian crate cache (default: see :mod:`coursekit.corpus.sources`).
        manifest: a pretraining manifest whose crates replace those of ``splits``; the
            corpus's val and test crates are left out of it.
        pairs: also write the training split's function → test pairs as documents.

    Returns:
        Counts: ``crates``, ``files`` written, ``duplicates`` and ``excluded`` skipped,
        ``pairs`` written, ``bytes``.

    Example:
        >>> write_pretrain_text(corpus, tmp / "pretrain.rs")["crates"]  # doctest: +SKIP
        3
    """
    seen: set[str] = set()
    directory = Path(corpus_dir)
    if manifest is not None:
        crates = _manifest_crates(directory, Path(manifest), cache_dir)
    else:
        crates = _crates(directory, splits, cache_dir)
    counts = {"crates": len(crates), "files": 0, "duplicates": 0, "excluded": 0, "pairs": 0,
              "bytes": 0}  # fmt: skip
    with atomic_open(out, "w") as handle:
        for header, text, key in _sources(crates):
            if key in seen or key in exclude:
                counts["duplicates" if key in seen else "excluded"] += 1
                continue
            seen.add(key)
            chunk = f"{header}\n{text}\n{DOCUMENT_SEPARATOR}"
            handle.write(chunk)
            counts["files"] += 1
            counts["bytes"] += len(chunk.encode("utf-8"))
        for sample in load_splits(directory)["train"] if pairs else ():
            chunk = (f"// pair {sample.crate}/{sample.path}\n{sample.function}\n\n"
                     f"{sample.tests}\n{DOCUMENT_SEPARATOR}")  # fmt: skip
            handle.write(chunk)
            counts["pairs"] += 1
            counts["bytes"] += len(chunk.encode("utf-8"))
    return counts


def read_documents(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield the documents of a file written by :func:`write_pretrain_text` (header included)."""
    text = Path(path).read_text(encoding="utf-8")
    for document in text.split(DOCUMENT_SEPARATOR):
        if document.strip():
            yield document


def write_heldout_text(
    corpus_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    cache_dir: str | Path | None = None,
    manifest: str | os.PathLike[str] | None = None,
) -> dict[str, int]:
    """Write the validation and test crates' source, without any file of the training text.

    The training text's digests are computed from its sources (nothing is written for them):
    the training crates', or with ``manifest`` the pretraining manifest's crates less the
    validation and test crates.
    """
    directory = Path(corpus_dir)
    if manifest is not None:
        crates = _manifest_crates(directory, Path(manifest), cache_dir)
    else:
        crates = _crates(directory, ("train",), cache_dir)
    train = {key for _, _, key in _sources(crates)}
    return write_pretrain_text(
        directory, out, splits=("val", "test"), exclude=train, cache_dir=cache_dir
    )


def _crates(
    directory: Path, splits: Collection[str], cache_dir: str | Path | None
) -> list[CrateSource]:
    """Fetch (or find in the cache) the crates of ``splits``, in manifest order."""
    loaded = load_splits(directory)
    names = {s.crate for split in splits for s in loaded[split]}
    entries = [e for e in read_manifest(directory / "manifest.txt") if e.crate in names]
    return [crate for crate, _ in crates_for_manifest(entries, cache_dir=cache_dir)]


def _manifest_crates(directory: Path, manifest: Path, cache_dir: str | Path | None) -> list:
    """Fetch a pretraining manifest's crates, less the corpus's val and test crates (by name)."""
    loaded = load_splits(directory)
    held = {s.crate for split in ("val", "test") for s in loaded[split]}
    entries = [e for e in read_manifest(manifest) if e.crate not in held]
    return [crate for crate, _ in crates_for_manifest(entries, cache_dir=cache_dir)]


def _sources(crates: Sequence[CrateSource]) -> Iterator[tuple[str, str, str]]:
    """Yield (``// crate/path`` header, source, dedup digest) of each crate's ``src/**/*.rs``.

    Files over :data:`MAX_FILE_BYTES` are skipped; bytes that are not UTF-8 are replaced.
    """
    for crate in crates:
        for path in sorted((crate.root / "src").rglob("*.rs")):
            if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
                continue
            text = path.read_bytes().decode("utf-8", errors="replace")
            header = f"// {crate.name}/{path.relative_to(crate.root).as_posix()}"
            yield header, text, digest(normalise(text))
