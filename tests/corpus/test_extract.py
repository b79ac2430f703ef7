"""Tests of coursekit.corpus.extract and context on the fixture crates."""

from __future__ import annotations

from pathlib import Path

import pytest

from coursekit.corpus.context import collect_items, needed_uses
from coursekit.corpus.extract import ReferenceTest, extract_crate, pick_focal

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"


@pytest.fixture(scope="module")
def mini() -> dict[str, object]:
    samples = extract_crate(FIXTURES / "mini", name="mini", version="0.1.0", license="MIT")
    return {s.id: s for s in samples}


def test_pairs_are_found_in_test_modules_and_tests_dir(mini: dict) -> None:
    assert sorted(mini) == [
        "mini/src/lib.rs::Stack::pop",
        "mini/src/lib.rs::longest",
        "mini/src/lib.rs::ratio",
        "mini/src/lib.rs::word_counts",
        "mini/src/shapes.rs::Rect::area",
        "mini/src/shapes.rs::Rect::is_square",
        "mini/src/shapes.rs::total_area",
    ]


def test_function_keeps_doc_comment_and_attributes(mini: dict) -> None:
    ratio = mini["mini/src/lib.rs::ratio"]
    assert ratio.function.startswith("/// Ratio of two numbers")
    assert "#[inline]" in ratio.function
    assert ratio.function.rstrip().endswith("}")
    assert (ratio.crate, ratio.version, ratio.license, ratio.path) == (
        "mini",
        "0.1.0",
        "MIT",
        "src/lib.rs",
    )


def test_tests_of_one_function_are_grouped(mini: dict) -> None:
    tests = mini["mini/src/lib.rs::ratio"].tests
    assert tests.startswith("#[cfg(test)]\nmod tests {\n    use super::*;")
    assert "fn ratio_divides" in tests and "fn ratio_by_zero" in tests
    assert "nothing_called" not in tests


def test_method_comes_inside_its_impl_header_with_type_in_context(mini: dict) -> None:
    pop = mini["mini/src/lib.rs::Stack::pop"]
    assert pop.function.startswith("impl<T: Clone> Stack<T> {")
    assert "pub fn pop(&mut self)" in pop.function
    assert "pub struct Stack<T>" in pop.context
    assert "pub fn push" in pop.context and "pub fn new" in pop.context
    assert "unused_helper" not in pop.context


def test_context_has_uses_and_trait_impls(mini: dict) -> None:
    assert mini["mini/src/lib.rs::word_counts"].context.startswith("use std::collections::HashMap;")
    area = mini["mini/src/shapes.rs::Rect::area"]
    assert "impl fmt::Display for Rect" in area.context
    assert area.context.startswith("use std::fmt;")


def test_test_module_helpers_come_along(mini: dict) -> None:
    assert "fn sample_text()" in mini["mini/src/lib.rs::word_counts"].tests


def test_integration_test_drops_the_crate_import(mini: dict) -> None:
    square = mini["mini/src/shapes.rs::Rect::is_square"]
    assert "fn is_square_from_outside" in square.tests
    assert "use mini::" not in square.tests


def test_generics_and_lifetimes_are_kept(mini: dict) -> None:
    assert "<'a, T: AsRef<str> + ?Sized>" in mini["mini/src/lib.rs::longest"].function


def test_macros_crate_breaks_name_ties_and_drops_ambiguous_methods() -> None:
    samples = extract_crate(FIXTURES / "macros", name="macros", version="0.2.0", license="ISC")
    ids = [s.id for s in samples]
    # pair_adds_up calls first() and second() once each: the first called wins;
    # ambiguous_size calls .size(), defined by Small and Large: dropped.
    assert ids == [
        "macros/src/lib.rs::first",
        "macros/src/lib.rs::read_byte",
        "macros/src/lib.rs::sum_squares",
    ]
    assert "macro_rules! square" in samples[2].context


def test_property_tests_are_recorded() -> None:
    (sample,) = extract_crate(FIXTURES / "props", name="props", version="1", license="MIT")
    assert sample.property_tests is not None
    assert sample.property_tests.startswith("proptest! {")
    assert "reversed_small" in sample.tests
    assert "use proptest::prelude::*;" not in sample.tests  # unused by the kept tests


def test_crate_without_tests_gives_nothing(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "lib.rs").write_text("pub fn f() {}\n")
    assert extract_crate(tmp_path, name="x", version="1", license="MIT") == []
    assert extract_crate(tmp_path / "missing", name="x", version="1", license="MIT") == []


def test_repeated_names_get_unique_ids(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    body = "pub fn twin() -> u8 { 1 }\n#[cfg(test)]\nmod tests {\n  use super::*;\n"
    body += "  #[test]\n  fn twin_works() { assert_eq!(twin(), 1); }\n}\n"
    (tmp_path / "src" / "lib.rs").write_text(
        f"pub mod a {{\n{body}}}\npub mod b {{\n{body.replace('1', '2')}}}\n"
    )
    ids = [s.id for s in extract_crate(tmp_path, name="t", version="1", license="MIT")]
    assert ids == ["t/src/lib.rs::twin", "t/src/lib.rs::twin#2"]


def test_long_tests_are_cut(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    asserts = "\n".join("    assert_eq!(f(), 1);" for _ in range(60))
    tests = "".join(f"#[test]\nfn f_{i}() {{\n{asserts}\n}}\n" for i in range(4))
    (tmp_path / "src" / "lib.rs").write_text(
        f"pub fn f() -> u8 {{ 1 }}\n#[cfg(test)]\nmod tests {{\nuse super::*;\n{tests}}}\n"
    )
    (sample,) = extract_crate(tmp_path, name="t", version="1", license="MIT")
    assert sample.tests.count("#[test]") == 2


def test_qualifier_narrows_and_ties_are_dropped() -> None:
    items = collect_items(FIXTURES / "mini", FIXTURES / "mini/src/lib.rs")
    by_name: dict = {}
    for d in items.definitions:
        by_name.setdefault(d.name, []).append(d)
    test = ReferenceTest("t", "fn t() { Other::push(1); }", "src/lib.rs", (), (), True)
    assert pick_focal(test, by_name) is None
    test = ReferenceTest("t", "fn t() { Stack::new(); }", "src/lib.rs", (), (), True)
    assert pick_focal(test, by_name).qualname == "Stack::new"


def test_needed_uses_filters_and_adds_alloc() -> None:
    uses = [
        "use std::fmt;",
        "use crate::x::Y;",
        "use serde::{Serialize, de::Deserialize as D};",
        "use alloc::vec::Vec;",
        "use foo::{self, Bar};",
        "use std::fmt;",
        "use unused::Thing;",
    ]
    assert needed_uses(uses, {"D", "foo"}) == [
        "extern crate alloc;",
        "use std::fmt;",
        "use serde::{Serialize, de::Deserialize as D};",
        "use alloc::vec::Vec;",
        "use foo::{self, Bar};",
    ]
