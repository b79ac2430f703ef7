"""Run an exercise's checks on the learner's code in a subprocess, with a timeout.

The learner's code is untrusted: it may loop forever, exit, or print. The parent
(``check``) writes a JSON request (the exercise id and each part's source from
``transport.package``) into a private temporary directory and starts

    python -m coursekit.exercises.runner REQUEST RESULT PROGRESS

in its own session, with that directory as the working directory. The child rebuilds the
parts, runs the checks in order (``run_checks``) and writes the ``CheckResult`` as JSON to
RESULT; the parent reads only that JSON, never a pickle, and kills the whole process group
when the timeout passes. Output the learner's code prints is discarded.

Guide: docs/exercises.md ("How your code is run").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import coursekit
from coursekit.errors import CoursekitError
from coursekit.exercises.registry import Exercise, exercise
from coursekit.exercises.result import CheckFailed, CheckResult
from coursekit.exercises.transport import package, rebuild
from coursekit.io import write_json

DEFAULT_TIMEOUT_S = 300.0
"""Seconds a check may take, Python's start and the imports included."""


def check(
    exercise_id: str,
    answer: Any,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    quiet: bool = False,
) -> CheckResult:
    """Check ``answer`` against exercise ``exercise_id`` in a subprocess; print the verdict.

    Args:
        exercise_id: e.g. ``"E.dora_forward"`` (``coursekit.exercises.EXERCISES`` lists them).
        answer: the learner's function or class; for ``"J.resume_state"`` the pair
            ``(save_state, restore_state)``.
        timeout_s: seconds before the subprocess is killed and the check fails.
        quiet: do not print the verdict line.

    Returns:
        The verdict: ``passed``, how many checks passed, and what differs.

    Raises:
        CoursekitError: unknown id, the wrong number of parts, or a part whose source
            cannot be read or sent (a lambda, a closure).

    Example:
        >>> def pacing(step, total_steps, start_fraction):  # doctest: +SKIP
        ...     return min(1.0, start_fraction + step * (1 - start_fraction) / total_steps)
        >>> check("H.pacing", pacing)  # doctest: +SKIP
        ✓ H.pacing: 5 checks passed
    """
    spec = exercise(exercise_id)
    parts = answer if isinstance(answer, tuple | list) else (answer,)
    if len(parts) != len(spec.parts):
        raise CoursekitError(
            f"{exercise_id} takes {len(spec.parts)} part(s), {spec.signature}; got {len(parts)}"
        )
    request = {"exercise": exercise_id, "parts": [package(part) for part in parts]}
    result = _run_child(spec, request, timeout_s)
    if not quiet:
        print(result)
    return result


def _run_child(spec: Exercise, request: dict[str, Any], timeout_s: float) -> CheckResult:
    with tempfile.TemporaryDirectory(prefix="coursekit-check-") as tmp:
        paths = [Path(tmp, name) for name in ("request.json", "result.json", "progress.json")]
        write_json(paths[0], request)
        root = str(Path(coursekit.__file__).resolve().parent.parent)
        path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        child = subprocess.Popen(
            [sys.executable, "-m", "coursekit.exercises.runner", *map(str, paths)],
            cwd=tmp,
            env={**os.environ, "PYTHONPATH": path},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            _, stderr = child.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            return _unfinished(spec, paths[2], f"timed out after {timeout_s:g} s", timeout=True)
        if not paths[1].exists():
            last = (stderr.strip().splitlines() or ["no output"])[-1]
            why = f"the checking process exited with code {child.returncode} ({last})"
            return _unfinished(spec, paths[2], why, timeout=False)
        try:
            return CheckResult.from_json(json.loads(paths[1].read_text(encoding="utf-8")))
        except (ValueError, json.JSONDecodeError) as error:
            return _unfinished(spec, paths[2], f"no verdict came back ({error})", timeout=False)


def _unfinished(spec: Exercise, progress: Path, why: str, *, timeout: bool) -> CheckResult:
    """The verdict when the child did not finish: where it was, from its progress file."""
    try:
        done = json.loads(progress.read_text(encoding="utf-8"))
        passed, total, name = int(done["passed"]), int(done["checks"]), str(done["check"])
    except (OSError, ValueError, KeyError, TypeError):
        advice = "; pass a larger timeout_s=" if timeout else ""
        return _failed(spec, 0, f"{why} before the checks started (still importing){advice}")
    where = f"in check {name!r} ({passed} of {total} passed)"
    if timeout:
        message = f"{why} {where}: your code did not return (an endless loop?)"
    else:
        message = f"{why} {where}: does your code exit or crash the interpreter?"
    return _failed(spec, total, message, passed)


def _failed(spec: Exercise, total: int, message: str, passed: int = 0) -> CheckResult:
    return CheckResult(
        exercise=spec.id, passed=False, checks_passed=passed, checks=total, message=message
    )


def describe_error(error: BaseException, check_name: str) -> str:
    """Word an exception raised by the learner's code: its type and message, and a hint.

    Example:
        >>> describe_error(ZeroDivisionError("division by zero"), "worked example")
        'your code raised ZeroDivisionError: division by zero (check: worked example)'
    """
    text = f"your code raised {type(error).__name__}: {error}"
    if isinstance(error, NameError):
        text += (
            "; the checker runs your code in a fresh process and sends only imports, numbers, "
            "strings and functions or classes of your notebook: define it inside your code"
        )
    return f"{text} (check: {check_name})"


def run_checks(
    exercise_id: str,
    parts: tuple[Any, ...] | list[Any],
    progress: Callable[[int, int, str], None] | None = None,
) -> CheckResult:
    """Run the checks of ``exercise_id`` on ``parts`` in this process; stop at the first failure.

    The child calls this after rebuilding the parts; tests call it directly (trusted code).

    Args:
        exercise_id: the exercise.
        parts: the learner's function(s) or class, rebuilt.
        progress: called as ``progress(passed, checks, name)`` before each check.

    Example:
        >>> from coursekit.data.curriculum import linear_pacing
        >>> print(run_checks("H.pacing", [linear_pacing]))
        ✓ H.pacing: 5 checks passed
    """
    spec = exercise(exercise_id)
    checks: tuple[tuple[str, Callable[..., None]], ...] = spec.checks()
    for done, (name, function) in enumerate(checks):
        if progress is not None:
            progress(done, len(checks), name)
        try:
            function(*parts)
        except CheckFailed as failure:
            return _failed(spec, len(checks), str(failure), done)
        except Exception as error:  # the learner's code raised: report it, never crash
            return _failed(spec, len(checks), describe_error(error, name), done)
    return CheckResult(exercise=spec.id, passed=True, checks_passed=len(checks), checks=len(checks))


def main(argv: list[str]) -> int:
    """Child entry point: read REQUEST, rebuild the parts, run the checks, write RESULT.

    PROGRESS is rewritten before each check, so that the parent can say where a check hung.

    Example:
        >>> main(["request.json", "result.json", "progress.json"])  # doctest: +SKIP
        0
    """
    request_path, result_path, progress_path = argv
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    spec = exercise(request["exercise"])

    def progress(passed: int, checks: int, name: str) -> None:
        write_json(progress_path, {"passed": passed, "checks": checks, "check": name})

    try:
        parts = [rebuild(part) for part in request["parts"]]
    except Exception as error:
        why = f"your code could not be rebuilt: {type(error).__name__}: {error}"
        result = _failed(spec, len(spec.checks()), why)
    else:
        result = run_checks(spec.id, parts, progress)
    write_json(result_path, result.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
