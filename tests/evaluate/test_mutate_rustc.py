"""Schemata give the same outcome as separately applied mutants, under rustc, in the sandbox.

Each mutant of a known function is compiled twice: once applied on its own (``apply``), once
as the schema with the switch fixed to that mutant. The test suites then must agree on every
mutant: both compile and pass, both fail, or both fail to compile. The suite of ``FUNCTION``
is strong enough to catch most mutants and a weakened copy (no assertions) catches none.
"""

from __future__ import annotations

import pytest

from coursekit.evaluate.mutate import ENV_VAR, SWITCH, apply, mutants, schema
from coursekit.evaluate.rust import compile_and_run, compile_and_test

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


@pytest.mark.slow
def test_one_schema_compile_serves_every_mutant_through_the_environment(rustc):
    """The real mechanism: compile the schema once, select each mutant with COURSEKIT_MUTANT."""
    found = mutants(FUNCTION)
    envs = [{}] + [{ENV_VAR: str(m.id)} for m in found]
    runs = compile_and_run(schema(FUNCTION, found) + TESTS, envs=envs, timeout_s=10)
    assert (runs[0].compiled, runs[0].passed) == (True, True)  # unset: the original
    separate = [_outcome(apply(FUNCTION, m) + TESTS) for m in found]
    assert [(r.compiled, r.passed) for r in runs[1:]] == separate


def test_repeated_runs_of_one_binary_tell_flaky_from_stable(rustc, tmp_path):
    """A test that fails every other run (a counter file in its own directory) is flaky."""
    flaky = """
#[test]
fn alternates() {
    let n: u32 = std::fs::read_to_string("n").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    std::fs::write("n", (n + 1).to_string()).unwrap();
    assert!(n % 2 == 0);
}
"""
    runs = compile_and_run(flaky, envs=[{}, {}, {}], timeout_s=10)
    assert [r.passed for r in runs] == [True, False, True]
    stable = compile_and_run(FUNCTION + TESTS, envs=[{}, {}, {}], timeout_s=10)
    assert all(r.passed for r in stable)
