"""Tests of coursekit.evaluate.rust: compile, run, count, time out, cap, limit."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from coursekit.evaluate import parallel, rust
from coursekit.evaluate.parallel import compile_and_test_many
from coursekit.evaluate.rust import (
    RustNotFoundError,
    RustTestResult,
    compile_and_test,
    find_rustc,
)

PASSING = """
/// Adds one.
pub fn add_one(x: i32) -> i32 {
    x + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds() {
        assert_eq!(add_one(1), 2);
    }

    #[test]
    #[should_panic(expected = "overflow")]
    fn overflows_in_debug() {
        add_one(i32::MAX);
    }
}
"""

FAILING = """
#[cfg(test)]
mod tests {
    #[test]
    fn good() {
        assert_eq!(2 + 2, 4);
    }

    #[test]
    fn bad() {
        assert_eq!(2 + 2, 5, "arithmetic is broken");
    }
}
"""


def test_passing_file(rustc: Path) -> None:
    result = compile_and_test(PASSING, rustc=rustc)
    assert result.compiled and result.passed and not result.timed_out
    assert (result.tests_run, result.tests_failed) == (2, 0)
    assert "test result: ok. 2 passed; 0 failed" in result.output
    assert result.compile_seconds > 0 and result.run_seconds > 0


def test_failing_test_is_counted(rustc: Path) -> None:
    result = compile_and_test(FAILING, rustc=rustc)
    assert result.compiled and not result.passed
    assert (result.tests_run, result.tests_failed) == (2, 1)
    assert "arithmetic is broken" in result.output


def test_compile_error_is_reported(rustc: Path) -> None:
    result = compile_and_test('fn f() -> i32 { "not a number" }', rustc=rustc)
    assert not result.compiled and not result.passed
    assert result.tests_run == 0 and result.run_seconds == 0.0
    assert "error[E0308]: mismatched types" in result.output


def test_file_without_tests_does_not_pass(rustc: Path) -> None:
    result = compile_and_test("pub fn f() {}", rustc=rustc)
    assert result.compiled and not result.passed and result.tests_run == 0


def test_infinite_loop_is_killed(rustc: Path) -> None:
    source = "#[test]\nfn spins() { loop { std::hint::spin_loop(); } }\n"
    result = compile_and_test(source, rustc=rustc, timeout_s=1.5)
    assert result.compiled and result.timed_out and not result.passed
    assert 1.5 <= result.run_seconds < 10


def test_slow_compile_is_killed(rustc: Path) -> None:
    result = compile_and_test(PASSING, rustc=rustc, compile_timeout_s=0.001)
    assert not result.compiled and result.timed_out


def test_huge_output_is_capped(rustc: Path) -> None:
    source = (
        "#[test]\nfn floods() {\n"
        '    for i in 0..2_000_000u64 { println!("{i} {}", "x".repeat(60)); }\n'
        '    panic!("printed too much");\n}\n'
    )
    result = compile_and_test(source, rustc=rustc)
    assert not result.passed and result.tests_failed == 1
    assert len(result.output) < rust.EXCERPT_CHARS + 100
    assert "bytes of output truncated" in result.output


def test_limits_and_environment_apply_to_the_test_binary(
    rustc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COURSEKIT_SECRET", "leak")
    source = """
#[test]
fn sandboxed() {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = |name: &str| limits.lines().find(|l| l.starts_with(name)).unwrap().to_string();
    assert!(line("Max address space").contains("1073741824"), "{}", line("Max address space"));
    assert!(line("Max file size").contains("8388608"), "{}", line("Max file size"));
    assert!(line("Max cpu time").contains(" 3 "), "{}", line("Max cpu time"));
    assert!(std::env::var("COURSEKIT_SECRET").is_err());
    let home = std::env::var("HOME").unwrap();
    assert_eq!(std::path::Path::new(&home), std::env::current_dir().unwrap());
}
"""
    result = compile_and_test(source, rustc=rustc, timeout_s=2)
    assert result.passed, result.output


def test_build_directory_is_removed(rustc: Path, tmp_path: Path) -> None:
    result = compile_and_test(PASSING, rustc=rustc, workdir=tmp_path)
    assert result.passed
    assert list(tmp_path.iterdir()) == []


def test_many_keeps_order(rustc: Path) -> None:
    results = compile_and_test_many([PASSING, FAILING, "fn broken("], jobs=2)
    assert [r.passed for r in results] == [True, False, False]
    assert [r.compiled for r in results] == [True, True, False]


def test_many_default_jobs(rustc: Path) -> None:
    assert compile_and_test_many([]) == []


def _fake_rustc(directory: Path, script: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "rustc"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_find_rustc_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(RustNotFoundError, match=r"install Rust \(rustup or Debian's rustc"):
        find_rustc()


def test_find_rustc_falls_back_to_cargo_bin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = _fake_rustc(tmp_path / ".cargo" / "bin", f"echo {tmp_path / 'nowhere'}\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert find_rustc() == fake


def test_find_rustc_resolves_the_sysroot_binary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = _fake_rustc(tmp_path / "sysroot" / "bin", "exit 0\n")
    _fake_rustc(tmp_path / "proxy", f"echo {tmp_path / 'sysroot'}\n")
    monkeypatch.setenv("PATH", str(tmp_path / "proxy"))
    assert find_rustc() == real


def test_find_rustc_broken(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_rustc(tmp_path, "echo 'no default toolchain' >&2\nexit 1\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RustNotFoundError, match="does not run"):
        find_rustc()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc")
def test_count_tests_without_summary() -> None:
    output = "running 3 tests\ntest a ... ok\ntest b - should panic ... FAILED\ntest c ... "
    assert rust._count_tests(output) == (2, 1)


def test_count_tests_sums_summaries() -> None:
    output = (
        "test result: ok. 2 passed; 0 failed; 0 ignored\n"
        "test result: FAILED. 1 passed; 3 failed; 0 ignored\n"
    )
    assert rust._count_tests(output) == (6, 3)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tests_run": -1}, "tests_run must be >= 0"),
        ({"tests_failed": 3}, "tests_failed must be <= tests_run"),
        ({"compiled": False}, "passed must be False when compiled is False"),
    ],
)
def test_result_validation(changes: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "compiled": True,
        "passed": True,
        "tests_run": 2,
        "tests_failed": 0,
        "compile_seconds": 0.1,
        "run_seconds": 0.1,
        "output": "",
        "timed_out": False,
    }
    with pytest.raises(ValueError, match=message):
        RustTestResult(**(fields | changes))


def test_the_compiler_runs_under_its_memory_cap(rustc: Path) -> None:
    # include_str! reads the file while rustc runs: these are the compiler's own limits.
    source = """
const LIMITS: &str = include_str!("/proc/self/limits");
#[test]
fn compiler_was_capped() {
    let line = LIMITS.lines().find(|l| l.starts_with("Max address space")).unwrap();
    assert!(line.contains(&rust_cap().to_string()), "{}", line);
}
fn rust_cap() -> u64 { CAP }
"""
    result = compile_and_test(
        source.replace("CAP", str(rust.COMPILE_MEMORY_BYTES)), rustc=rustc, timeout_s=2
    )
    assert result.passed, result.output
    assert rust.COMPILE_MEMORY_BYTES == 2 << 30


def test_parallelism_is_bounded_by_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "available_memory", lambda: 5 << 30)
    assert parallel.parallel_runs(8, 2 << 30) == 2
    assert parallel.parallel_runs(1, 1 << 30) == 1
    assert parallel.parallel_runs(8, 8 << 30) == 1  # always at least one
    seen: list[int] = []

    class Spy(parallel.ThreadPoolExecutor):
        def __init__(self, max_workers: int) -> None:
            seen.append(max_workers)
            super().__init__(max_workers=max_workers)

    monkeypatch.setattr(parallel, "ThreadPoolExecutor", Spy)
    monkeypatch.setattr(parallel, "find_rustc", lambda: Path("/nonexistent/rustc"))
    monkeypatch.setattr(parallel, "compile_and_test", lambda source, **options: source)
    assert compile_and_test_many(["a", "b", "c"], jobs=8) == ["a", "b", "c"]
    assert seen == [2]  # 5 GiB available / 2 GiB per compile, not 8 jobs


def test_available_memory_is_read() -> None:
    assert (
        0 < parallel.available_memory() <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    )
