"""Mutation operators on known functions, apply(), and schemata equal to separate mutants."""

from __future__ import annotations

import doctest

import pytest

from coursekit.evaluate import mutate
from coursekit.evaluate.mutate import SWITCH, apply, body_values, mutants, schema


def _replacements(source: str, genre: str) -> list[tuple[str, str]]:
    return [(m.original, m.replacement) for m in mutants(source) if m.genre == genre]


@pytest.mark.parametrize(
    ("return_type", "values"),
    [
        ("", ["()"]),
        ("i64", ["0", "1", "-1"]),
        ("usize", ["0", "1"]),
        ("f32", ["0.0", "1.0", "-1.0"]),
        ("bool", ["true", "false"]),
        ("String", ["String::new()", '"xyzzy".into()']),
        ("Option<bool>", ["None", "Some(true)", "Some(false)"]),
        ("Result<u8, String>", ["Ok(0)", "Ok(1)"]),
        ("Vec<bool>", ["vec![]", "vec![true]", "vec![false]"]),
        ("Box<u8>", ["Box::new(0)", "Box::new(1)"]),
        ("MyStruct", ["Default::default()"]),
    ],
)
def test_fn_value_by_return_type(return_type, values):
    assert body_values(return_type) == values


def test_fn_value_replaces_the_whole_body():
    source = "fn seven() -> u8 {\n    3 + 4\n}"
    found = [m for m in mutants(source) if m.genre == "FnValue"]
    assert [apply(source, m) for m in found] == ["fn seven() -> u8 { 0 }", "fn seven() -> u8 { 1 }"]
    assert apply("fn f() { g(); }", mutants("fn f() { g(); }")[0]) == "fn f() {}"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("a == b", [("==", "!=")]),
        ("a && b", [("&&", "||")]),
        ("a < b", [("<", "=="), ("<", ">")]),
        ("a >= b", [(">=", "<")]),
        ("a + b", [("+", "-"), ("+", "*")]),
        ("a % b", [("%", "/"), ("%", "+")]),
        ("a << b", [("<<", ">>")]),
        ("a ^ b", [("^", "&"), ("^", "|")]),
    ],
)
def test_binary_operator_table(expression, expected):
    assert _replacements(f"fn f(a: u32, b: u32) {{ let _ = {expression}; }}", "BinaryOperator") == (
        expected
    )


def test_compound_assignment_and_unary_deletion():
    source = "fn f(mut a: i32, b: bool) -> i32 { a += 2; if !b { -a } else { a } }"
    assert _replacements(source, "BinaryOperator") == [("+=", "-="), ("+=", "*=")]
    assert _replacements(source, "UnaryOperator") == [("!", ""), ("-", "")]


def test_match_arms_are_deleted_only_with_a_wildcard_and_without_guards():
    with_wildcard = "fn f(n: u8) -> u8 { match n { 0 => 1, x if x > 9 => 2, _ => 3 } }"
    assert _replacements(with_wildcard, "MatchArm") == [("0 => 1,", "")]
    exhaustive = "fn f(b: bool) -> u8 { match b { true => 1, false => 0 } }"
    assert _replacements(exhaustive, "MatchArm") == []


def test_tests_macros_and_nested_functions_are_not_mutated():
    source = (
        "fn f(a: u8) -> u8 { let v = vec![a + 1]; v[0] }\n"
        "#[cfg(test)]\nmod tests { #[test] fn t() { assert!(1 + 1 == 2); } }"
    )
    assert all(m.start < source.index("#[cfg(test)]") for m in mutants(source))
    assert _replacements(source, "BinaryOperator") == []  # a + 1 sits inside vec![]


def test_methods_inside_impl_blocks_are_mutated_and_ids_count_from_one():
    source = "impl Counter {\n    fn next(&mut self) -> u32 { self.n += 1; self.n }\n}"
    found = mutants(source)
    assert [m.id for m in found] == list(range(1, len(found) + 1))
    assert {m.genre for m in found} == {"FnValue", "BinaryOperator"} and found[0].line == 2


def test_schema_refuses_a_mutant_from_another_source():
    other = mutants("fn g() -> bool { true }")[0]
    with pytest.raises(ValueError, match="is not from this source"):
        schema("fn g() -> u64 { 7 }", [other])


def test_schema_without_mutants_is_the_source_and_the_switch():
    source = "fn f(a: i32) -> i32 { a * 2 }"
    assert schema(source, []) == source + SWITCH


def test_docstring_examples():
    assert doctest.testmod(mutate, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
