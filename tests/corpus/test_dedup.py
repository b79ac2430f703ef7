"""Tests of coursekit.corpus.dedup."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from coursekit.corpus.dedup import deduplicate, digest, normalise
from coursekit.data.corpus import Sample


def make(id: str, function: str, tests: str = "mod tests {}") -> Sample:
    return Sample(
        id=id,
        crate=id.split("/")[0],
        version="1",
        license="MIT",
        path="src/lib.rs",
        function=function,
        tests=tests,
    )


def test_normalise_drops_comments_and_whitespace() -> None:
    assert normalise("fn f() {  // c\n /* block\n */ 1 }") == "fn f() { 1 }"


def test_exact_and_near_duplicates_are_dropped_first_id_kept() -> None:
    a = make("b/x", "fn f() { 1 }")
    exact = make("c/x", "fn f() { 1 }")
    near = make("a/x", "fn f() {\n    // one\n    1\n}", tests="mod other {}")
    other = make("d/x", "fn g() { 2 }")
    report = deduplicate([a, exact, near, other])
    assert [s.id for s in report.kept] == ["a/x", "d/x"]
    assert (report.exact, report.near) == (1, 1)


def test_digest_is_sha256() -> None:
    assert len(digest("x")) == 64


@given(st.lists(st.sampled_from(["fn a() {}", "fn  a() {}", "fn b() {}"]), max_size=8))
def test_dedup_is_order_independent_and_counts_add_up(functions: list[str]) -> None:
    samples = [make(f"c{i}/f", f) for i, f in enumerate(functions)]
    forward, backward = deduplicate(samples), deduplicate(samples[::-1])
    assert [s.id for s in forward.kept] == [s.id for s in backward.kept]
    assert len(forward.kept) + forward.exact + forward.near == len(samples)
    assert len({normalise(s.function) for s in forward.kept}) == len(forward.kept)
