"""The run folder before training: checked, created, found finished, or put back as it was.

A start (``resume=False``) needs a folder that holds no run; it is checked read-only, then
``config.yaml`` is written. A resume needs the folder's ``config.yaml`` (it is never rewritten)
and settings equal to it. A start that fails while loading the model or data removes what it
created (``start_creates``, ``undo_start``), so the same command can simply be run again.

Guide: docs/training.md ("A run is one folder", "When a run stops early").
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from coursekit import codec
from coursekit.errors import CoursekitError
from coursekit.io import atomic_open
from coursekit.train.checkpoint import STEP_DIR, ConfigMismatchError
from coursekit.train.config import TrainConfig
from coursekit.train.spec import RunSpec, load_spec

RUN_FILES: tuple[str, ...] = ("metrics.jsonl", "summary.json", "adapter", "model")
"""What a run writes besides ``config.yaml`` and ``checkpoints/step-N``."""


def run_files(out: Path) -> list[str]:
    """Return the files of a run found in ``out`` (``checkpoints/step-N`` included)."""
    found = [name for name in RUN_FILES if (out / name).exists()]
    checkpoints = out / "checkpoints"
    if checkpoints.is_dir():
        found += sorted(
            f"checkpoints/{p.name}" for p in checkpoints.iterdir() if STEP_DIR.match(p.name)
        )
    return found


def check_output(output: str | os.PathLike[str], spec: RunSpec, *, resume: bool) -> Path:
    """Check the run folder for a start or a resume without writing anything.

    Raises:
        CoursekitError: ``--output`` is a file; a start where a run (or part of one) is;
            a resume where there is no run, or whose ``config.yaml`` is missing.
        ConfigMismatchError: a resume with settings that differ from the saved ones.
    """
    out = Path(output)
    saved = out / "config.yaml"
    if out.exists() and not out.is_dir():
        raise CoursekitError(f"--output {out} is a file, not a folder; choose a folder")
    if not resume:
        if saved.exists():
            raise CoursekitError(
                f"{out} already holds a run; pass --resume or choose a new --output"
            )
        leftovers = run_files(out)
        if leftovers:
            raise CoursekitError(
                f"{out} holds files of a run ({', '.join(leftovers)}) but no config.yaml; "
                "choose a new --output (or put its config.yaml back and pass --resume)"
            )
        return out
    if not saved.is_file():
        leftovers = run_files(out)
        if leftovers:
            raise CoursekitError(
                f"{saved} is missing, but {out} holds a run ({', '.join(leftovers)}): put the "
                "run's config.yaml back to resume it (nothing was changed)"
            )
        raise CoursekitError(
            f"{out} holds no run to resume (no config.yaml); drop --resume to start one"
        )
    differing = load_spec(saved).differences(spec)
    if differing:
        listed = ", ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in sorted(differing.items()))
        raise ConfigMismatchError(
            f"{saved} differs from this run's settings ({listed}); resume with the "
            "original settings or choose a new --output"
        )
    return out


def prepare_output(output: str | os.PathLike[str], spec: RunSpec, *, resume: bool) -> Path:
    """Check the run folder (``check_output``); on a start, write ``config.yaml``; load nothing.

    A resume writes nothing: the saved ``config.yaml`` is the run's and stays as it is.

    Raises:
        CoursekitError: as ``check_output``, or the folder is not writable.
        ConfigMismatchError: ``resume`` with settings that differ from the saved ones.
    """
    out = check_output(output, spec, resume=resume)
    if resume:
        return out
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        with atomic_open(out / "config.yaml") as handle:
            handle.write(codec.to_yaml(spec))
    except OSError as error:
        raise CoursekitError(
            f"cannot write the run folder {out} ({error.strerror or error}); choose a writable "
            "--output"
        ) from error
    return out


def prepare_output_once(output: str | os.PathLike[str], spec: RunSpec, *, resume: bool) -> Path:
    """``prepare_output`` for every process of a launch: all check, the main one writes.

    Each process checks the folder read-only first (so a bad ``--output`` fails everywhere
    alike), then only the main process writes ``config.yaml``.
    """
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    check_output(output, spec, resume=resume)
    state.wait_for_everyone()
    if state.is_main_process:
        prepare_output(output, spec, resume=resume)
    state.wait_for_everyone()
    return Path(output)


def check_before_loading(spec: RunSpec) -> None:
    """Refuse what can be refused before ``config.yaml`` is written: a missing ``--data``."""
    if spec.data and not Path(spec.data).is_dir():
        raise CoursekitError(
            f"--data {spec.data} is not a directory; pass the folder holding train/val/test.jsonl"
        )


def finished_run(output: str | os.PathLike[str], config: TrainConfig) -> dict[str, Any] | None:
    """Return the saved ``summary.json`` when the run in ``output`` has finished, else None.

    Finished: ``summary.json`` is readable, its ``steps`` is ``config.max_steps`` (any, for a
    run measured in epochs: the summary is only written at the end) and the trained
    ``adapter/`` (or ``model/``) is there.
    """
    out = Path(output)
    try:
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict):
        return None
    if config.max_steps is not None and summary.get("steps") != config.max_steps:
        return None
    if not ((out / "adapter").is_dir() or (out / "model").is_dir()):
        return None
    return summary


def start_creates(output: str | os.PathLike[str]) -> list[Path]:
    """Return what a start in ``output`` will create: the folder, ``checkpoints/``, config.yaml.

    Called before ``prepare_output``; ``undo_start`` removes exactly these again.
    """
    out = Path(output)
    return [p for p in (out, out / "checkpoints", out / "config.yaml") if not p.exists()]


def undo_start(created: list[Path]) -> None:
    """Remove what a failed start created (``start_creates``), so the same command can rerun.

    Nothing that existed before the start is touched: a folder the user made stays.
    """
    for path in reversed(created):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
