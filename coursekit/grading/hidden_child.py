"""The hidden-check child: import the learner's modules, run every hidden check, write JSON.

Started by :func:`coursekit.grading.hidden_run.run_hidden` as

    python -P -m coursekit.grading.hidden_child REQUEST RESULT

inside the sandbox (no network, uid ``nobody``, limits). REQUEST (JSON) holds the token,
the submission copy, the tiers with their module names, the instructor's ``hidden_dir`` or
null, and the seconds each check may take. RESULT is rewritten (atomically) before each
check and at the end::

    {"token": "...", "finished": false, "running": "E.dora_forward/bias untouched",
     "results": {"E.dora_forward/output shape": {"passed": true, "message": ""}}}

Each check runs on its own: one that fails, raises or runs over its time does not stop the
others. The learner's prints go to ``/dev/null`` (stdout and stderr are closed onto it).
Points are not written here: the parent computes them.

Guide: docs/grading.md ("Hidden checks").
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from coursekit.exercises.result import CheckFailed
from coursekit.exercises.runner import describe_error
from coursekit.grading.hidden_load import HiddenTier, hidden_tier
from coursekit.io import write_json

PACKAGE = "enhancements"
"""The learner's package inside the submission (``coursekit.workspace.layout.PACKAGE``)."""


class _Overtime(BaseException):
    """Raised by the alarm when a check (or an import) runs over its seconds."""


@contextlib.contextmanager
def _limit(seconds: float) -> Iterator[None]:
    """Raise :class:`_Overtime` in this thread after ``seconds`` of wall time."""

    def ring(signum: int, frame: Any) -> None:
        raise _Overtime

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


def learner_module(copy: Path, module: str) -> Any:
    """Import ``enhancements.<module>`` from the submission ``copy`` (its folder by path).

    The copy goes at the end of ``sys.path`` (its other top-level modules import, and never
    shadow coursekit's or torch's); the ``enhancements`` package is bound to the copy's
    folder, whatever else is installed under that name.

    Example:
        >>> learner_module(Path("work/submission"), "e_dora").dora_forward  # doctest: +SKIP
        <function dora_forward at ...>
    """
    if str(copy) not in sys.path:
        sys.path.append(str(copy))
    if PACKAGE not in sys.modules:
        folder = copy / PACKAGE
        init = folder / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location(
                PACKAGE, init, submodule_search_locations=[str(folder)]
            )
        else:
            spec = importlib.machinery.ModuleSpec(PACKAGE, None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
        assert spec is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        try:
            if spec.loader is not None:
                spec.loader.exec_module(package)
        except BaseException:
            del sys.modules[PACKAGE]
            raise
    return importlib.import_module(f"{PACKAGE}.{module}")


def exports_of(copy: Path, module: str, tier: HiddenTier, seconds: float) -> tuple[list, str]:
    """Return ``(the tier's exports, "")``, or ``([], why not)`` naming the file and name.

    Example:
        >>> exports_of(Path("/nonexistent"), "e_dora", hidden_tier("E"), 5)[1]
        'enhancements/e_dora.py: missing; the hidden checks of Tier E import dora_forward from it'
    """
    relative = f"{PACKAGE}/{module}.py"
    names = ", ".join(tier.exports)
    if not (copy / relative).is_file():
        return (
            [],
            f"{relative}: missing; the hidden checks of Tier {tier.letter} import {names} from it",
        )
    try:
        with _limit(seconds):
            learned = learner_module(copy, module)
    except _Overtime:
        return [], f"{relative}: importing it ran over {seconds:g} s; nothing was checked"
    except BaseException as error:  # SystemExit too: the module is the learner's
        return [], f"{relative} does not import ({_line(error)}); nothing was checked"
    missing = [name for name in tier.exports if not hasattr(learned, name)]
    if missing:
        wanted = f" (signature: {tier.signature})" if tier.signature else ""
        return [], f"{relative} has no {', '.join(missing)}{wanted}; the hidden checks call it"
    return [getattr(learned, name) for name in tier.exports], ""


def run_one(function: Callable[..., None], exports: list, name: str, seconds: float) -> dict:
    """Run one check on the learner's exports: ``{"passed": bool, "message": str}``.

    Example:
        >>> run_one(lambda f: None, [print], "a check", 5)
        {'passed': True, 'message': ''}
    """
    try:
        with _limit(seconds):
            function(*exports)
    except CheckFailed as failure:
        message = str(failure)
    except _Overtime:
        message = f"ran over {seconds:g} s: your code did not return (an endless loop?)"
    except Exception as error:
        message = describe_error(error, name)
    except BaseException as error:  # SystemExit, KeyboardInterrupt: the learner's code
        message = f"your code raised {type(error).__name__} (check: {name})"
    else:
        return {"passed": True, "message": ""}
    return {"passed": False, "message": " ".join(message.split())[:500]}


def _silence() -> None:
    """Point stdout and stderr at /dev/null: the learner's prints are discarded."""
    sink = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(sink, fd)
    os.close(sink)


def main(argv: list[str]) -> int:
    """Child entry point: read REQUEST, run the requested tiers' checks, write RESULT.

    Example:
        >>> main(["request.json", "result.json"])  # doctest: +SKIP
        0
    """
    request_path, result_path = (Path(arg).resolve() for arg in argv)
    request = json.loads(request_path.read_text(encoding="utf-8"))
    request_path.unlink()  # the token is then only in this process's memory (not a secret)
    copy, seconds = Path(request["copy"]), float(request["check_seconds"])
    hidden_dir = request["hidden_dir"]
    results: dict[str, dict[str, Any]] = {}

    def save(running: str | None) -> None:
        record = {"token": request["token"], "results": results}
        write_json(result_path, record | {"finished": running is None, "running": running})

    _silence()
    tiers = [(hidden_tier(t["letter"], hidden_dir), t["module"]) for t in request["tiers"]]
    for tier, module in tiers:
        assert tier is not None  # the parent sends only tiers with hidden checks
        exports, problem = exports_of(copy, module, tier, seconds)
        for (name, function), check_id in zip(tier.checks, tier.ids(), strict=True):
            if problem:
                results[check_id] = {"passed": False, "message": problem}
                continue
            save(check_id)
            results[check_id] = run_one(function, exports, name, seconds)
    save(None)
    return 0


if __name__ == "__main__":
    # os._exit: no wait for threads the learner's code left running, no atexit handler of
    # theirs rewriting RESULT after the last write.
    os._exit(main(sys.argv[1:]))
