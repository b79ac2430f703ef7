"""Tests of coursekit.corpus.features: each feature on a function where it is known."""

from __future__ import annotations

import pytest

from coursekit.corpus.features import function_features, qwen_token_counter, sample_features
from coursekit.data.corpus import Sample

BRANCHY = """
/// Classifies.
fn classify(x: i32, y: i32) -> &'static str {
    if x > 0 && y > 0 {
        for _ in 0..2 {
            while false {
                loop { break; }
            }
        }
        "both"
    } else {
        match x {
            0 => "zero",
            1 => "one",
            _ => "other",
        }
    }
}
"""


def test_cyclomatic_counts_each_branch_point() -> None:
    # 1 + if + && + for + while + loop + (3 arms - 1) = 8
    assert function_features(BRANCHY)["cyclomatic"] == 8


def test_nesting_depth() -> None:
    assert function_features(BRANCHY)["nesting"] == 5
    assert function_features("fn f() {}")["nesting"] == 1


def test_try_operator_counts_as_branch() -> None:
    assert function_features("fn f() -> Option<u8> { Some(g()? + 1) }")["cyclomatic"] == 2


def test_signature_features() -> None:
    features = function_features(
        "pub async unsafe fn f<'a, 'b, T, const N: usize>(&self, x: &'a T, y: &'b [u8; N]) {}"
    )
    assert features["parameters"] == 3
    assert features["generics"] == 2
    assert features["lifetimes"] == 2
    assert features["async"] and features["unsafe"]


def test_closures_and_method_inside_impl() -> None:
    source = "impl S {\n    fn m(&self) -> u32 { self.v.iter().map(|x| x + 1).sum() }\n}"
    features = function_features(source)
    assert features["closures"] == 1 and features["parameters"] == 1
    assert features["lines"] == 3


def test_source_without_function() -> None:
    features = function_features("struct S;")
    assert features["parameters"] == 0 and features["nesting"] == 0


@pytest.fixture()
def sample() -> Sample:
    return Sample(
        id="c/f",
        crate="c",
        version="1",
        license="MIT",
        path="src/lib.rs",
        function="fn f() { unsafe { g() } }",
        tests="#[test]\nfn a() { assert!(true); assert_eq!(1, 1); debug_assert_ne!(1, 2); }\n"
        "#[test]\nfn b() {}",
    )


def test_sample_features(sample: Sample) -> None:
    features = sample_features(sample, lambda text: len(text.split()))
    assert (features["tests"], features["assertions"]) == (2, 3)
    assert features["unsafe"] and features["tokens"] == 8
    assert "tokens" not in sample_features(sample)


def test_qwen_token_counter() -> None:
    count = qwen_token_counter()
    assert 0 < count("fn main() {}") < 10
