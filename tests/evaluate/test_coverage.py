"""Finding LLVM's coverage tools (fake ones on a PATH of our own), and measuring for real.

Discovery runs against a fake ``rustc`` (it reports rustc 1.95.0 on LLVM 22) and fake
``llvm-profdata``/``llvm-cov`` scripts that print a version: the verdict for a matching
versioned pair, a matching unversioned pair, rustup's ``llvm-tools`` in the sysroot, a
mismatched major and nothing at all. The measurement tests compile, run and read real
programs; they run where :func:`find_tools` finds tools and are skipped, naming the package
to install, where it does not.
"""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import pytest

from coursekit.data.corpus import Sample
from coursekit.errors import CoursekitError
from coursekit.evaluate.coverage import (
    CoverageTools,
    doctor_row,
    export,
    find_tools,
    probe,
    tool_major,
)
from coursekit.evaluate.coverage_lines import line_counts
from coursekit.evaluate.judge import assemble, function_lines, judge

HOST = "x86_64-unknown-linux-gnu"
HINT = (
    "install llvm-22 (rustc 1.95.0 uses LLVM 22): Debian package llvm-22, or "
    "`rustup component add llvm-tools`"
)


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _tool(directory: Path, name: str, major: int) -> Path:
    return _script(directory / name, f'echo "Debian LLVM version {major}.1.7"\n')


@pytest.fixture
def fake_rustc(tmp_path: Path) -> Path:
    """A rustc that reports release 1.95.0, LLVM 22 and a sysroot under ``tmp_path``."""
    verbose = (
        f"rustc 1.95.0\\nbinary: rustc\\nhost: {HOST}\\nrelease: 1.95.0\\nLLVM version: 22.1.2"
    )
    body = f'case "$1" in -vV) printf "{verbose}\\n";; --print) echo "{tmp_path}/sysroot";; esac\n'
    return _script(tmp_path / "sysroot" / "bin" / "rustc", body)


def _find(rustc: Path, *directories: Path) -> CoverageTools:
    path = ":".join(str(d) for d in directories)
    return find_tools(rustc=rustc, search_path=path, probe_others=False)


def test_versioned_tools_of_rustcs_llvm_are_taken_first(fake_rustc, tmp_path):
    bin_dir = tmp_path / "bin"
    wanted = [_tool(bin_dir, f"{name}-22", 22) for name in ("llvm-profdata", "llvm-cov")]
    _tool(bin_dir, "llvm-profdata", 14), _tool(bin_dir, "llvm-cov", 14)
    tools = _find(fake_rustc, bin_dir)
    assert tools.available and [tools.profdata, tools.cov] == wanted
    assert (tools.rustc_release, tools.llvm_major, tools.reason) == ("1.95.0", 22, "")


def test_unversioned_tools_count_when_their_major_matches(fake_rustc, tmp_path):
    bin_dir = tmp_path / "bin"
    _tool(bin_dir, "llvm-profdata", 22), _tool(bin_dir, "llvm-cov", 22)
    tools = _find(fake_rustc, bin_dir)
    assert tools.available and tools.cov == bin_dir / "llvm-cov"


def test_rustups_llvm_tools_in_the_sysroot_are_the_third_choice(fake_rustc, tmp_path):
    bundled = tmp_path / "sysroot" / "lib" / "rustlib" / HOST / "bin"
    _tool(bundled, "llvm-profdata", 22), _tool(bundled, "llvm-cov", 22)
    tools = _find(fake_rustc, tmp_path / "empty")
    assert tools.available and tools.profdata == bundled / "llvm-profdata"
    assert "llvm-tools" in tools.found


def test_a_mismatched_major_is_unavailable_and_names_what_to_install(fake_rustc, tmp_path):
    bin_dir = tmp_path / "bin"
    # LLVM 14's llvm-profdata rejects --version and answers only to `merge --version`
    _script(bin_dir / "llvm-profdata", '[ "$1" = merge ] && echo "LLVM version 14.0.6" || exit 1\n')
    _tool(bin_dir, "llvm-cov", 14), _tool(bin_dir, "llvm-profdata-19", 19)  # no llvm-cov-19
    assert tool_major(bin_dir / "llvm-profdata") == 14
    tools = _find(fake_rustc, bin_dir)
    assert not tools.available and tools.reason == HINT
    assert tools.found == f"LLVM 14 tools at {bin_dir / 'llvm-profdata'} (not probed)"


def test_no_tools_at_all_is_unavailable_with_the_same_hint(fake_rustc, tmp_path):
    tools = _find(fake_rustc, tmp_path / "empty")
    assert not tools.available and tools.reason == HINT
    assert tools.found.startswith("no llvm-profdata/llvm-cov of LLVM 22 on PATH or in ")


def test_without_rustc_coverage_is_unavailable(tmp_path):
    tools = find_tools(rustc=tmp_path / "no-rustc", search_path=str(tmp_path))
    assert not tools.available and tools.rustc is None and "install Rust" in tools.reason


def test_the_doctor_row_names_the_tools_or_the_install_hint(fake_rustc, tmp_path):
    status, detail, fix = doctor_row(_find(fake_rustc, tmp_path / "empty"))
    assert (status, fix) == ("WARN", HINT) and detail.startswith("line coverage unavailable: ")
    bin_dir = tmp_path / "bin"
    _tool(bin_dir, "llvm-profdata-22", 22), _tool(bin_dir, "llvm-cov-22", 22)
    status, detail, fix = doctor_row(_find(fake_rustc, bin_dir))
    assert (status, fix) == ("OK", "") and str(bin_dir / "llvm-cov-22") in detail


def test_inconsistent_tools_are_refused():
    with pytest.raises(ValueError, match=r"CoverageTools\.reason must be empty exactly when"):
        CoverageTools(rustc=Path("rustc"), profdata=Path("p"), cov=Path("c"), found="x", reason="y")
    with pytest.raises(ValueError, match="needs rustc, profdata and cov together"):
        CoverageTools(rustc=None, profdata=Path("p"), cov=Path("c"), found="x")


def test_tools_of_another_major_must_pass_a_real_probe(rustc, tmp_path):
    """Tools that run and print a version but read no profile fail the probe: unavailable."""
    real = find_tools(rustc=rustc, search_path=str(tmp_path / "empty"), probe_others=False)
    other = real.llvm_major - 1
    with tempfile.TemporaryDirectory() as shared:  # the sandbox's uid must reach the tools
        bin_dir = Path(shared)
        bin_dir.chmod(0o755)
        _tool(bin_dir, f"llvm-profdata-{other}", other), _tool(bin_dir, f"llvm-cov-{other}", other)
        tools = find_tools(rustc=rustc, search_path=str(bin_dir))
    assert not tools.available and tools.reason.startswith(f"install llvm-{real.llvm_major} ")
    assert tools.found.startswith(f"LLVM {other} tools at {bin_dir}/llvm-profdata-{other} failed")
    assert "llvm-cov export wrote no readable JSON" in tools.found


@pytest.fixture(scope="module")
def tools(rustc) -> CoverageTools:
    found = find_tools()
    if not found.available:
        pytest.skip(f"line coverage needs LLVM tools: {found.reason}")
    return found


CLASSIFY = """pub fn classify(n: i32) -> i32 {
    if n < 0 {
        -1
    } else if n > 100 {
        2
    } else {
        1
    }
}"""


def _answer(*calls: str) -> str:
    body = "\n".join(f"    #[test] fn t{i}() {{ let _ = {c}; }}" for i, c in enumerate(calls))
    return f"```rust\n#[cfg(test)]\nmod tests {{\n    use super::*;\n{body}\n}}\n```"


def test_the_probe_passes_and_our_line_counts_equal_llvm_covs_own(tools):
    assert probe(tools) == ""
    source = assemble(SAMPLE, _answer("classify(5)").split("```rust\n")[1].rstrip("`\n"))
    entry = export(source, tools)
    counts = line_counts(entry["segments"], range(1, source.count("\n") + 2))
    lines = entry["summary"]["lines"]
    assert (len(counts), sum(c > 0 for c in counts.values())) == (lines["count"], lines["covered"])


SAMPLE = Sample(
    id="demo/classify", crate="demo", version="0.1.0", license="MIT", path="src/lib.rs",
    context="use std::cmp::Ordering;", function=CLASSIFY, tests="mod tests {}",
)  # fmt: skip


@pytest.mark.slow
def test_judged_coverage_grows_with_the_branches_the_tests_reach(tools):
    """Claim that could be false: coverage of the function alone, 0 → partial → 1."""
    first, last = function_lines(SAMPLE)
    assert assemble(SAMPLE, "mod t {}").splitlines()[first - 1 : last] == CLASSIFY.splitlines()
    answers = {
        "none": _answer("1 + 1"),
        "one": _answer("classify(5)"),
        "all": _answer("classify(-3)", "classify(500)", "classify(5)"),
    }
    coverage = {
        name: judge(SAMPLE, answer, runs=1, max_mutants=0, coverage_tools=tools).coverage
        for name, answer in answers.items()
    }
    assert coverage["none"] == 0.0 and coverage["all"] == 1.0, coverage
    assert 0.0 < coverage["one"] < 1.0, coverage
    assert judge(SAMPLE, answers["all"], runs=1, max_mutants=0).coverage is None  # not asked


@pytest.mark.parametrize(
    ("call", "culprit"),
    [
        (lambda: find_tools(rustc=3), "rustc must be a path"),
        (lambda: find_tools(search_path=["/usr/bin"]), "search_path must be a PATH string"),
        (lambda: export(None, UNAVAILABLE), "coverage export source"),
        (lambda: export("fn f() {}", "tools"), "tools must be a CoverageTools"),
        (lambda: export("fn f() {}", UNAVAILABLE), "coverage is unavailable: install llvm-22"),
    ],
)
def test_bad_input_is_one_line_naming_the_culprit(call, culprit):
    with pytest.raises(CoursekitError) as caught:
        call()
    message = str(caught.value)
    assert culprit in message and "\n" not in message


UNAVAILABLE = CoverageTools(rustc=None, found="nothing", reason=HINT)
