"""Evidence, not claims: check a run folder against its manifest and a short re-run.

``verify_run(run_dir)`` makes four checks and returns them as plain data:

==========  ================================================================================
check       ok when
==========  ================================================================================
files       every file the manifest hashed (``config.yaml``, ``metrics.jsonl``,
            ``summary.json``, ``adapter/*``) has the recorded SHA-256; an edited
            ``metrics.jsonl`` is named by line and step
data        a directory with the split files the run read (same digest) is found
metrics     ``metrics.jsonl`` has a loss for each of the first N steps
rerun       the first N steps, re-run from the recorded settings and seed in a separate
            process on the CPU, give the recorded losses within the tolerance:
            ``|recorded − re-run| ≤ atol + rtol·|re-run|`` at every step
==========  ================================================================================

The hashes catch edits after the run; the re-run catches numbers that were never this
run's (edited and re-hashed, or copied from another learner's run with another seed or
config). What neither proves is in docs/grading.md.

Example:
    >>> report = verify_run("runs/phase1/train", steps=3)  # doctest: +SKIP
    >>> report["ok"], [c["check"] for c in report["checks"]]  # doctest: +SKIP
    (True, ['files', 'data', 'metrics', 'rerun'])

Guide: docs/grading.md.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coursekit
from coursekit import codec
from coursekit.errors import CoursekitError
from coursekit.grading.manifest import data_digest, line_digests, read_manifest, sha256_file


@dataclass(frozen=True, kw_only=True)
class Tolerance:
    """How far a re-run loss may be from the recorded one: ``|Δ| ≤ atol + rtol·|loss|``."""

    rtol: float = 1e-3
    """Relative part (measured run-to-run differences on CPU: docs/grading.md)."""
    atol: float = 1e-4
    """Absolute part, in nats per target token."""

    def __post_init__(self) -> None:
        """Validate: both parts finite and >= 0."""
        codec.check_types(self)
        codec.check_rules(
            self,
            [
                ("rtol", 0 <= self.rtol < math.inf, "must be >= 0 and finite"),
                ("atol", 0 <= self.atol < math.inf, "must be >= 0 and finite"),
            ],
        )

    def allows(self, recorded: float, rerun: float) -> bool:
        """Return whether ``recorded`` is within the tolerance of ``rerun``.

        Example:
            >>> Tolerance(rtol=0.01, atol=0).allows(2.01, 2.0), Tolerance().allows(2.1, 2.0)
            (True, False)
        """
        return abs(recorded - rerun) <= self.atol + self.rtol * abs(rerun)


def _check(name: str, ok: bool, message: str, **numbers: Any) -> dict[str, Any]:
    return {"check": name, "status": "ok" if ok else "failed", "message": message,
            "numbers": numbers}  # fmt: skip


def check_files(run_dir: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Compare each hashed file with the manifest; the first difference is the message."""
    recorded = manifest.get("files")
    if not isinstance(recorded, dict):
        return _check("files", False, "manifest.json records no files")
    for name, sha in recorded.items():
        path = run_dir / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            return _check("files", False, f"manifest.json names {name!r}, outside the run")
        if not path.is_file():
            return _check("files", False, f"{name}: missing, but manifest.json recorded it")
        found = sha256_file(path)
        if found != sha:
            return _check("files", False, _differs(run_dir, name, sha, found, manifest))
    if "metrics.jsonl" not in recorded:
        return _check("files", False, "manifest.json records no metrics.jsonl")
    return _check("files", True, f"{len(recorded)} files match manifest.json", files=len(recorded))


def _differs(run_dir: Path, name: str, sha: str, found: str, manifest: Mapping) -> str:
    what = f"{name}: SHA-256 differs from manifest.json ({found[:12]}… ≠ {sha[:12]}…)"
    if name.startswith(("adapter/", "model/")):
        return f"{what}; the {name.split('/')[0]} is not the one this run trained"
    if name == "metrics.jsonl":
        return f"{what}; {_edited_line(run_dir / name, manifest.get('metrics_lines', []))}"
    return f"{what}; the file was edited after the run"


def _edited_line(path: Path, recorded: list[str]) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, (line, digest) in enumerate(zip(lines, line_digests(path), strict=True), 1):
        if number > len(recorded) or digest != recorded[number - 1]:
            try:
                step = f"step {json.loads(line)['step']}"
            except (ValueError, TypeError, KeyError):
                step = "not a metrics row"
            return f"line {number} ({step}) was edited after the run"
    return f"lines {len(lines) + 1}… recorded by the run were removed"


def find_data(manifest: Mapping[str, Any], candidates: Iterable[str | os.PathLike[str]] = ()):
    """Return the directory whose split files have the manifest's data digest, or None.

    Looked in, in order: the recorded directory, ``candidates``, the committed corpus and the
    seed set.
    """
    from coursekit.data.corpus import default_corpus_dir, seed_dir

    data = manifest.get("data", {})
    wanted = data.get("sha256")
    for folder in [data.get("dir"), *candidates, default_corpus_dir(), seed_dir()]:
        if folder and wanted and Path(folder).exists():
            try:
                if data_digest(folder)["sha256"] == wanted:
                    return Path(folder)
            except CoursekitError:
                continue
    return None


def recorded_losses(run_dir: Path, steps: int) -> tuple[list[float], str | None]:
    """Return the losses of steps 1..``steps`` in ``metrics.jsonl``, or the problem found."""
    losses: dict[int, float] = {}
    path = run_dir / "metrics.jsonl"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            if "loss" in row:
                losses[int(row["step"])] = float(row["loss"])
        except (ValueError, TypeError, KeyError):
            return [], f"metrics.jsonl:{number}: not a metrics row with step and loss"
    absent = [k for k in range(1, steps + 1) if k not in losses]
    if absent:
        return [], f"metrics.jsonl has no loss for step {absent[0]}"
    return [losses[k] for k in range(1, steps + 1)], None


def rerun(
    manifest: Mapping[str, Any], data_dir: Path, steps: int, *, timeout_s: float = 600
) -> dict[str, Any]:
    """Run :mod:`coursekit.grading.replay` in a fresh interpreter and return its result.

    The child imports the grader's own coursekit (``PYTHONPATH`` set to it, ``-P`` so the
    working directory is not on the path), runs in an empty temporary directory, on the CPU
    (``CUDA_VISIBLE_DEVICES`` empty) with the run's thread count (at most the cores here) and
    the hub offline.

    Returns:
        The replay's ``{"step", "loss", "grad_norm", "lr"}``, or ``{"error": ...}``.
    """
    try:
        threads = max(1, min(int(manifest["environment"]["threads"]), os.cpu_count() or 1))
    except (KeyError, TypeError, ValueError):
        return {"error": "manifest.json records no thread count (environment.threads)"}
    root = Path(coursekit.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "CUDA_VISIBLE_DEVICES": "",
           "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="coursekit-rerun-") as work:
        request, result = Path(work) / "request.json", Path(work) / "result.json"
        payload = {"manifest": manifest, "data_dir": str(data_dir), "steps": steps,
                   "threads": threads}  # fmt: skip
        request.write_text(json.dumps(payload), encoding="utf-8")
        module = "coursekit.grading.replay"
        command = [sys.executable, "-P", "-m", module, str(request), str(result)]
        try:
            done = subprocess.run(
                command, cwd=work, env=env, capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired:
            return {"error": f"the re-run did not finish within {timeout_s:g} s"}
        if not result.is_file():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return {"error": f"the re-run crashed (exit status {done.returncode}): {tail}"}
        return json.loads(result.read_text(encoding="utf-8"))


def compare_losses(
    recorded: list[float], rerun_losses: list[float | None], tolerance: Tolerance
) -> dict[str, Any]:
    """Return the ``rerun`` check: ok when every step's losses agree within ``tolerance``.

    Example:
        >>> compare_losses([2.0, 1.9], [2.0, 1.5], Tolerance())["message"][:42]
        'metrics.jsonl: the losses do not reproduce'
    """
    rerun_losses = [*rerun_losses, *[None] * (len(recorded) - len(rerun_losses))]
    pairs = list(zip(recorded, rerun_losses, strict=True))
    diffs = [abs(a - b) if b is not None else math.inf for a, b in pairs]
    numbers = {
        "recorded": recorded, "rerun": rerun_losses, "abs_diff": diffs,
        "max_abs_diff": max(diffs, default=0.0),
        "tolerance": {"rtol": tolerance.rtol, "atol": tolerance.atol},
    }  # fmt: skip
    for step, (mine, theirs) in enumerate(pairs, 1):
        if theirs is None or not tolerance.allows(mine, theirs):
            allowed = tolerance.atol + tolerance.rtol * abs(theirs or 0.0)
            return _check(
                "rerun", False,
                f"metrics.jsonl: the losses do not reproduce at step {step} (recorded "
                f"{mine:.6g}, re-run from the manifest's config and seed {theirs}, |Δ| = "
                f"{diffs[step - 1]:.3g} > {allowed:.3g}); these metrics are not this run's",
                **numbers,
            )  # fmt: skip
    return _check(
        "rerun", True,
        f"the first {len(recorded)} losses reproduce within |Δ| ≤ {tolerance.atol:g} + "
        f"{tolerance.rtol:g}·loss (largest |Δ| {numbers['max_abs_diff']:.3g})",
        **numbers,
    )  # fmt: skip


def verify_run(
    run_dir: str | os.PathLike[str],
    *,
    steps: int = 3,
    tolerance: Tolerance | None = None,
    data_dirs: Iterable[str | os.PathLike[str]] = (),
    timeout_s: float = 600,
) -> dict[str, Any]:
    """Check a run folder against its ``manifest.json`` and a re-run of its first steps.

    Args:
        run_dir: the run folder (``config.yaml``, ``metrics.jsonl``, ``adapter/``,
            ``manifest.json``...).
        steps: N, how many first steps to re-run (>= 1; at most the run's steps).
        tolerance: how close the re-run losses must be (``Tolerance()`` when None).
        data_dirs: more places to look for the run's data (by digest) besides the recorded
            directory, the committed corpus and the seed set.
        timeout_s: wall-clock limit of the re-run process.

    Returns:
        ``{"run_dir", "ok", "checks": [{"check", "status": "ok" | "failed", "message",
        "numbers"}]}``, JSON-serialisable; ``ok`` when every check is.

    Raises:
        CoursekitError: no such folder, or no readable ``manifest.json`` in it (one line).
        ValueError: ``steps`` < 1.

    Example:
        >>> verify_run("runs/phase1/train")["ok"]  # doctest: +SKIP
        True
    """
    if steps < 1:
        raise ValueError(f"verify_run: steps must be >= 1 (got {steps})")
    tolerance = tolerance or Tolerance()
    out = Path(run_dir)
    manifest = read_manifest(out)
    checks = [check_files(out, manifest)]
    data = find_data(manifest, data_dirs)
    checks.append(_data_check(manifest, data))
    total = ((manifest.get("spec") or {}).get("train") or {}).get("max_steps") or steps
    losses, problem = recorded_losses(out, min(steps, total))
    checks.append(_check("metrics", problem is None, problem or f"{len(losses)} losses read"))
    if manifest.get("spec") is None:
        checks.append(_check("rerun", False, f"cannot re-run: {manifest.get('spec_error')}"))
    elif checks[0]["status"] != "ok":  # the files already fail: a re-run adds ~10 s, no news
        checks.append(
            _check("rerun", False, "not re-run: the run's files differ from manifest.json")
        )
    elif data is not None and problem is None:
        result = rerun(manifest, data, len(losses), timeout_s=timeout_s)
        if "error" in result:
            checks.append(_check("rerun", False, f"cannot re-run: {result['error']}"))
        else:
            checks.append(compare_losses(losses, result["loss"], tolerance))
    else:
        checks.append(_check("rerun", False, "not re-run: the data or the losses are missing"))
    ok = all(check["status"] == "ok" for check in checks)
    return {"run_dir": str(out), "ok": ok, "checks": checks}


def _data_check(manifest: Mapping[str, Any], found: Path | None) -> dict[str, Any]:
    data = manifest.get("data", {})
    if found is not None:
        return _check("data", True, f"the run's split files are in {found}", dir=str(found))
    if "error" in data:
        return _check("data", False, f"the run's data is unknown: {data['error']}")
    return _check(
        "data", False,
        f"no directory holds the split files the run read (digest {data.get('sha256', '?')[:12]}"
        f"…, recorded in {data.get('dir')}); pass their folder in data_dirs",
    )  # fmt: skip
