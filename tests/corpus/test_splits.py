"""Tests of coursekit.corpus.splits: by crate, deterministic, fractions, verified first."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.corpus.splits import split_by_crate
from coursekit.data.corpus import Sample


def make(crate: str, index: int, verified: bool = False) -> Sample:
    return Sample(
        id=f"{crate}/{index}",
        crate=crate,
        version="1",
        license="MIT",
        path="src/lib.rs",
        function="fn f() {}",
        tests="mod tests {}",
        verified=verified,
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=30), st.integers(0, 5))
def test_no_crate_in_two_splits_and_nothing_lost(sizes: list[int], seed: int) -> None:
    samples = [make(f"c{c}", i) for c, n in enumerate(sizes) for i in range(n)]
    splits = split_by_crate(samples, seed=seed, val_fraction=0.2, test_fraction=0.2)
    crates = [{s.crate for s in v} for v in splits.values()]
    assert not (crates[0] & crates[1] or crates[0] & crates[2] or crates[1] & crates[2])
    assert sorted(s.id for v in splits.values() for s in v) == sorted(s.id for s in samples)
    assert splits == split_by_crate(samples, seed=seed, val_fraction=0.2, test_fraction=0.2)


def test_fractions_are_respected_roughly() -> None:
    samples = [make(f"c{c}", i) for c in range(100) for i in range(3)]
    splits = split_by_crate(samples, seed=0)
    assert [len(v) for v in splits.values()] == [240, 30, 30]
    assert split_by_crate(samples, seed=1) != splits


def test_verified_first_puts_verified_crates_in_eval_splits() -> None:
    samples = [make(f"c{c}", i, verified=c % 5 == 0) for c in range(100) for i in range(2)]
    splits = split_by_crate(samples, seed=3, verified_first=True)
    assert all(s.verified for s in splits["val"] + splits["test"])
    assert not any(s.verified for s in splits["train"])


@pytest.mark.parametrize(
    ("val", "test", "message"),
    [(-0.1, 0.1, "val_fraction"), (0.1, 1.0, "test_fraction"), (0.5, 0.5, "sum")],
)
def test_bad_fractions(val: float, test: float, message: str) -> None:
    with pytest.raises(ValueError, match="must be"):
        split_by_crate([], val_fraction=val, test_fraction=test)


def test_empty() -> None:
    assert split_by_crate([]) == {"train": [], "val": [], "test": []}
    assert dataclasses.is_dataclass(make("a", 1))
