"""Schemata give the same outcome as separately applied mutants, under rustc, in the sandbox.

Each mutant of a known function is compiled twice: once applied on its own (``apply``), once
as the schema with the switch fixed to that mutant. The test suites then must agree on every
mutant: both compile and pass, both fail, or both fail to compile. The suite of ``FUNCTION``
is strong enough to catch most mutants and a weakened copy (no assertions) catches none.
"""

from __future__ import annotations

import pytest

from coursekit.evaluate.mutate import SWITCH, apply, mutants, schema
from coursekit.evaluate.rust import RustNotFoundError, compile_and_test, find_rustc

FUNCTION = """pub fn clamp_sign(n: i32, limit: i32) -> i32 {
    if n > limit {
        limit
    } else if n < -limit {
        -limit
    } else {
        match n % 3 {
            0 => n * 2,
            _ => n + 1,
        }
    }
}
"""
TESTS = """
#[cfg(test)]
mod tests {
    use super::*;
    #[test] fn above() { assert_eq!(clamp_sign(50, 10), 10); }
    #[test] fn below() { assert_eq!(clamp_sign(-50, 10), -10); }
    #[test] fn multiple_of_three() { assert_eq!(clamp_sign(3, 10), 6); }
    #[test] fn other() { assert_eq!(clamp_sign(4, 10), 5); }
    #[test] fn at_limit() { assert_eq!(clamp_sign(10, 10), 11); }
}
"""
WEAK_TESTS = TESTS.replace("assert_eq!(", "let _ = (")


def _fixed(switch_id: int) -> str:
    """The schema's switch, with mutant ``switch_id`` always active (no environment)."""
    return f"#[allow(dead_code)]\nfn __ck_mutant(id: u32) -> bool {{ id == {switch_id} }}\n"


@pytest.fixture(scope="module")
def rustc():
    try:
        return find_rustc()
    except RustNotFoundError as error:
        pytest.skip(f"rustc is needed: {error}")


def _outcome(source: str) -> tuple[bool, bool]:
    result = compile_and_test(source, timeout_s=10)
    return result.compiled, result.passed


@pytest.mark.slow
def test_schema_equals_separate_mutants_and_weak_tests_catch_less(rustc):
    found = mutants(FUNCTION)
    assert len(found) >= 10
    assert _outcome(FUNCTION + TESTS) == (True, True)  # the baseline passes first
    schema_text = schema(FUNCTION, found).removesuffix(SWITCH)
    caught = {"strong": 0, "weak": 0}
    for mutant in found:
        separate = _outcome(apply(FUNCTION, mutant) + TESTS)
        switched = _outcome(schema_text + _fixed(mutant.id) + TESTS)
        assert separate == switched, mutant.describe()
        caught["strong"] += separate == (True, False)
        caught["weak"] += _outcome(apply(FUNCTION, mutant) + WEAK_TESTS) == (True, False)
    assert caught["strong"] >= len(found) - 2 and caught["weak"] == 0
    assert _outcome(schema_text + _fixed(0) + TESTS) == (True, True)  # no mutant: original
