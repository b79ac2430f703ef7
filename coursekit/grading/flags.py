"""Near-duplicate flags across a class: shared adapter files, similar ENHANCEMENT.md texts.

A verified run folder proves its numbers are a run's, not whose run it is (docs/grading.md,
"What verification proves"). Two fingerprints per submission catch copies across learners:

- ``adapters``: the SHA-256 of every ``adapter_model.safetensors`` and ``model.safetensors``
  under ``runs/``; two learners with the same digest submitted the same trained file;
- ``shingles``: the set of 5-word shingles of ``ENHANCEMENT.md`` (lower-cased words, HTML
  comments, headings and every shingle of the workspace template removed), each as a stable
  64-bit hash; two texts are compared by Jaccard similarity ``|A ∩ B| / |A ∪ B|``.

Flags are notes for a human, never a penalty (:func:`near_duplicates`).

Example:
    >>> a = {"name": "ada", "fingerprints": {"adapters": ["ab" * 32], "shingles": []}}
    >>> b = {"name": "bob", "fingerprints": {"adapters": ["ab" * 32], "shingles": []}}
    >>> near_duplicates([a, b])["ada"]
    ['same adapter as bob (sha256 abababab…)']

Guide: docs/grading.md ("Near-duplicates").
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from coursekit.workspace.layout import template_path

SHINGLE_WORDS = 5
"""Words per shingle."""
JACCARD_THRESHOLD = 0.25
"""Shingle Jaccard similarity at and above which two ENHANCEMENT.md files are flagged.

Measured on the template filled with 880 words (docs/grading.md, "Near-duplicates"):
unrelated texts, even on the same subject, share ≤ 0.008; a copy keeps 0.30 with one word in
five changed, 0.59 with one in ten, 0.68 with its sentences shuffled, 0.34 when only its
first half is copied."""
MIN_SHINGLES = 20
"""A text with fewer shingles (after the template's are removed) is not compared: too short."""
ADAPTER_FILES = ("adapter_model.safetensors", "model.safetensors")
WORD = re.compile(r"[a-z0-9]+(?:[.'’][a-z0-9]+)*")
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
HEADING = re.compile(r"^\s{0,3}#.*$", re.MULTILINE)


def words(text: str) -> list[str]:
    r"""Return the lower-cased words of ``text`` without HTML comments and heading lines.

    Example:
        >>> words("## Results\nLoss fell to 2.41 <!-- a note --> (3 seeds).")
        ['loss', 'fell', 'to', '2.41', '3', 'seeds']
    """
    return WORD.findall(HEADING.sub(" ", COMMENT.sub(" ", text)).lower())


def _hash(shingle: str) -> int:
    return int.from_bytes(hashlib.sha256(shingle.encode("utf-8")).digest()[:8], "big")


def shingles(text: str, size: int = SHINGLE_WORDS) -> set[int]:
    """Return the stable 64-bit hashes of the ``size``-word shingles of ``text`` (:func:`words`).

    Example:
        >>> len(shingles("one two three four five six")), shingles("too short")
        (2, set())
    """
    tokens = words(text)
    return {_hash(" ".join(tokens[i : i + size])) for i in range(len(tokens) - size + 1)}


def template_shingles() -> set[int]:
    """Return the shingles of the workspace's ENHANCEMENT.md template, comments' text included.

    Every learner starts from this text, so its shingles are never evidence of copying.

    Example:
        >>> len(template_shingles()) > 100
        True
    """
    text = template_path("ENHANCEMENT.md.tmpl").read_text(encoding="utf-8")
    text = re.sub(r"\{\{\w+\}\}", " ", text).replace("<!--", " ").replace("-->", " ")
    return shingles(text) | shingles(HEADING.sub(lambda m: m[0].lstrip("# "), text))


def _regular_files(root: Path) -> Iterator[Path]:
    """Yield the regular files under ``root`` (symbolic links neither followed nor yielded)."""
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            try:
                if stat.S_ISREG(path.lstat().st_mode):
                    yield path
            except OSError:
                continue


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def fingerprints(submission: Path) -> dict[str, list]:
    """Return ``{"adapters": [sha256 hex], "shingles": [int]}`` of a submission (both sorted).

    Reads bytes only: the adapter files under ``runs/`` (regular files; links are skipped)
    and ``ENHANCEMENT.md`` (the template's shingles removed). Missing files give empty lists.

    Example:
        >>> fingerprints(Path("/nonexistent"))
        {'adapters': [], 'shingles': []}
    """
    found = [p for p in _regular_files(submission / "runs") if p.name in ADAPTER_FILES]
    adapters = sorted({d for d in map(_sha256, found) if d})
    report = submission / "ENHANCEMENT.md"
    try:
        is_file = stat.S_ISREG(report.lstat().st_mode)
        text = report.read_text(encoding="utf-8", errors="replace") if is_file else ""
    except OSError:
        text = ""
    return {"adapters": adapters, "shingles": sorted(shingles(text) - template_shingles())}


def jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    """Return ``|A ∩ B| / |A ∪ B|`` of two shingle sets (0 when both are empty).

    Example:
        >>> jaccard([1, 2, 3], [2, 3, 4])
        0.5
    """
    first, second = set(a), set(b)
    union = len(first | second)
    return len(first & second) / union if union else 0.0


def near_duplicates(
    rows: list[dict[str, Any]], threshold: float = JACCARD_THRESHOLD
) -> dict[str, list[str]]:
    """Return ``{name: [flag text]}`` for every row: shared adapters and similar reports.

    ``"same adapter as bob (sha256 1a2b3c4d…)"`` when a digest of ``fingerprints.adapters``
    is also bob's; ``"ENHANCEMENT.md 87% like bob's (5-word shingles)"`` when the shingle
    Jaccard similarity is ≥ ``threshold`` and both texts have ``MIN_SHINGLES`` shingles.
    The relation is symmetric: bob gets the matching flag. Rows without fingerprints get [].

    Example:
        >>> near_duplicates([{"name": "ada"}, {"name": "bob", "fingerprints": {}}])
        {'ada': [], 'bob': []}
    """
    flags: dict[str, list[str]] = {row["name"]: [] for row in rows}
    prints = [(row["name"], row.get("fingerprints") or {}) for row in rows]
    owners: dict[str, list[str]] = {}
    for name, found in prints:
        for digest in found.get("adapters", []):
            owners.setdefault(digest, []).append(name)
    for digest, names in sorted(owners.items()):
        for name in names:
            said = [f"same adapter as {o} (sha256 {digest[:8]}…)" for o in names if o != name]
            flags[name] += said
    texts = [(n, set(f.get("shingles", []))) for n, f in prints]
    texts = [(n, s) for n, s in texts if len(s) >= MIN_SHINGLES]
    for i, (name, mine) in enumerate(texts):
        for other, theirs in texts[i + 1 :]:
            share = jaccard(mine, theirs)
            if share >= threshold:
                flags[name].append(f"ENHANCEMENT.md {share:.0%} like {other}'s (5-word shingles)")
                flags[other].append(f"ENHANCEMENT.md {share:.0%} like {name}'s (5-word shingles)")
    return {name: sorted(set(found)) for name, found in flags.items()}
