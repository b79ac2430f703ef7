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


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 5), st.integers(0, 5)), min_size=1, max_size=30),
    st.integers(0, 5),
    st.sets(st.integers(0, 29)),
    st.booleans(),
)
def test_train_only_crates_never_reach_val_or_test(
    sizes: list[tuple[int, int]], seed: int, pinned: set[int], goals: bool
) -> None:
    samples = [make(f"c{c}", i, verified=i < v) for c, (n, v) in enumerate(sizes) for i in range(n)]
    train_only = {f"c{c}" for c in pinned}
    splits = split_by_crate(
        samples,
        seed=seed,
        verified_goals=(3, 4) if goals else None,
        verified_first=True,
        train_only=train_only,
    )
    assert not {s.crate for s in splits["val"] + splits["test"]} & train_only
    assert sorted(s.id for v in splits.values() for s in v) == sorted(s.id for s in samples)


def test_verified_goals_deal_test_first_then_val_and_unverified_crates_to_train() -> None:
    # 40 crates with 2 verified samples of 3, 40 crates with none
    samples = [make(f"v{c}", i, verified=i < 2) for c in range(40) for i in range(3)]
    samples += [make(f"u{c}", i) for c in range(40) for i in range(3)]
    splits = split_by_crate(samples, seed=0, verified_goals=(10, 20))
    verified = {name: sum(s.verified for s in part) for name, part in splits.items()}
    assert verified == {"train": 50, "val": 10, "test": 20}
    assert all(s.crate.startswith("v") for s in splits["val"] + splits["test"])
    assert {s.crate for s in splits["train"]} >= {f"u{c}" for c in range(40)}
    # a goal that cannot be met takes what there is, never a pinned crate
    short = split_by_crate(samples, verified_goals=(10, 500), train_only={"v0"})
    assert sum(s.verified for s in short["test"]) == 78 and not short["val"]
    with pytest.raises(ValueError, match="verified_goals must be >= 0"):
        split_by_crate(samples, verified_goals=(-1, 2))
