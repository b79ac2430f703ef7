"""Tier J: kill a training process for real, resume it, and compare with an uninterrupted run.

Two experiments, the same shape:

- **yours** (:func:`kill_and_resume`): the learner's ``save_state`` / ``restore_state`` run in
  child processes (:mod:`~coursekit.recipes.phase3_bonus.resume_child`; learner code never
  runs in the notebook's process here). One child trains N steps straight; another saves
  after every step and is killed with SIGTERM after step k; a third, fresh process restores
  and trains to N.
- **coursekit's** (:func:`cli_kill_and_resume`): ``coursekit train`` with a checkpoint every
  step, killed with SIGTERM once ``metrics.jsonl`` reaches step k (it exits 130 and says how
  to resume), then ``coursekit train --resume``; against the same command uninterrupted.

Resuming is right when every loss after the resume equals the uninterrupted run's, bit for
bit: ℓ_t(resumed) = ℓ_t(straight) for t = k+1 … N (on one CPU thread the arithmetic is
deterministic, so any difference is a piece of state that was not restored).

Guide: docs/training.md ("Checkpoints and resume"). Used in notebooks/phase3_bonus.ipynb.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit.errors import CoursekitError
from coursekit.recipes.phase3_bonus.spec import child_env
from coursekit.train.spec import RunSpec

CHILD_TIMEOUT_S = 600.0
"""Seconds one child process may take before it is killed and the experiment fails."""


@dataclass(frozen=True, kw_only=True)
class ResumeResult:
    """The losses of an uninterrupted run and of a killed-then-resumed one.

    Example:
        >>> r = ResumeResult(straight=[3.0, 2.5, 2.0], before_kill=[3.0], after_resume=[2.5, 2.0],
        ...                  killed_after=1, resumed_from=1, exit_status=-15, message="")
        >>> r.equal, r.max_abs_diff
        (True, 0.0)
    """

    straight: list[float]
    """ℓ_1 … ℓ_N of the uninterrupted run."""
    before_kill: list[float]
    """ℓ_1 … ℓ_k of the run that was killed."""
    after_resume: list[float]
    """ℓ_{r+1} … ℓ_N of the resumed process (r = ``resumed_from``)."""
    killed_after: int
    """k: the last step the killed process reported before SIGTERM."""
    resumed_from: int
    """r: the step the resumed process started after (its checkpoint's step)."""
    exit_status: int
    """The killed process's exit status (−15: killed by SIGTERM; 130: coursekit's handler)."""
    message: str
    """What the killed process said on stderr (its last line; "" when it had no handler)."""

    @property
    def equal(self) -> bool:
        """Whether every loss after the resume equals the uninterrupted run's, bit for bit."""
        return self.after_resume == self.straight[self.resumed_from :]

    @property
    def max_abs_diff(self) -> float:
        """max_t |ℓ_t(resumed) − ℓ_t(straight)| over the resumed steps."""
        pairs = zip(self.after_resume, self.straight[self.resumed_from :], strict=False)
        return max((abs(a - b) for a, b in pairs), default=0.0)

    def table(self) -> list[dict[str, Any]]:
        """One row per step: step, straight, killed run, resumed run, |difference|."""
        rows = []
        for t, loss in enumerate(self.straight, 1):
            resumed = (
                self.after_resume[t - self.resumed_from - 1] if t > self.resumed_from else None
            )
            rows.append(
                {
                    "step": t,
                    "uninterrupted": loss,
                    "killed run": self.before_kill[t - 1] if t <= len(self.before_kill) else None,
                    "resumed run": resumed,
                    "|difference|": None if resumed is None else abs(resumed - loss),
                }
            )
        return rows


def _losses(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _stderr_tail(text: str) -> str:
    return (text.strip().splitlines() or [""])[-1]


def _child(request: dict[str, Any], folder: Path) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"request-{request['mode']}.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    command = [sys.executable, "-m", "coursekit.recipes.phase3_bonus.resume_child", str(path)]
    return subprocess.Popen(
        command, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _finish(child: subprocess.Popen, what: str) -> str:
    """Wait for ``child``; return its stderr, or raise naming its last line when it failed."""
    try:
        _, stderr = child.communicate(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        raise CoursekitError(f"{what} did not finish in {CHILD_TIMEOUT_S:g} s") from None
    if child.returncode != 0:
        raise CoursekitError(
            f"{what} failed with status {child.returncode}: {_stderr_tail(stderr)}"
        )
    return stderr


def _wait_for(path: Path, child: subprocess.Popen, what: str) -> None:
    """Poll until ``path`` exists; raise if ``child`` exits first or time runs out."""
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while not path.exists():
        if child.poll() is not None:
            stderr = child.communicate()[1]
            raise CoursekitError(
                f"{what} exited with status {child.returncode} before it could be killed: "
                f"{_stderr_tail(stderr)}"
            )
        if time.monotonic() > deadline:
            os.killpg(child.pid, signal.SIGKILL)
            raise CoursekitError(f"{what} did not reach the kill point in {CHILD_TIMEOUT_S:g} s")
        time.sleep(0.05)


def kill_and_resume(
    save_state: Callable[..., dict],
    restore_state: Callable[..., int],
    output: str | os.PathLike[str],
    *,
    spec: RunSpec,
    kill_after: int,
) -> ResumeResult:
    """Run the learner's save/restore through a real kill (SIGTERM) and a fresh process.

    Args:
        save_state: ``save_state(model, optimizer, scheduler, step, rng) -> dict``.
        restore_state: ``restore_state(state, model, optimizer, scheduler, rng) -> step``.
        output: a folder for the three runs (``straight/``, ``killed/``).
        spec: model, data, steps N, micro-batch, seq_len, lr and seed (``bonus_spec``).
        kill_after: k, 1 ≤ k < N: the killed process is stopped after step k.

    Raises:
        CoursekitError: a child failed (the message ends with its last stderr line, e.g. the
            learner's exception) or ``kill_after`` is out of range.
    """
    from coursekit.exercises.transport import package

    steps = spec.train.max_steps
    if not 1 <= kill_after < steps:
        raise CoursekitError(f"kill_after must be in 1..{steps - 1} (got {kill_after})")
    out = Path(output)
    request = {
        "model": spec.model, "data": spec.data, "steps": steps, "seed": spec.train.seed,
        "batch_size": spec.train.micro_batch_size, "seq_len": spec.train.seq_len,
        "lr": spec.train.learning_rate, "pause_after": kill_after,
        "parts": [package(save_state), package(restore_state)],
    }  # fmt: skip
    straight = out / "straight"
    _finish(_child({**request, "mode": "straight", "dir": str(straight)}, straight), "the run")
    killed = out / "killed"
    child = _child({**request, "mode": "run", "dir": str(killed)}, killed)
    _wait_for(killed / "paused", child, "the run to be killed")
    os.killpg(child.pid, signal.SIGTERM)
    child.communicate(timeout=CHILD_TIMEOUT_S)
    before = [row["loss"] for row in _losses(killed / "losses.jsonl")]
    resumed = _child({**request, "mode": "resume", "dir": str(killed)}, killed)
    _finish(resumed, "the resumed run")
    after = [row["loss"] for row in _losses(killed / "losses.jsonl")][len(before) :]
    return ResumeResult(
        straight=[row["loss"] for row in _losses(straight / "losses.jsonl")],
        before_kill=before,
        after_resume=after,
        killed_after=kill_after,
        resumed_from=steps - len(after),
        exit_status=child.returncode,
        message="",
    )


def _train_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "coursekit.cli", "train", *arguments]


def _run_cli(arguments: list[str], what: str) -> str:
    child = subprocess.Popen(
        _train_command(*arguments), env=child_env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    return _finish(child, what)


def _step_losses(run: Path) -> dict[int, float]:
    from coursekit.train.callbacks import read_metrics

    return {
        row["step"]: row["loss"] for row in read_metrics(run / "metrics.jsonl") if "loss" in row
    }


def _kill_when(run: Path, child: subprocess.Popen, kill_after: int) -> None:
    """SIGTERM ``child`` once its ``metrics.jsonl`` holds step ``kill_after``."""
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while (
        max(_step_losses(run) if (run / "metrics.jsonl").exists() else (), default=0) < kill_after
    ):
        if child.poll() is not None or time.monotonic() > deadline:
            os.killpg(child.pid, signal.SIGKILL)
            raise CoursekitError(
                f"coursekit train ended (status {child.returncode}) before step {kill_after}: "
                f"{_stderr_tail(child.communicate()[1])}"
            )
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGTERM)


def cli_kill_and_resume(
    spec: RunSpec, output: str | os.PathLike[str], *, kill_after: int
) -> ResumeResult:
    """Kill ``coursekit train`` with SIGTERM after step k, resume it, compare (coursekit's J).

    The spec (checkpoints every step) goes to ``coursekit train --config``; the uninterrupted
    run is the same command in ``straight/``.

    Raises:
        CoursekitError: a run failed, or ended before step ``kill_after``.
    """
    from dataclasses import replace

    from coursekit import codec

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    spec = replace(spec, train=replace(spec.train, save_every=1, keep_last=2))
    config = out / "spec.yaml"
    config.write_text(codec.to_yaml(spec), encoding="utf-8")
    _run_cli(["--config", str(config), "--output", str(out / "straight")], "coursekit train")
    run = out / "killed"
    child = subprocess.Popen(
        _train_command("--config", str(config), "--output", str(run)), env=child_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    _kill_when(run, child, kill_after)
    _, stderr = child.communicate(timeout=CHILD_TIMEOUT_S)
    if child.returncode == 0:
        raise CoursekitError(
            f"coursekit train finished all {spec.train.max_steps} steps before SIGTERM landed; "
            "raise the steps or lower kill_after"
        )
    before = _step_losses(run)
    _run_cli(["--output", str(run), "--resume"], "coursekit train --resume")
    after, straight = _step_losses(run), _step_losses(out / "straight")
    resumed_from = _resumed_from(run)
    return ResumeResult(
        straight=[straight[t] for t in sorted(straight)],
        before_kill=[before[t] for t in sorted(before)],
        after_resume=[after[t] for t in sorted(after) if t > resumed_from],
        killed_after=max(before),
        resumed_from=resumed_from,
        exit_status=child.returncode,
        message=_stderr_tail(stderr),
    )


def _resumed_from(run: Path) -> int:
    """The step the resume started after, from ``summary.json``'s ``resumed_from``."""
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    name = summary.get("resumed_from") or "step-0"
    return int(name.removeprefix("step-"))
