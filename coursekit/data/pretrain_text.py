"""Write the pretraining text of the nano model: raw Rust source of the training crates.

Only crates of the corpus's ``train`` split are used, so the nano model never pretrains on
code from the evaluation crates. Every ``.rs`` file under a crate's ``src/`` is included
once: files equal after :func:`coursekit.data.dedup.normalise` (comments and whitespace
ignored) are written only the first time. Each file starts with a ``// <crate>/<path>``
line. The output is large (tens of MB) and is not committed.

Example:
    >>> write_pretrain_text("data/corpus", "pretrain.rs")  # doctest: +SKIP
    {'crates': 612, 'files': 5210, 'duplicates': 180, 'bytes': 41234567}
"""

from __future__ import annotations

import os
from pathlib import Path

from coursekit.data.corpus import load_splits
from coursekit.data.dedup import digest, normalise
from coursekit.data.manifest import read_manifest
from coursekit.data.sources import crates_for_manifest
from coursekit.io import atomic_open

MAX_FILE_BYTES = 200_000
"""Larger source files (generated tables, mostly) are skipped."""


def write_pretrain_text(
    corpus_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    cache_dir: str | Path | None = None,
) -> dict[str, int]:
    """Write the deduplicated source of the training-split crates of a corpus to ``out``.

    Args:
        corpus_dir: a corpus directory with ``train.jsonl.gz`` and ``manifest.txt``.
        out: the text file to write (atomically).
        cache_dir: the Debian crate cache (default: see :mod:`coursekit.data.sources`).

    Returns:
        Counts: ``crates``, ``files`` written, ``duplicates`` skipped, ``bytes``.

    Example:
        >>> write_pretrain_text(corpus, tmp / "pretrain.rs")["crates"]  # doctest: +SKIP
        3
    """
    directory = Path(corpus_dir)
    crates = {s.crate for s in load_splits(directory)["train"]}
    entries = [e for e in read_manifest(directory / "manifest.txt") if e.crate in crates]
    seen: set[str] = set()
    counts = {"crates": len(entries), "files": 0, "duplicates": 0, "bytes": 0}
    with atomic_open(out, "w") as handle:
        for crate, _ in crates_for_manifest(entries, cache_dir=cache_dir):
            for path in sorted((crate.root / "src").rglob("*.rs")):
                if not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
                    continue
                text = path.read_bytes().decode("utf-8", errors="replace")
                key = digest(normalise(text))
                if key in seen:
                    counts["duplicates"] += 1
                    continue
                seen.add(key)
                chunk = f"// {crate.name}/{path.relative_to(crate.root).as_posix()}\n{text}\n"
                handle.write(chunk)
                counts["files"] += 1
                counts["bytes"] += len(chunk.encode("utf-8"))
    return counts
