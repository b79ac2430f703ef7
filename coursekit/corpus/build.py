"""Build a corpus directory from crate sources: extract, describe, deduplicate, split, verify.

``build_corpus`` runs the whole pipeline and writes ``train/val/test.jsonl.gz``,
``manifest.txt`` (one ``crate version source`` line per crate that gave samples, so a
build from it fetches exactly those) and ``build.json`` (the counts of every stage).
Crates whose license is not permissive (:func:`coursekit.corpus.sources.is_permissive`)
are skipped and listed in ``build.json``.

Example:
    >>> report = build_corpus(discover_crates(["tests/fixtures/crates"]), out,
    ...     BuildConfig(tokens=False))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from coursekit import codec
from coursekit.corpus.dedup import deduplicate
from coursekit.corpus.extract import extract_crate
from coursekit.corpus.features import qwen_token_counter, sample_features
from coursekit.corpus.manifest import ManifestEntry, write_manifest
from coursekit.corpus.sources import CrateSource, is_permissive
from coursekit.corpus.splits import split_by_crate
from coursekit.corpus.verify import verify_samples
from coursekit.data.corpus import Sample, write_corpus
from coursekit.io import write_json

MAX_CONTEXT_CHARS = 6000
"""Unverified samples with a longer context keep only its ``use`` lines."""
_USE_LINE = re.compile(r"\s*(?:pub(?:\([^)]*\))?\s+)?(?:use\s|extern\s+crate\s)")
Verify = Literal["all", "none"]
_VERIFY = ("all", "none")


@dataclass(frozen=True, kw_only=True)
class BuildConfig:
    """Settings of a corpus build.

    Example:
        >>> BuildConfig(seed=1).verify
        'all'
    """

    seed: int = 0
    """Seed of the crate shuffle that assigns splits."""
    val_fraction: float = 0.15
    """Share of samples in ``val`` (whole crates, so approximately) when not verifying, or
    when both verified goals are 0."""
    test_fraction: float = 0.15
    """Share of samples in ``test``, as for ``val_fraction``."""
    val_verified: int = 150
    """Verified samples ``val`` is dealt (whole crates with verified samples) when verifying."""
    test_verified: int = 250
    """Verified samples ``test`` is dealt first, when verifying."""
    train_only: tuple[str, ...] = ()
    """Crates that always go to ``train``: those a bundled model was pretrained on."""
    verify: Verify = "all"
    """``all``: compile and test every self-contained sample (before splitting, so that
    val and test can be dealt the crates with verified samples first); ``none``: skip."""
    jobs: int = 0
    """Parallel compile-and-test runs; 0 means the core count."""
    timeout_s: float = 10.0
    """Wall-time limit of each verification test run, in seconds."""
    tokens: bool = True
    """Count Qwen2.5 tokens of each function (needs the offline tokenizer)."""

    def __post_init__(self) -> None:
        checks = [
            ("verify", self.verify in _VERIFY, f"must be one of {list(_VERIFY)}"),
            ("jobs", self.jobs >= 0, "must be >= 0 (0 = the core count)"),
            ("timeout_s", self.timeout_s > 0, "must be > 0"),
            ("val_verified", self.val_verified >= 0, "must be >= 0"),
            ("test_verified", self.test_verified >= 0, "must be >= 0"),
            ("val_fraction", 0 <= self.val_fraction < 1, "must be in [0, 1)"),
            ("test_fraction", 0 <= self.test_fraction < 1, "must be in [0, 1)"),
        ]
        codec.check_rules(self, checks)


def build_corpus(
    crates: Sequence[tuple[CrateSource, str]],
    out: str | Path,
    config: BuildConfig,
    *,
    verify_cache: str | Path | None = None,
) -> dict[str, Any]:
    """Build the corpus of ``crates`` into ``out`` and return the build report.

    Stages: license filter and one version per crate, extraction, deduplication,
    features, verification, context trimming (:func:`trim_context`), then
    :func:`finish_corpus` (split and write).

    Args:
        crates: (crate, source label) pairs; the label goes into the manifest
            (a Debian package name, or the local path).
        out: the output directory (created).
        config: the build settings.
        verify_cache: a file of verification results that makes an interrupted build
            resumable (:func:`coursekit.corpus.verify.verify_samples`).

    Returns:
        The report also written to ``out/build.json``.

    Example:
        >>> build_corpus([(read_crate(path), str(path))], tmp, BuildConfig())
        ... # doctest: +SKIP
    """
    started = time.monotonic()
    kept = _newest([(c, label) for c, label in crates if is_permissive(c.license)])
    extracted, wide = _extract_all(kept, wide_contexts=config.verify != "none")
    unique = deduplicate(extracted)
    samples = _with_features(unique.kept, config.tokens)
    if config.verify != "none":
        samples = verify_samples(
            samples,
            jobs=config.jobs or os.cpu_count(),
            timeout_s=config.timeout_s,
            alternatives=wide,
            cache=verify_cache,
        )
    report = {
        "crates_in": len(crates),
        "crates_not_permissive": sorted(c.name for c, _ in crates if not is_permissive(c.license)),
        "extracted": len(extracted),
        "exact_duplicates": unique.exact,
        "near_duplicates": unique.near,
    }
    return finish_corpus(
        [trim_context(s) for s in samples],
        [ManifestEntry(c.name, c.version, label) for c, label in kept],
        out,
        config,
        {**report, "seconds": round(time.monotonic() - started, 1)},
    )


def finish_corpus(
    samples: Sequence[Sample],
    crates: Sequence[ManifestEntry],
    out: str | Path,
    config: BuildConfig,
    report: dict[str, Any],
) -> dict[str, Any]:
    """Split verified, trimmed samples by crate and write splits, manifest and report.

    Args:
        samples: the samples, ``verified`` already set.
        crates: manifest entries of the input crates; those with samples are written.
        out: the output directory (created).
        config: the build settings (seed and fractions are used here).
        report: counts of the earlier stages, completed here and written as ``build.json``.

    Example:
        >>> finish_corpus(samples, entries, out, BuildConfig(), {})  # doctest: +SKIP
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    splits = split_by_crate(
        samples,
        seed=config.seed,
        val_fraction=config.val_fraction,
        test_fraction=config.test_fraction,
        verified_first=config.verify != "none",
        verified_goals=_goals(config),
        train_only=frozenset(config.train_only),
    )
    for split, part in splits.items():
        write_corpus(out / f"{split}.jsonl.gz", part)
    used = {s.crate for s in samples}
    write_manifest(out / "manifest.txt", [e for e in crates if e.crate in used])
    report = {
        **report,
        "crates_with_samples": len(used),
        "samples": {split: len(part) for split, part in splits.items()},
        "verified": {split: sum(s.verified for s in part) for split, part in splits.items()},
        "verified_goals_met": _goals(config) is None
        or (
            sum(s.verified for s in splits["val"]) >= config.val_verified
            and sum(s.verified for s in splits["test"]) >= config.test_verified
        ),
        "config": codec.to_dict(config),
    }
    write_json(out / "build.json", report)
    return report


def _goals(config: BuildConfig) -> tuple[int, int] | None:
    """Return the (val, test) verified goals, or None when the fractions apply."""
    goals = (config.val_verified, config.test_verified)
    return goals if config.verify != "none" and any(goals) else None


def trim_context(sample: Sample) -> Sample:
    """Cut an unverified sample's context to its ``use`` lines when over the size limit.

    Verified samples keep their context: it is what made them compile. The limit is
    :data:`MAX_CONTEXT_CHARS`; a few huge files (generated protocol bindings) would
    otherwise make most of the corpus's bytes.

    Example:
        >>> trim_context(sample).context  # doctest: +SKIP
        'use std::fmt;'
    """
    if sample.verified or len(sample.context) <= MAX_CONTEXT_CHARS:
        return sample
    uses = sample.context.split("\n\n", 1)[0]
    keep = uses if _USE_LINE.match(uses) else ""
    return dataclasses.replace(sample, context=keep)


def _extract_all(
    crates: list[tuple[CrateSource, str]], *, wide_contexts: bool
) -> tuple[list[Sample], dict[str, str]]:
    """Extract every crate; with ``wide_contexts`` also return id → crate-wide context."""
    extracted: list[Sample] = []
    wide: dict[str, str] = {}
    for crate, _ in crates:
        found = {"name": crate.name, "version": crate.version, "license": crate.license}
        extracted += extract_crate(crate.root, **found)
        if wide_contexts:
            wide |= {s.id: s.context for s in extract_crate(crate.root, **found, wide_context=True)}
    return extracted, wide


def _newest(crates: list[tuple[CrateSource, str]]) -> list[tuple[CrateSource, str]]:
    """Keep one crate per name, the highest version (Debian ships some crates twice)."""
    best: dict[str, tuple[CrateSource, str]] = {}
    for crate, label in crates:
        if crate.name not in best or _version_key(crate.version) > _version_key(
            best[crate.name][0].version
        ):
            best[crate.name] = (crate, label)
    return [best[name] for name in sorted(best)]


def _version_key(version: str) -> tuple[int, ...]:
    """Return the numeric parts of a version, for ordering (``1.10.0`` > ``1.9.2``)."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _with_features(samples: list[Sample], tokens: bool) -> list[Sample]:
    """Return the samples with :func:`sample_features` filled in."""
    counter = qwen_token_counter() if tokens else None
    return [dataclasses.replace(s, features=sample_features(s, counter)) for s in samples]
