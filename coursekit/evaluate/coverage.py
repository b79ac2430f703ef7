r"""Line coverage of the function under test: ``-C instrument-coverage``, read by LLVM's tools.

rustc instruments the assembled test file; the test binary writes a raw profile when it
exits (``LLVM_PROFILE_FILE``); ``llvm-profdata merge`` indexes it and ``llvm-cov export``
joins it with the binary's coverage map into JSON, whose segments
:mod:`coursekit.evaluate.coverage_lines` reduces to lines as ``llvm-cov`` does. The line
coverage of the function is covered / instrumented lines within its line range.

Both formats change with LLVM's version, so the tools must read rustc's. :func:`find_tools`
takes, in order: ``llvm-profdata-N``/``llvm-cov-N`` on PATH for N = rustc's LLVM major
(Debian's ``llvm-N``); unversioned ones whose ``--version`` major is N; rustup's
``llvm-tools`` in rustc's sysroot; last, tools of another version that pass :func:`probe`
(a tiny program compiled, run and read back line by line), never a version guess. Without
any, coverage is unavailable and ``reason`` says what to install.

Every step runs in the sandbox (:func:`coursekit.evaluate.sandbox.run_sandboxed`), the two
LLVM tools too: they parse what the untrusted program wrote (the profile) or shaped (the
binary's coverage map), and need only their own install (bound read-only) and the work dir.

Example:
    >>> tools = find_tools()  # doctest: +SKIP
    >>> tools.available or tools.reason  # doctest: +SKIP
    'install llvm-22 (rustc 1.95.0 uses LLVM 22): Debian package llvm-22, or ...'
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from coursekit.errors import CoursekitError
from coursekit.evaluate.checks import check_directory, check_seconds, check_text
from coursekit.evaluate.coverage_lines import line_counts, line_coverage
from coursekit.evaluate.rust import (
    COMPILE_MEMORY_BYTES,
    RUST_ENV,
    RustNotFoundError,
    binary_limits,
    compiler_limits,
    find_rustc,
)
from coursekit.evaluate.sandbox import SandboxInputError, SandboxLimits, run_sandboxed

TOOLS = ("llvm-profdata", "llvm-cov")
"""The two LLVM tools coverage needs, in the order :class:`CoverageTools` holds them."""
PROBE_SOURCE = """pub fn sign(n: i32) -> i32 {
    if n > 0 {
        1
    } else if n < 0 {
        -1
    } else {
        0
    }
}

#[test]
fn positive() { assert_eq!(sign(5), 1); }
"""
"""The probe's program: its test runs line 3 of ``sign`` and neither line 5 nor line 7."""
_LLVM_VERSION = re.compile(r"LLVM version:? (\d+)\.")
_VERSIONED = re.compile(r"llvm-profdata-(\d+)")


class CoverageError(CoursekitError):
    """A step of the coverage measurement failed (the message names the step and why)."""


@dataclass(frozen=True, kw_only=True)
class CoverageTools:
    """The LLVM tools that read rustc's coverage data, or why there are none.

    Example:
        >>> CoverageTools(rustc=None, found="no rustc", reason="install Rust").available
        False
    """

    rustc: Path | None
    """The compiler the tools were matched to (None: no working rustc)."""
    rustc_release: str = ""
    """Its release, e.g. ``1.95.0``."""
    llvm_major: int | None = None
    """The major version of its LLVM (``rustc -vV``)."""
    profdata: Path | None = None
    """``llvm-profdata``, or None when unavailable."""
    cov: Path | None = None
    """``llvm-cov``, or None when unavailable."""
    found: str
    """How the tools were found, or what was found instead."""
    reason: str = ""
    """Why coverage is unavailable and what to install; empty when available."""

    def __post_init__(self) -> None:
        tools = (self.rustc, self.profdata, self.cov)
        if any(t is not None for t in tools[1:]) and not all(t is not None for t in tools):
            raise ValueError(
                f"CoverageTools needs rustc, profdata and cov together (got {tools}); "
                "set all three, or only rustc for unavailable tools"
            )
        if self.available == bool(self.reason):
            raise ValueError(
                "CoverageTools.reason must be empty exactly when the tools are set "
                f"(got {self.reason!r:.60})"
            )

    @property
    def available(self) -> bool:
        """Whether coverage can be measured with these tools."""
        return self.profdata is not None and self.cov is not None


def tool_major(tool: str | os.PathLike[str]) -> int | None:
    """Return the LLVM major version ``tool --version`` reports, or None when it says none.

    ``llvm-profdata`` before LLVM 15 knows only ``llvm-profdata merge --version``.

    Example:
        >>> tool_major("/nonexistent/llvm-cov") is None
        True
    """
    for arguments in (["--version"], ["merge", "--version"]):
        try:
            done = subprocess.run(
                [os.fspath(tool), *arguments], capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode == 0 and (found := _LLVM_VERSION.search(done.stdout)):
            return int(found.group(1))
    return None


def find_tools(
    *,
    rustc: str | os.PathLike[str] | None = None,
    search_path: str | None = None,
    probe_others: bool = True,
) -> CoverageTools:
    """Return the coverage tools that read ``rustc``'s data (see the module doc), once per process.

    Args:
        rustc: the compiler (default: :func:`coursekit.evaluate.rust.find_rustc`).
        search_path: the PATH searched (default: this process's ``PATH``).
        probe_others: whether tools of another LLVM version may be tried by :func:`probe`
            (a sandboxed compile and run); without it they are only reported.

    Example:
        >>> find_tools(rustc="/nonexistent/rustc").available
        False
    """
    if rustc is not None and not isinstance(rustc, str | os.PathLike):
        raise SandboxInputError(f"rustc must be a path or a command name (got {rustc!r:.60})")
    if search_path is not None and not isinstance(search_path, str):
        raise SandboxInputError(f"search_path must be a PATH string (got {search_path!r:.60})")
    return _find_tools(rustc, search_path, bool(probe_others))


@functools.cache
def _find_tools(
    rustc: str | os.PathLike[str] | None, search_path: str | None, probe_others: bool
) -> CoverageTools:
    """:func:`find_tools` on checked arguments, cached for the process."""
    try:
        compiler = find_rustc() if rustc is None else _named(rustc)
        release, major, sysroot_bin = _rustc_facts(compiler)
    except RustNotFoundError as error:
        reason = "install Rust (rustup or Debian's rustc package): coverage instruments with rustc"
        return CoverageTools(rustc=None, found=f"no working rustc ({error})", reason=reason)
    facts = {"rustc": compiler, "rustc_release": release, "llvm_major": major}
    path = os.environ.get("PATH", os.defpath) if search_path is None else search_path
    matching = _matching(major, sysroot_bin, path)
    if matching is not None:
        (profdata, cov), how = matching
        return CoverageTools(**facts, profdata=profdata, cov=cov, found=how)
    others, failures = _others(major, path), []
    for other, (profdata, cov) in others if probe_others else []:
        how = f"LLVM {other} tools {profdata}, {cov}: rustc's LLVM {major} data, probed"
        candidate = CoverageTools(**facts, profdata=profdata, cov=cov, found=how)
        why = probe(candidate)
        if not why:
            return candidate
        failures.append(f"LLVM {other} tools at {profdata} failed the probe: {why}")
    seen = failures or [f"LLVM {other} tools at {tools[0]} (not probed)" for other, tools in others]
    reason = (
        f"install llvm-{major} (rustc {release} uses LLVM {major}): Debian package "
        f"llvm-{major}, or `rustup component add llvm-tools`"
    )
    found = (
        "; ".join(seen) or f"no llvm-profdata/llvm-cov of LLVM {major} on PATH or in {sysroot_bin}"
    )
    return CoverageTools(**facts, found=found, reason=reason)


def _named(rustc: str | os.PathLike[str]) -> Path:
    """Return the absolute path of the compiler named by a path or a command on PATH."""
    found = shutil.which(os.fspath(rustc))
    if found is None:
        raise RustNotFoundError(f"rustc {os.fspath(rustc)!r} is no executable file or command")
    return Path(os.path.abspath(found))


def _rustc_facts(compiler: Path) -> tuple[str, int, Path]:
    """Return (release, LLVM major, the sysroot's ``lib/rustlib/<host>/bin``) of ``compiler``."""
    try:
        verbose = subprocess.run(
            [str(compiler), "-vV"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        sysroot = subprocess.run(
            [str(compiler), "--print", "sysroot"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError) as error:
        raise RustNotFoundError(f"{compiler} does not run ({error})") from None
    fields = dict(re.findall(r"^([\w -]+): (.+)$", verbose, re.MULTILINE))
    major = _LLVM_VERSION.search(verbose)
    if major is None or "release" not in fields or "host" not in fields:
        raise RustNotFoundError(f"`{compiler} -vV` names no release, host or LLVM version")
    bundled = Path(sysroot) / "lib" / "rustlib" / fields["host"] / "bin"
    return fields["release"], int(major.group(1)), bundled


def _pair(names: Sequence[str], path: str) -> tuple[Path, Path] | None:
    """Return (llvm-profdata, llvm-cov) found on ``path`` under ``names``, or None."""
    found = [shutil.which(name, path=path) for name in names]
    return (Path(found[0]), Path(found[1])) if found[0] and found[1] else None


def _matching(major: int, sysroot_bin: Path, path: str) -> tuple[tuple[Path, Path], str] | None:
    """Return the tools of LLVM ``major`` and how they were found, or None."""
    versioned = _pair([f"{tool}-{major}" for tool in TOOLS], path)
    if versioned is not None:
        return versioned, f"LLVM {major} tools {versioned[0]}, {versioned[1]}"
    plain = _pair(TOOLS, path)
    if plain is not None and all(tool_major(tool) == major for tool in plain):
        return plain, f"LLVM {major} tools {plain[0]}, {plain[1]}"
    bundled = (sysroot_bin / TOOLS[0], sysroot_bin / TOOLS[1])
    if all(tool.is_file() and os.access(tool, os.X_OK) for tool in bundled):
        return bundled, f"rustup's llvm-tools in {sysroot_bin}"
    return None


def _others(major: int, path: str) -> list[tuple[int, tuple[Path, Path]]]:
    """Return tool pairs of other LLVM versions on ``path``, newest first."""
    majors = set()
    for directory in path.split(os.pathsep):
        try:
            names = os.listdir(directory or ".")
        except OSError:
            continue
        majors |= {int(m.group(1)) for name in names if (m := _VERSIONED.fullmatch(name))}
    pairs = {}
    for other in majors - {major}:
        if (found := _pair([f"{tool}-{other}" for tool in TOOLS], path)) is not None:
            pairs[other] = found
    plain = _pair(TOOLS, path)
    versions = {tool_major(tool) for tool in plain} if plain is not None else set()
    other = versions.pop() if len(versions) == 1 else None
    if plain is not None and other is not None and other != major and other not in pairs:
        pairs[other] = plain
    return sorted(pairs.items(), reverse=True)


def probe(tools: CoverageTools) -> str:
    """Return "" if ``tools`` read a tiny instrumented program right, else why not (one line).

    :data:`PROBE_SOURCE` is compiled, run and read back in the sandbox; line 3 of ``sign``
    must have run, and lines 5 and 7 must be instrumented and not have run.

    Example:
        >>> probe(CoverageTools(rustc=None, found="none", reason="install llvm-22"))
        'no coverage tools: install llvm-22'
    """
    if not tools.available:
        return f"no coverage tools: {tools.reason}"
    try:
        counts = line_counts(export(PROBE_SOURCE, tools)["segments"], range(1, 10))
    except (CoverageError, ValueError, KeyError, TypeError) as error:
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    if counts.get(3, 0) > 0 and counts.get(5) == 0 and counts.get(7) == 0:
        return ""
    return f"wrong line counts {counts} (line 3 ran, lines 5 and 7 did not)"


def export(
    source: str,
    tools: CoverageTools,
    *,
    timeout_s: float = 10.0,
    compile_timeout_s: float = 60.0,
    workdir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Compile ``source`` instrumented, run its tests, and return ``llvm-cov export``'s file.

    Returns:
        The JSON object of the source file in ``data[0].files`` (``segments``, ``summary``).

    Raises:
        CoverageError: the tools are unavailable, or a step failed (named, with why).

    Example:
        >>> export("#[test] fn t() {}", tools)["summary"]["lines"]  # doctest: +SKIP
        {'count': 1, 'covered': 1, 'percent': 100.0}
    """
    check_text("coverage export source", source)
    if not isinstance(tools, CoverageTools):
        raise SandboxInputError(f"tools must be a CoverageTools (got {tools!r:.60})")
    if not tools.available or tools.rustc is None or tools.profdata is None or tools.cov is None:
        raise CoverageError(f"coverage is unavailable: {tools.reason}")
    run_limits = binary_limits(check_seconds("coverage export timeout_s", timeout_s))
    compile_seconds = check_seconds("coverage export compile_timeout_s", compile_timeout_s)
    limits = compiler_limits(compile_seconds, COMPILE_MEMORY_BYTES)
    parent = None if workdir is None else check_directory("coverage export workdir", workdir)
    programs = (tools.rustc, tools.profdata, tools.cov)  # where they are, and where they point
    readable = sorted(
        {p.absolute().parent for p in programs} | {p.resolve().parents[1] for p in programs}
    )
    with tempfile.TemporaryDirectory(prefix="coursekit-cov-", dir=parent) as tmp:
        build = Path(tmp).resolve()
        (build / "src.rs").write_text(source, encoding="utf-8")
        rustc = [str(tools.rustc), "--edition", "2021", "--test", "-C", "instrument-coverage"]
        _step("the instrumented compile", [*rustc, "-o", "bin", "src.rs"], build, limits, readable)
        profile = {"LLVM_PROFILE_FILE": str(build / "cov-%p.profraw")}
        ran = run_sandboxed(
            [str(build / "bin")], directory=build, limits=run_limits, env={**RUST_ENV, **profile}
        )
        profiles = sorted(p.name for p in build.glob("cov-*.profraw"))
        if ran.timed_out or not profiles:
            raise CoverageError(f"the instrumented test run wrote no profile: {ran.output[-200:]}")
        merge = [str(tools.profdata), "merge", "-sparse", "-o", "cov.profdata", *profiles]
        _step("llvm-profdata merge", merge, build, limits, readable)
        to_file = ["sh", "-c", 'exec "$0" "$@" > cov.json', str(tools.cov), "export"]
        options = ["-format=text", "-skip-functions", "-instr-profile=cov.profdata", "bin"]
        _step("llvm-cov export", [*to_file, *options], build, limits, readable)
        return _source_file(build / "cov.json", build / "src.rs")


def _source_file(exported: Path, source: Path) -> dict[str, Any]:
    """Return the entry of ``source`` in ``llvm-cov export``'s JSON."""
    try:
        files = json.loads(exported.read_text(encoding="utf-8"))["data"][0]["files"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise CoverageError(f"llvm-cov export wrote no readable JSON ({error})") from None
    for entry in files if isinstance(files, list) else []:
        if isinstance(entry, dict) and entry.get("filename") in (str(source), source.name):
            return entry
    raise CoverageError(f"llvm-cov export holds no coverage of {source.name}")


def _step(
    name: str, command: list[str], build: Path, limits: SandboxLimits, readable: list[Path]
) -> None:
    """Run one step in the sandbox; raise :class:`CoverageError` naming it if it fails."""
    done = run_sandboxed(command, directory=build, limits=limits, env=RUST_ENV, readable=readable)
    if done.exit_code != 0 or done.timed_out:
        lines = done.output.strip().splitlines() or [f"exit status {done.exit_code}"]
        said = "; ".join(dict.fromkeys([lines[0], lines[-1]]))  # the first error, the verdict
        raise CoverageError(f"{name} failed: {said[:300]}")


def measure(
    source: str, lines: tuple[int, int], tools: CoverageTools, *, timeout_s: float = 10.0
) -> float | None:
    """Return the line coverage of ``lines`` (first, last) in ``source`` by its own tests.

    None when the tools are unavailable or a step fails: coverage is a measurement on top of
    the verdict, never a reason to fail an answer.

    Example:
        >>> measure(PROBE_SOURCE, (1, 9), find_tools())  # doctest: +SKIP
        0.5714285714285714
    """
    if not tools.available:
        return None
    try:
        return line_coverage(export(source, tools, timeout_s=timeout_s)["segments"], *lines)
    except (CoverageError, ValueError, KeyError, TypeError):
        return None


def doctor_row(tools: CoverageTools | None = None) -> tuple[Literal["OK", "WARN"], str, str]:
    """Return ``coursekit doctor``'s coverage row: (OK or WARN, what was found, the fix).

    Args:
        tools: the tools to describe (default: :func:`find_tools`).

    Example:
        >>> doctor_row(CoverageTools(rustc=None, found="no rustc", reason="install Rust"))
        ('WARN', 'line coverage unavailable: no rustc', 'install Rust')
    """
    tools = find_tools() if tools is None else tools
    if tools.available:
        return "OK", f"line coverage: {tools.found}", ""
    return "WARN", f"line coverage unavailable: {tools.found}", tools.reason
