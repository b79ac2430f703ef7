"""Split samples into train, val and test by crate, deterministically from a seed.

No crate is in two splits, so evaluation never sees a function from a crate it trained on.
Crates are sorted by name, shuffled with ``random.Random(seed)``, and dealt out in that
order: to ``val`` until it holds ``val_fraction`` of the samples, then to ``test`` until it
holds ``test_fraction``, the rest to ``train``.

With ``verified_first=True`` the deal order is by share of verified samples (highest
first), the shuffle breaking ties, so the evaluation splits hold the crates whose tests
can be compiled and run. That biases val and test towards self-contained code, which is
what an evaluation that runs generated tests needs; the corpus build uses it.

With ``verified_goals=(val, test)`` the shares are not used: crates with at least one
verified sample are dealt, in that order, to ``test`` until it holds ``test`` verified
samples, then to ``val`` until it holds ``val``; every other crate goes to ``train``, so the
evaluation splits are as large as an evaluation that tells methods apart needs (a 95%
interval of about ±6 points at 250 samples) and training keeps the unverified pairs.

``train_only`` names crates that may never be dealt to val or test, whatever the mode: the
crates whose source a bundled model was pretrained on (the nano model's build record lists
them), so that no evaluation figure of that model is contaminated.

Example:
    >>> splits = split_by_crate(samples, seed=0)  # doctest: +SKIP
    >>> list(splits)  # doctest: +SKIP
    ['train', 'val', 'test']
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Collection, Sequence

from coursekit.data.corpus import SPLITS, Sample


def split_by_crate(
    samples: Sequence[Sample],
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    verified_first: bool = False,
    verified_goals: tuple[int, int] | None = None,
    train_only: Collection[str] = frozenset(),
) -> dict[str, list[Sample]]:
    """Return ``{"train", "val", "test"}`` lists of samples, no crate in two of them.

    Args:
        samples: all samples.
        seed: the shuffle seed.
        val_fraction: share of samples (not crates) to put in ``val``, in [0, 1).
        test_fraction: share for ``test``; the two shares sum to less than 1.
        verified_first: deal crates with the most verified samples (by share) first.
        verified_goals: (val, test) verified-sample goals; replaces the fractions (see the
            module doc).
        train_only: crates that always go to ``train``.

    Raises:
        ValueError: a fraction is outside [0, 1) or they sum to 1 or more.

    Example:
        >>> split_by_crate([], seed=1)
        {'train': [], 'val': [], 'test': []}
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"split_by_crate {name} must be in [0, 1) (got {value})")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"split_by_crate val_fraction + test_fraction must be < 1 "
            f"(got {val_fraction + test_fraction}); leave samples for training"
        )
    if verified_goals is not None and min(verified_goals) < 0:
        raise ValueError(f"split_by_crate verified_goals must be >= 0 (got {verified_goals})")
    by_crate: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_crate[sample.crate].append(sample)
    crates = sorted(by_crate)
    random.Random(seed).shuffle(crates)
    if verified_first:
        share = {c: sum(s.verified for s in v) / len(v) for c, v in by_crate.items()}
        crates.sort(key=lambda c: -share[c])  # stable: the shuffle breaks ties
    splits: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    if verified_goals is not None:
        goals = dict(zip(("val", "test"), verified_goals, strict=True))
        order, size = ("test", "val"), lambda part: sum(s.verified for s in part)
    else:
        goals = {"val": val_fraction * len(samples), "test": test_fraction * len(samples)}
        order, size = ("val", "test"), len
    for crate in crates:
        held_out = crate not in train_only and (
            verified_goals is None or any(s.verified for s in by_crate[crate])
        )
        target = next((s for s in order if held_out and size(splits[s]) < goals[s]), "train")
        splits[target].extend(sorted(by_crate[crate], key=lambda s: s.id))
    return splits
