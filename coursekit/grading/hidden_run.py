"""Run a submission's hidden checks in the sandbox and turn them into rubric points.

:func:`run_hidden` starts one fresh interpreter per submission,
``python -P -m coursekit.grading.hidden_child REQUEST RESULT``, inside
:func:`coursekit.evaluate.sandbox.run_sandboxed` (no network, uid ``nobody``, limits, the
work directory as its only writable place, the hidden checks readable in this run only). It
reads back only the child's JSON, validates its shape strictly against the check ids it
expects and the run's random token, and computes every point itself. :func:`hidden_points`
turns the rows into the rubric checks ``hidden-checks`` (Core and Advanced tiers) and
``bonus-checks`` (Bonus tiers).

Guide: docs/grading.md ("Hidden checks").

Example:
    >>> row = {"tier": "E", "id": "E.x/a", "name": "a", "points": 6.0, "of": 6.0,
    ...        "passed": True, "message": ""}
    >>> hidden_points([row], load_rubric(), tiers=("A", "E"))[0]
    {'hidden-checks': 12.0, 'bonus-checks': 0.0}
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coursekit.evaluate import jail
from coursekit.evaluate.sandbox import SandboxLimits, isolation, run_sandboxed
from coursekit.grading.hidden_child import PACKAGE
from coursekit.grading.hidden_load import BUILT_IN, HiddenTier, hidden_tier
from coursekit.grading.rubric import Rubric, load_rubric
from coursekit.grading.runner import readable_paths, sandbox_env
from coursekit.workspace.tiers import TIERS

CHECK_SECONDS = 60.0
"""Wall time one hidden check (or one learner module's import) may take in the child."""
RESULT_BYTES = 1 << 20
"""The largest result file the parent reads."""
GROUPS = {"core": "hidden-checks", "advanced": "hidden-checks", "bonus": "bonus-checks"}
"""A tier's level → the rubric check its hidden checks count for."""
ROW_KEYS = ("tier", "id", "name", "points", "of", "passed", "message")
"""The keys of each row :func:`run_hidden` returns (the row schema's ``hidden`` entries)."""


def run_hidden(
    copy: Path,
    work: Path,
    tiers: Sequence[str],
    *,
    seconds: float,
    hidden_dir: Path | None = None,
    rubric: Rubric | None = None,
    check_seconds: float = CHECK_SECONDS,
    submission: Path | None = None,
) -> list[dict[str, Any]]:
    """Run the hidden checks of ``tiers`` on the submission ``copy``; one row per check.

    Args:
        copy: the submission's copy inside ``work`` (``work/submission``).
        work: the submission's work directory (the sandbox's only writable place).
        tiers: the chosen tier letters (``workspace.yaml``); tiers without hidden checks
            give no row.
        seconds: wall time of the whole run, interpreter start and imports included.
        hidden_dir: an instructor's folder of ``tier_<letter>.py`` modules instead of
            coursekit's (docs/grading.md).
        rubric: the rubric whose ``hidden-checks`` / ``bonus-checks`` points the rows share
            (default :func:`load_rubric`).
        check_seconds: wall time of one check, or of importing one learner module.
        submission: the learner's original folder: when given, its ``enhancements/`` is
            copied afresh into ``work`` and checked instead of ``copy``'s, which the
            notebooks and tests that ran before could have rewritten.

    Returns:
        ``{"tier", "id", "name", "points", "of", "passed", "message"}`` per check, in tier
        and check order; a crash, a timeout or a malformed result is a failed row.

    Example:
        >>> run_hidden(Path("w/submission"), Path("w"), ("A", "E"), seconds=120)  # doctest: +SKIP
        [{'tier': 'E', 'id': 'E.dora_forward/output shape', 'points': 0.857, ...}, ...]
    """
    chosen = [t for t in (hidden_tier(letter, hidden_dir) for letter in tiers) if t]
    if not chosen:
        return []
    token = secrets.token_hex(16)
    check_seconds = min(check_seconds, seconds)
    if submission is not None:
        copy = _fresh_package(submission, work)
    raw, why = _run_child(copy, work, chosen, token, (seconds, check_seconds), hidden_dir)
    return hidden_rows(chosen, _verdicts(raw, why, chosen, token), rubric or load_rubric())


def hidden_rows(
    chosen: Sequence[HiddenTier], verdicts: dict[str, tuple[bool, str]], rubric: Rubric
) -> list[dict[str, Any]]:
    """Return one row per check of ``chosen`` from ``{check id: (passed, message)}``.

    A check's ``of`` is its tier's share of the rubric check of the tier's group (``GROUPS``:
    its points split equally among the group's chosen tiers with hidden checks), split
    equally among the tier's checks; ``points`` is ``of`` when it passed, else 0.

    Example:
        >>> tier = hidden_tier("H")
        >>> rows = hidden_rows([tier], {i: (True, "") for i in tier.ids()}, load_rubric())
        >>> len(rows), sum(row["points"] for row in rows)
        (5, 12.0)
    """
    shares = _shares(chosen, rubric)
    rows = []
    for tier in chosen:
        for (name, _), check_id in zip(tier.checks, tier.ids(), strict=True):
            passed, message = verdicts[check_id]
            of = shares[tier.letter] / len(tier.checks)
            rows.append({"tier": tier.letter, "id": check_id, "name": name,
                         "points": of if passed else 0.0, "of": of, "passed": passed,
                         "message": message})  # fmt: skip
    return rows


def _shares(chosen: Sequence[HiddenTier], rubric: Rubric) -> dict[str, float]:
    """Each tier's points: its rubric check's points split equally among the group's tiers."""
    points = {k.id: k.points for c in rubric.categories for k in c.checks}
    groups = {letter: GROUPS[TIERS[letter].level] for letter in (t.letter for t in chosen)}
    count = {group: list(groups.values()).count(group) for group in set(groups.values())}
    return {letter: points[group] / count[group] for letter, group in groups.items()}


def _fresh_package(submission: Path, work: Path) -> Path:
    """Copy ``submission/enhancements`` (links as links) into a new folder of ``work``."""
    fresh = Path(tempfile.mkdtemp(prefix="pristine-", dir=work))
    if (submission / PACKAGE).is_dir():
        shutil.copytree(submission / PACKAGE, fresh / PACKAGE, symlinks=True)
    if jail.drops_to_nobody(isolation().backend):
        for path in [fresh, *fresh.rglob("*")]:
            os.chown(path, jail.SANDBOX_UID, jail.SANDBOX_UID, follow_symlinks=False)
    return fresh


def _run_child(
    copy: Path, work: Path, chosen: list[HiddenTier], token: str, times: tuple, hidden_dir
) -> tuple[Any, str]:
    """Start the child in the sandbox; return (its parsed JSON or None, why none came)."""
    seconds, check_seconds = times
    box = Path(tempfile.mkdtemp(prefix="hidden-", dir=work))
    (work / "home").mkdir(exist_ok=True)
    request, result = box / "request.json", box / "result.json"
    request.write_text(json.dumps({
        "token": token, "copy": str(copy.resolve()), "check_seconds": check_seconds,
        "hidden_dir": None if hidden_dir is None else str(Path(hidden_dir).resolve()),
        "tiers": [{"letter": t.letter, "module": TIERS[t.letter].module} for t in chosen],
    }), encoding="utf-8")  # fmt: skip
    if jail.drops_to_nobody(isolation().backend):
        for path in (work / "home", box, request):
            os.chown(path, jail.SANDBOX_UID, jail.SANDBOX_UID, follow_symlinks=False)
    readable = readable_paths() + ([Path(hidden_dir).resolve()] if hidden_dir else [])
    limits = SandboxLimits(
        wall_seconds=seconds, cpu_seconds=max(1, int(seconds) * 2), memory_bytes=6 << 30,
        max_processes=256, output_bytes=16 << 20,
    )  # fmt: skip
    command = [
        sys.executable,
        "-P",
        "-m",
        "coursekit.grading.hidden_child",
        str(request),
        str(result),
    ]
    done = run_sandboxed(
        command,
        directory=work,
        limits=limits,
        env={**sandbox_env(work), "PYTHONPYCACHEPREFIX": str(box / "pycache")},
        readable=readable,
        hidden=(),
    )  # the cache prefix: no .pyc planted in the copy's __pycache__ is ever loaded
    if done.timed_out:
        why = f"the hidden-check run timed out after {seconds:g} s"
    else:
        why = (
            f"the hidden-check process ended with exit code {done.exit_code} (a crash or os._exit?)"
        )
    try:
        return _read(result), why
    except (OSError, ValueError) as error:  # before any check: the interpreter's own words
        said = (done.output.strip().splitlines() or [str(error)])[-1][:200]
        return None, f"{why}; no result came back ({said})"


def _read(path: Path) -> Any:
    """Parse ``path`` as JSON: a regular file (no link followed), at most 1 MiB."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO never blocks
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > RESULT_BYTES:
            raise ValueError("not a regular file of at most 1 MiB")
        return json.loads(handle.read().decode("utf-8"))


def _verdicts(raw: Any, why: str, chosen: list[HiddenTier], token: str) -> dict[str, tuple]:
    """``{check id: (passed, message)}`` from the child's JSON, trusting only its shape."""
    ids = {check_id: tier for tier in chosen for check_id in tier.ids()}
    problem = _shape_problem(raw, token, ids)
    if raw is None or problem:
        said = why if raw is None else f"the hidden-check result was malformed ({problem})"
        return {check_id: (False, f"not graded: {said}") for check_id in ids}
    verdicts: dict[str, tuple] = {}
    for tier in chosen:
        bad = [i for i in tier.ids() if i in raw["results"] and not _entry_ok(raw["results"][i])]
        missing = [i for i in tier.ids() if i not in raw["results"]]
        for check_id in tier.ids():
            if bad or (missing and raw["finished"]):
                what = f"a bad entry for {bad[0]!r}" if bad else f"no verdict for {missing[0]!r}"
                verdicts[check_id] = (
                    False,
                    f"not graded: the hidden-check result was malformed ({what})",
                )
            elif check_id in missing:
                where = "in this check" if check_id == raw["running"] else "before this check ran"
                verdicts[check_id] = (False, f"not graded: {why} {where}")
            else:
                entry = raw["results"][check_id]
                verdicts[check_id] = (entry["passed"], " ".join(entry["message"].split())[:500])
    return verdicts


def _shape_problem(raw: Any, token: str, ids: dict[str, HiddenTier]) -> str:
    """Why the top level of the child's JSON is not believed ("" when it is)."""
    if raw is None:
        return ""
    if not isinstance(raw, dict) or set(raw) != {"token", "finished", "running", "results"}:
        return "not an object with token, finished, running and results"
    if raw["token"] != token:
        return "the run's token does not match"
    if not isinstance(raw["finished"], bool) or not isinstance(raw["results"], dict):
        return "finished must be a boolean and results an object"
    if raw["running"] is not None and raw["running"] not in ids:
        return f"unknown running check {str(raw['running'])[:80]!r}"
    unknown = [key for key in raw["results"] if key not in ids]
    return f"unknown check id {str(unknown[0])[:80]!r}" if unknown else ""


def _entry_ok(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and set(entry) == {"passed", "message"}
        and isinstance(entry["passed"], bool)
        and isinstance(entry["message"], str)
        and len(entry["message"]) <= 2000
    )


def hidden_points(
    results: Sequence[dict[str, Any]], rubric: Rubric, *, tiers: Sequence[str] = ()
) -> tuple[dict[str, float], dict[str, str]]:
    """Return the rubric points of ``hidden-checks`` and ``bonus-checks`` and their notes.

    Each rubric check's points are shared equally by the chosen tiers of its group that have
    hidden checks (Core + Advanced for ``hidden-checks``, Bonus for ``bonus-checks``), and a
    tier's share equally by its checks: points = Σ over passing checks, from ``passed`` and
    the rubric (never from a child). Tiers without hidden checks count neither for nor
    against. When no chosen Core/Advanced tier has any (A alone), ``hidden-checks`` gets
    its full points (each chosen tier's hidden checks pass: there are none), said in the
    note. ``bonus-checks`` gets 0 when no bonus tier was chosen, or only ones without hidden
    checks (K, L): bonus points need evidence; the TA's ``bonus-documented`` covers those.

    Args:
        results: the rows of :func:`run_hidden`.
        rubric: the course rubric.
        tiers: the chosen tier letters, to name those without hidden checks in the notes.

    Example:
        >>> hidden_points([], load_rubric(), tiers=("A", "K"))[1]["hidden-checks"]
        'Tier A has no hidden checks: full points, nothing to fail'
    """
    points = {k.id: k.points for c in rubric.categories for k in c.checks}
    earned: dict[str, float] = {}
    notes: dict[str, str] = {}
    for group, levels in (("hidden-checks", ("core", "advanced")), ("bonus-checks", ("bonus",))):
        rows = [r for r in results if TIERS[r["tier"]].level in levels]
        letters = sorted({r["tier"] for r in rows})
        without = [t for t in tiers if TIERS[t].level in levels and t not in letters]
        bare = _none_note(without)
        if not letters:
            full = group == "hidden-checks" and bool(without)
            earned[group] = float(points[group]) if full else 0.0
            if group == "hidden-checks":
                notes[group] = f"{bare}: full points, nothing to fail" if without else ""
            else:
                notes[group] = (
                    f"{bare}: no bonus points from them"
                    if without
                    else "no bonus tier (I-L) chosen"
                )
            continue
        share = sum(
            sum(r["passed"] is True for r in rows if r["tier"] == t)
            / sum(r["tier"] == t for r in rows)
            for t in letters
        ) / len(letters)
        earned[group] = round(points[group] * min(1.0, max(0.0, share)), 2)
        failed = [line for t in letters for line in _failures([r for r in rows if r["tier"] == t])]
        notes[group] = "; ".join(([bare] if without else []) + failed[:8])
        notes[group] += f"; and {len(failed) - 8} more" if len(failed) > 8 else ""
    return earned, notes


def _failures(rows: list[dict[str, Any]]) -> list[str]:
    """One tier's failed checks, "id: message"; one line when all failed for one reason."""
    failed = [r for r in rows if r["passed"] is not True]
    if len(failed) > 1 and len(failed) == len(rows) and len({r["message"] for r in rows}) == 1:
        return [f"Tier {rows[0]['tier']}, all {len(rows)} checks: {rows[0]['message']}"]
    return [f"{r['id']}: {r['message']}" for r in failed]


def _none_note(letters: Sequence[str]) -> str:
    if len(letters) == 1:
        return f"Tier {letters[0]} has no hidden checks"
    return f"Tiers {', '.join(letters)} have no hidden checks"


def hidden_feedback(results: Sequence[dict[str, Any]]) -> str:
    """Return the learner's view of the hidden checks: a line and a Markdown table.

    Each check's tier, name, points and message; never its source.

    Example:
        >>> print(hidden_feedback([{"tier": "H", "id": "H.pacing/a", "name": "a", "points": 0.0,
        ...                         "of": 2.0, "passed": False, "message": "c(0) is 0.1"}]))
        0 of 1 hidden checks passed (graded separately from the public checks)
        <BLANKLINE>
        | tier | hidden check | points | message |
        |---|---|---|---|
        | H | a | 0 of 2 | c(0) is 0.1 |
    """
    passed = sum(r["passed"] is True for r in results)
    head = f"{passed} of {len(results)} hidden checks passed"
    head += " (graded separately from the public checks)"
    lines = [head, "", "| tier | hidden check | points | message |", "|---|---|---|---|"]
    for r in results:
        message = r["message"].replace("|", "\\|") or "passed"
        lines.append(
            f"| {r['tier']} | {r['name']} | {r['points']:.3g} of {r['of']:.3g} | {message} |"
        )
    return "\n".join(lines)


def protection_note() -> str:
    """Return "" when this machine's sandbox hides the hidden checks, else why it does not.

    Only bubblewrap can mount over ``coursekit/grading/hidden/`` (``jail.hides``); under
    ``unshare`` or no sandbox the notebooks and ``workspace check`` could read it.

    Example:
        >>> protection_note() in ("", protection_note())
        True
    """
    backend = isolation().backend
    if jail.hides(backend):
        return ""
    return (
        f"hidden checks not protected: the sandbox backend is {backend!r}, which cannot hide "
        f"{BUILT_IN} from the notebooks; install bubblewrap ({jail.INSTALL_BWRAP})"
    )
