"""Bad inputs to the evaluate API: one-line ValueError/CoursekitError naming the culprit.

Each case is refused before anything runs (no compiler is needed), with one line that
names the argument, and without a chained traceback (``raise ... from None``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from coursekit.errors import CoursekitError
from coursekit.evaluate import selftest
from coursekit.evaluate.parallel import compile_and_test_many
from coursekit.evaluate.rust import RustNotFoundError, compile_and_test
from coursekit.evaluate.sandbox import SandboxInputError, SandboxLimits, run_sandboxed

OK = "#[test]\nfn t() {}\n"
INF, NAN = float("inf"), float("nan")


def expect_one_line(call: Callable[[], object], *names: str) -> CoursekitError:
    with pytest.raises(CoursekitError) as caught:
        call()
    error = caught.value
    message = str(error)
    assert message and "\n" not in message and message.strip() == message
    assert error.__context__ is None or error.__suppress_context__, "chained traceback"
    for name in names:
        assert name in message, f"{name!r} not named in: {message}"
    return error


CASES: dict[str, tuple[Callable[[], object], tuple[str, ...]]] = {
    "timeout inf": (lambda: compile_and_test(OK, rustc="rustc", timeout_s=INF), ("timeout_s",)),
    "timeout nan": (lambda: compile_and_test(OK, rustc="rustc", timeout_s=NAN), ("nan",)),
    "compile timeout negative": (
        lambda: compile_and_test(OK, rustc="rustc", compile_timeout_s=-1),
        ("compile_timeout_s", "-1"),
    ),
    "timeout bool": (lambda: compile_and_test(OK, rustc="rustc", timeout_s=True), ("True",)),
    "lone surrogate in source": (
        lambda: compile_and_test("fn f() {}\n// \ud800", rustc="rustc"),
        ("source", "lone surrogate", "index 13"),
    ),
    "source as bytes": (lambda: compile_and_test(b"fn f() {}", rustc="rustc"), ("bytes",)),
    "compile memory too small": (
        lambda: compile_and_test(OK, rustc="rustc", compile_memory_bytes=1 << 20),
        ("compile_memory_bytes", str(1 << 20)),
    ),
    "workdir missing": (
        lambda: compile_and_test(OK, rustc="rustc", workdir="/nonexistent/coursekit"),
        ("workdir", "/nonexistent/coursekit"),
    ),
    "rustc missing": (
        lambda: compile_and_test(OK, rustc="/nonexistent/rustc"),
        ("/nonexistent/rustc",),
    ),
    "many given one str": (lambda: compile_and_test_many(OK), ("sources", "list")),
    "many with a surrogate": (
        lambda: compile_and_test_many([OK, "\udcff"]),
        ("sources[1]", "lone surrogate"),
    ),
    "jobs zero": (lambda: compile_and_test_many([OK], jobs=0), ("jobs", "0")),
    "jobs float": (lambda: compile_and_test_many([OK], jobs=1.5), ("jobs", "1.5")),
    "limits wall inf": (lambda: SandboxLimits(wall_seconds=INF), ("wall_seconds", "inf")),
    "limits wall nan": (lambda: SandboxLimits(wall_seconds=NAN), ("wall_seconds", "nan")),
    "limits cpu float": (lambda: SandboxLimits(cpu_seconds=1.5), ("cpu_seconds", "int")),
    "limits memory tiny": (lambda: SandboxLimits(memory_bytes=10), ("memory_bytes", "10")),
    "limits processes negative": (
        lambda: SandboxLimits(max_processes=-3),
        ("max_processes", "-3"),
    ),
    "limits output bool": (lambda: SandboxLimits(output_bytes=True), ("output_bytes",)),
    "command as str": (lambda: run_sandboxed("echo hi", directory="/tmp"), ("command",)),
    "command empty": (lambda: run_sandboxed([], directory="/tmp"), ("command",)),
    "command NUL": (lambda: run_sandboxed(["echo", "a\0b"], directory="/tmp"), ("command[1]",)),
    "command surrogate": (
        lambda: run_sandboxed(["echo", "\udcff"], directory="/tmp"),
        ("command[1]", "lone surrogate"),
    ),
    "directory missing": (
        lambda: run_sandboxed(["true"], directory="/nonexistent/box"),
        ("directory", "/nonexistent/box"),
    ),
    "env key with =": (
        lambda: run_sandboxed(["true"], directory="/tmp", env={"A=B": "1"}),
        ("env key", "A=B"),
    ),
    "env value int": (
        lambda: run_sandboxed(["true"], directory="/tmp", env={"A": 1}),
        ("env['A']", "int"),
    ),
    "readable missing": (
        lambda: run_sandboxed(["true"], directory="/tmp", readable=["/nonexistent/x"]),
        ("readable[0]", "/nonexistent/x"),
    ),
    "limits not SandboxLimits": (
        lambda: run_sandboxed(["true"], directory="/tmp", limits={"wall_seconds": 1}),
        ("limits", "SandboxLimits"),
    ),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input_is_one_line(case: str) -> None:
    call, names = CASES[case]
    error = expect_one_line(call, *names)
    assert isinstance(error, RustNotFoundError if case == "rustc missing" else ValueError)


def test_a_surrogate_in_a_path_is_refused(tmp_path: Path) -> None:
    expect_one_line(
        lambda: run_sandboxed(["true"], directory=str(tmp_path) + "\udcff"), "lone surrogate"
    )


def test_an_unknown_forced_backend_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(selftest.ENV_BACKEND, "docker")
    error = expect_one_line(selftest.probe, "COURSEKIT_SANDBOX", "docker", "bubblewrap")
    assert isinstance(error, SandboxInputError) and isinstance(error, ValueError)
