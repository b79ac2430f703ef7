"""Summarise a corpus directory: counts per split, crates, licenses, lengths, targets.

:func:`corpus_stats` is what ``coursekit corpus stats DIR [--json]`` prints and what the
datasheet (``data/corpus/README.md``) is written from.

Example:
    >>> stats = corpus_stats(seed_dir())  # doctest: +SKIP
    >>> stats["shared_crates"]  # doctest: +SKIP
    []
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from typing import Any

from coursekit.data.corpus import Sample, load_splits

TARGETS = {
    "train_pairs": 3000,
    "crates": 150,
    "verified_val_test": 300,
    "verified_val": 150,
    "verified_test": 250,
}
"""The corpus targets: training pairs, crates, verified pairs in val + test, and the
verified samples of val and test (250 in test give a 95% interval of about ±6 points)."""
FEATURES = ("lines", "tokens", "cyclomatic", "nesting", "parameters", "assertions")
"""Numeric features summarised by :func:`corpus_stats`."""


def corpus_stats(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the statistics of the corpus in ``directory`` (see the module doc).

    Example:
        >>> corpus_stats(seed_dir())["splits"]["train"]["samples"] > 0  # doctest: +SKIP
        True
    """
    splits = load_splits(directory)
    crates_of = {name: {s.crate for s in samples} for name, samples in splits.items()}
    every = [s for samples in splits.values() for s in samples]
    counts = Counter(c for crates in crates_of.values() for c in crates)
    verified_eval = sum(s.verified for name in ("val", "test") for s in splits[name])
    measured = {
        "train_pairs": len(splits["train"]),
        "crates": len(counts),
        "verified_val_test": verified_eval,
        "verified_val": sum(s.verified for s in splits["val"]),
        "verified_test": sum(s.verified for s in splits["test"]),
    }
    return {
        "splits": {
            name: {
                "samples": len(samples),
                "crates": len(crates_of[name]),
                "verified": sum(s.verified for s in samples),
                "with_property_tests": sum(s.property_tests is not None for s in samples),
            }
            for name, samples in splits.items()
        },
        "crates": len(counts),
        "shared_crates": sorted(c for c, n in counts.items() if n > 1),
        "licenses": dict(Counter(s.license for s in every).most_common()),
        "features": {name: _summary(every, name) for name in FEATURES},
        "targets": {
            name: {"target": goal, "measured": measured[name], "met": measured[name] >= goal}
            for name, goal in TARGETS.items()
        },
    }


def _summary(samples: list[Sample], name: str) -> dict[str, float] | None:
    """Return min, median, 90th percentile and max of a numeric feature, or None if absent."""
    values = sorted(
        s.features[name] for s in samples if isinstance(s.features.get(name), int | float)
    )
    if not values:
        return None
    return {
        "min": values[0],
        "median": statistics.median(values),
        "p90": values[min(len(values) - 1, int(0.9 * len(values)))],
        "max": values[-1],
    }
