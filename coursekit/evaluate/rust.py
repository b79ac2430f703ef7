r"""Compile a Rust source file with its unit tests and run them, under limits.

This is how a generated test module is judged: ``rustc --edition 2021 --test`` builds the
file into a libtest binary in a fresh temporary directory, and both the compiler and the
binary run in :func:`coursekit.evaluate.sandbox.run_sandboxed`, without privileges:
wall-clock and CPU limits, address space (the compiler's too: a macro that expands
exponentially hits :data:`COMPILE_MEMORY_BYTES`), a ``pids`` cgroup, capped output, a
scrubbed environment (``HOME`` is the temporary directory) and, where the OS allows, no
network and no writes outside the temporary directory. The toolchain (rustc's sysroot) is
bound read-only. The libtest summary line ``test result: ok. N passed; M failed`` gives
the counts. :func:`compile_and_run` compiles once and runs the binary several times
(repeated runs, mutant schemata); :mod:`coursekit.evaluate.parallel` runs many at once.

The source can still *read* what the sandbox shows it (``include_str!`` at compile time,
``std::fs`` at run time); see ``docs/sandbox.md`` for what is prevented and what is not.

Example:
    >>> source = "#[test]\nfn one() { assert_eq!(1 + 1, 2); }\n"
    >>> result = compile_and_test(source)  # doctest: +SKIP
    >>> (result.passed, result.tests_run)  # doctest: +SKIP
    (True, 1)
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from coursekit.errors import CoursekitError
from coursekit.evaluate.checks import (
    check_count,
    check_directory,
    check_env,
    check_seconds,
    check_text,
)
from coursekit.evaluate.sandbox import EXCERPT_CHARS as EXCERPT_CHARS
from coursekit.evaluate.sandbox import (
    SandboxLimits,
    SandboxResult,
    run_sandboxed,
)

MEMORY_LIMIT_BYTES = 1 << 30
"""Address-space limit of the test binary (1 GiB)."""
OUTPUT_LIMIT_BYTES = 8 << 20
"""Largest file the test binary may write, its captured output included (8 MiB)."""
EXTRA_TASKS = 64
"""Processes and threads the compiler or the test binary may run at once (``pids.max``)."""
COMPILE_OUTPUT_LIMIT_BYTES = 256 << 20
"""Largest file ``rustc`` may write (the test binary is several MiB)."""
COMPILE_MEMORY_BYTES = 2 << 30
"""Address-space limit of ``rustc`` (2 GiB; a small test file needs under 512 MiB)."""
MIN_COMPILE_MEMORY_BYTES = 256 << 20
"""Smallest compile memory limit accepted (``rustc`` does not even load below it)."""
PRELUDE = "#![allow(unused, dead_code, deprecated, unreachable_code)]\n"
"""Put before an assembled file (corpus verification, judged answers, mutant schemata):
warnings are not failures, and unused items or a schema's early returns are expected."""
RUST_ENV = {"RUST_BACKTRACE": "0", "RUST_TEST_THREADS": "1"}
"""Environment of every compile and test run (no backtraces; one test at a time)."""

_SUMMARY = re.compile(r"test result: (?:ok|FAILED)\. (\d+) passed; (\d+) failed")
_TEST_LINE = re.compile(r"^test .+? \.\.\. (ok|FAILED)$", re.MULTILINE)


class RustNotFoundError(CoursekitError, FileNotFoundError):
    """No working ``rustc`` is on PATH or in ``~/.cargo/bin``."""


@dataclass(frozen=True, kw_only=True)
class RustTestResult:
    """What happened when one Rust source was compiled and its tests were run.

    Example:
        >>> RustTestResult(compiled=False, passed=False, tests_run=0, tests_failed=0,
        ...     compile_seconds=0.4, run_seconds=0.0, output="error[E0308]", timed_out=False)
        ... # doctest: +ELLIPSIS
        RustTestResult(compiled=False, ...)
    """

    compiled: bool
    """Whether ``rustc --test`` produced a binary."""
    passed: bool
    """Whether the binary exited 0 in time after running at least one test, none failing."""
    tests_run: int
    """Tests that passed or failed (ignored and filtered tests are not counted)."""
    tests_failed: int
    """Tests that failed (a panic, a failed assertion, a wrong ``should_panic``)."""
    compile_seconds: float
    """Wall time of the compile step."""
    run_seconds: float
    """Wall time of the test run (0 when nothing ran)."""
    output: str
    """Excerpt of the compiler output if compiling failed, else of the test output."""
    timed_out: bool
    """Whether the compile or the run was killed for exceeding its time limit."""
    limits_hit: tuple[str, ...] = ()
    """Sandbox limits the compile or run ran into (``wall``, ``cpu``, ``memory``...)."""
    network_isolated: bool = False
    """Whether the sandbox cut the network (see :func:`coursekit.evaluate.sandbox.isolation`)."""
    filesystem_isolated: bool = False
    """Whether writes outside the build directory were impossible."""
    processes_limited: bool = False
    """Whether a ``pids`` cgroup capped the processes (see the sandbox's self-test)."""
    unprivileged: bool = False
    """Whether the compiler and the binary ran as a non-root uid without capabilities."""

    def __post_init__(self) -> None:
        for name in ("tests_run", "tests_failed"):
            if getattr(self, name) < 0:
                raise ValueError(f"RustTestResult.{name} must be >= 0 (got {getattr(self, name)})")
        if self.tests_failed > self.tests_run:
            raise ValueError(
                f"RustTestResult.tests_failed must be <= tests_run "
                f"(got {self.tests_failed} > {self.tests_run})"
            )
        if self.passed and not self.compiled:
            raise ValueError("RustTestResult.passed must be False when compiled is False")


def find_rustc() -> Path:
    """Return the path of a working ``rustc``: on PATH, else ``~/.cargo/bin/rustc``.

    A rustup proxy is resolved to the toolchain's own binary (via ``--print sysroot``), so
    that it still works under the scrubbed environment, where ``HOME`` is a temporary
    directory.

    Raises:
        RustNotFoundError: no rustc is found, or it does not run.

    Example:
        >>> find_rustc().name  # doctest: +SKIP
        'rustc'
    """
    found = shutil.which("rustc")
    candidate = Path(found) if found else Path.home() / ".cargo" / "bin" / "rustc"
    if not candidate.is_file():
        raise RustNotFoundError(
            "rustc not found on PATH or in ~/.cargo/bin; install Rust (rustup or Debian's "
            "rustc package) and make sure rustc is on PATH"
        )
    try:
        sysroot = subprocess.run(
            [str(candidate), "--print", "sysroot"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as error:
        raise RustNotFoundError(
            f"{candidate} does not run ({error}); repair the Rust install (rustup default "
            "stable, or reinstall Debian's rustc package)"
        ) from None
    real = Path(sysroot) / "bin" / "rustc"
    return real if real.is_file() else candidate


def compile_and_test(
    source: str,
    *,
    timeout_s: float = 10.0,
    compile_timeout_s: float = 60.0,
    workdir: str | os.PathLike[str] | None = None,
    rustc: str | os.PathLike[str] | None = None,
    compile_memory_bytes: int = COMPILE_MEMORY_BYTES,
) -> RustTestResult:
    """Compile ``source`` with ``rustc --edition 2021 --test`` and run its tests.

    Args:
        source: a whole Rust file whose ``#[test]`` functions are the tests to run.
        timeout_s: wall-clock limit of the test run, in seconds; its CPU limit is one
            second more.
        compile_timeout_s: wall-clock limit of the compile, in seconds.
        workdir: directory in which the fresh temporary build directory is made (default:
            the system's temporary directory); the build directory is always removed.
        rustc: the compiler to use (default: :func:`find_rustc`); its sysroot (the
            directory above its ``bin``) is bound read-only into the sandbox.
        compile_memory_bytes: address-space limit of ``rustc``.

    Returns:
        The outcome; a compile error or a failing test is a result, not an exception.

    Raises:
        RustNotFoundError: no compiler is found, or ``rustc`` names none.
        SandboxInputError: an argument is invalid (a ``ValueError``; the message names it).

    Example:
        >>> r = compile_and_test("#[test] fn t() { assert!(false); }")  # doctest: +SKIP
        >>> (r.compiled, r.passed, r.tests_failed)  # doctest: +SKIP
        (True, False, 1)
    """
    return compile_and_run(
        source,
        timeout_s=timeout_s,
        compile_timeout_s=compile_timeout_s,
        workdir=workdir,
        rustc=rustc,
        compile_memory_bytes=compile_memory_bytes,
    )[0]


def compile_and_run(
    source: str,
    *,
    envs: Sequence[Mapping[str, str]] = ({},),
    timeout_s: float = 10.0,
    compile_timeout_s: float = 60.0,
    workdir: str | os.PathLike[str] | None = None,
    rustc: str | os.PathLike[str] | None = None,
    compile_memory_bytes: int = COMPILE_MEMORY_BYTES,
) -> list[RustTestResult]:
    """Compile ``source`` once and run its test binary once per environment in ``envs``.

    One compile serves many runs: repeated runs tell a flaky suite from a stable one, and a
    mutant schema (:mod:`coursekit.evaluate.mutate`) runs once per ``COURSEKIT_MUTANT``
    value. Each run is a fresh sandboxed process with the extra variables of its ``envs``
    entry; the other arguments are those of :func:`compile_and_test`.

    Returns:
        One result per entry of ``envs``, in order (all alike when the compile failed).

    Raises:
        RustNotFoundError: no compiler is found, or ``rustc`` names none.
        SandboxInputError: an argument is invalid (a ``ValueError``; the message names it).
    """
    check_text("compile_and_test source", source)
    extras = [check_env(env) for env in envs]
    run_limits = binary_limits(check_seconds("compile_and_test timeout_s", timeout_s))
    compile_limits = compiler_limits(
        check_seconds("compile_and_test compile_timeout_s", compile_timeout_s),
        check_count("compile_memory_bytes", compile_memory_bytes, MIN_COMPILE_MEMORY_BYTES),
    )
    parent = None if workdir is None else check_directory("compile_and_test workdir", workdir)
    compiler = _compiler(rustc) if rustc is not None else find_rustc()
    toolchain = [compiler.resolve().parent.parent]
    with tempfile.TemporaryDirectory(prefix="coursekit-rust-", dir=parent) as tmp:
        build = Path(tmp)
        (build / "src.rs").write_text(source, encoding="utf-8")
        command = [str(compiler), "--edition", "2021", "--test", "-o", "bin", "src.rs"]
        built = run_sandboxed(
            command, directory=build, limits=compile_limits, env=RUST_ENV, readable=toolchain
        )
        if built.exit_code != 0:
            return [_result(built, None) for _ in extras]
        runs = [
            run_sandboxed(
                [str(build / "bin")],
                directory=build,
                limits=run_limits,
                env={**RUST_ENV, **extra},
            )
            for extra in extras
        ]
    return [_result(built, ran) for ran in runs]


def _result(built: SandboxResult, ran: SandboxResult | None) -> RustTestResult:
    """Return the outcome of a compile (``built``) and, when it compiled, a run (``ran``).

    Output, time-out, limits and isolation come from the last step that ran (every field the
    two result types share), the test counts from the run's libtest output.
    """
    last = ran or built
    tests_run, tests_failed = _count_tests(ran.output) if ran is not None else (0, 0)
    clean = ran is not None and ran.exit_code == 0 and not ran.timed_out
    return RustTestResult(
        **{name: getattr(last, name) for name in _shared_fields()},
        compiled=ran is not None,
        passed=clean and tests_run > 0 and tests_failed == 0,
        tests_run=tests_run,
        tests_failed=tests_failed,
        compile_seconds=built.wall_seconds,
        run_seconds=ran.wall_seconds if ran is not None else 0.0,
    )


@functools.cache
def _shared_fields() -> tuple[str, ...]:
    """Fields ``RustTestResult`` takes from a ``SandboxResult`` as they are."""
    mine = {field.name for field in dataclasses.fields(RustTestResult)}
    return tuple(sorted(mine & {field.name for field in dataclasses.fields(SandboxResult)}))


def _compiler(rustc: str | os.PathLike[str]) -> Path:
    """Return the path of the compiler the caller named (a path, or a name on PATH)."""
    name = check_text("rustc", os.fspath(rustc)) if isinstance(rustc, str | os.PathLike) else None
    found = shutil.which(name) if name else None
    if found is None:
        raise RustNotFoundError(
            f"rustc {rustc!r} is not an executable file or a command on PATH; pass the path "
            "of rustc, or leave rustc unset to find it"
        )
    return Path(os.path.abspath(found))


def binary_limits(timeout_s: float) -> SandboxLimits:
    """Return the sandbox limits of a test binary: 1 GiB, 8 MiB of output, CPU = wall + 1.

    Example:
        >>> binary_limits(10.0).cpu_seconds
        11
    """
    return SandboxLimits(
        wall_seconds=timeout_s,
        cpu_seconds=math.ceil(timeout_s) + 1,
        memory_bytes=MEMORY_LIMIT_BYTES,
        max_processes=EXTRA_TASKS,
        output_bytes=OUTPUT_LIMIT_BYTES,
    )


def compiler_limits(timeout_s: float, memory_bytes: int) -> SandboxLimits:
    """Return the sandbox limits of ``rustc``: its memory cap, room for the binary.

    Example:
        >>> compiler_limits(60.0, COMPILE_MEMORY_BYTES).output_bytes == COMPILE_OUTPUT_LIMIT_BYTES
        True
    """
    return SandboxLimits(
        wall_seconds=timeout_s,
        cpu_seconds=math.ceil(timeout_s) + 1,
        memory_bytes=memory_bytes,
        max_processes=EXTRA_TASKS,
        output_bytes=COMPILE_OUTPUT_LIMIT_BYTES,
    )


def _count_tests(output: str) -> tuple[int, int]:
    """Return (tests run, tests failed) from libtest output, summed over summary lines.

    Without a summary line (the binary crashed or was killed), count the per-test lines.
    """
    summaries = _SUMMARY.findall(output)
    if summaries:
        passed = sum(int(p) for p, _ in summaries)
        failed = sum(int(f) for _, f in summaries)
        return passed + failed, failed
    outcomes = _TEST_LINE.findall(output)
    return len(outcomes), outcomes.count("FAILED")
