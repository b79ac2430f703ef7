"""Tests of coursekit.data.rust_syntax."""

from __future__ import annotations

import pytest

from coursekit.data import rust_syntax as rs
from coursekit.data.rust_syntax import impl_header, item_source, parse


def test_syntax_helpers() -> None:
    root = rs.parse("//! Crate doc.\n/// One.\n#[inline]\nfn one() {}\nimpl<T> a::Foo<T> {}\n")
    function, impl = root.root_node.named_children[-2:]
    assert rs.item_source(function) == "/// One.\n#[inline]\nfn one() {}"
    assert rs.attributes(function) == ["#[inline]"]
    assert rs.impl_type_name(impl) == "Foo"
    assert rs.impl_header(impl) == "impl<T> a::Foo<T> {"
    assert rs.name_of(impl) == ""
    assert not rs.is_test_function(function) and not rs.is_test_module(function)


@pytest.mark.parametrize("lead", ["", "\n\n", "   \n", "//! crate docs\n\n"])
def test_item_text_is_exact_whatever_precedes_the_first_token(lead: str) -> None:
    """The root's text starts at the first token: offsets are taken relative to it."""
    source = lead + "#[test]\nfn t() { assert!(true); }\nimpl<T> Foo<T> { fn f() {} }\n"
    root = parse(source).root_node
    items = [n for n in root.named_children if n.type in ("function_item", "impl_item")]
    assert item_source(items[0]) == "#[test]\nfn t() { assert!(true); }"
    assert impl_header(items[1]) == "impl<T> Foo<T> {"
