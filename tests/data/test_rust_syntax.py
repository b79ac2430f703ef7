"""Tests of coursekit.data.rust_syntax."""

from __future__ import annotations

from coursekit.data import rust_syntax as rs


def test_syntax_helpers() -> None:
    root = rs.parse("//! Crate doc.\n/// One.\n#[inline]\nfn one() {}\nimpl<T> a::Foo<T> {}\n")
    function, impl = root.root_node.named_children[-2:]
    assert rs.item_source(function) == "/// One.\n#[inline]\nfn one() {}"
    assert rs.attributes(function) == ["#[inline]"]
    assert rs.impl_type_name(impl) == "Foo"
    assert rs.impl_header(impl) == "impl<T> a::Foo<T> {"
    assert rs.name_of(impl) == ""
    assert not rs.is_test_function(function) and not rs.is_test_module(function)
