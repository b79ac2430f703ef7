"""Checkpoints: everything a run needs to continue bit for bit, written atomically.

``checkpoints/step-N/`` holds

- ``trainable.safetensors``: every trainable parameter, by name (what resume loads);
- ``adapter/``: the same adapters in peft's format (when the model has coursekit adapters);
- ``optimizer.pt``, ``scheduler.pt``: their ``state_dict``s;
- ``state.json``: step, the sampler's state (epoch, position and visiting order; for a
  curriculum, its step and easiest-first order), RNG states (python, numpy, torch), the
  ``TrainConfig``;
- ``manifest.json``, written last: the SHA-256 of every other file.

A checkpoint is written into a hidden temporary sibling, fsynced, then renamed to ``step-N``
and the parent fsynced: a crash (even SIGKILL) leaves the previous checkpoints as they were.
On resume, a ``step-N`` whose manifest is missing or whose files do not match it, or which
does not fit the run (another ``TrainConfig``, other trainable parameter names or shapes,
other optimizer groups: ``incompatibility``), is skipped with a ``CheckpointWarning`` and the
previous good one is used; when checkpoints exist and none fits, resume is refused.

Guide: docs/training.md (enhancement J, checkpoint resume).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from coursekit.errors import CoursekitError, CoursekitWarning
from coursekit.io import atomic_directory, write_json
from coursekit.train.config import TrainConfig
from coursekit.train.failures import RunFailedError

STEP_DIR = re.compile(r"^step-(\d+)$")
MANIFEST = "manifest.json"


class CheckpointWarning(CoursekitWarning):
    """A checkpoint was unreadable and an older one is used instead."""


class ConfigMismatchError(CoursekitError, ValueError):
    """A run is resumed with a configuration that differs from the one it was started with."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsynced_save(obj: Any, path: Path) -> None:
    with path.open("wb") as handle:
        torch.save(obj, handle)
        handle.flush()
        os.fsync(handle.fileno())


def rng_states() -> dict[str, Any]:
    """Return python's, numpy's and torch's global RNG states as JSON-serialisable values."""
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(state), gauss],
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "torch": torch.get_rng_state().tolist(),
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore the RNG states that ``rng_states`` returned."""
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(states["torch"], dtype=torch.uint8))


def write_checkpoint(directory: Path, trainer: Any) -> None:
    """Write ``trainer``'s state into the (empty) ``directory`` and its manifest last."""
    from coursekit.adapters import adapter_modules, save_adapter

    model = trainer.model
    trainable = {
        n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad
    }
    save_file(trainable, str(directory / "trainable.safetensors"))
    if next(adapter_modules(model), None) is not None:
        save_adapter(model, directory / "adapter")
    _fsynced_save(trainer.optimizer.state_dict(), directory / "optimizer.pt")
    _fsynced_save(trainer.scheduler.state_dict(), directory / "scheduler.pt")
    write_json(directory / "state.json", trainer_state(trainer))
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    write_json(directory / MANIFEST, {str(p.relative_to(directory)): _sha256(p) for p in files})


def trainer_state(trainer: Any) -> dict[str, Any]:
    """Return the JSON part of a checkpoint: step, sampler (data/curriculum) state, RNG, config."""
    return {
        "step": trainer.step,
        "target_tokens": trainer.target_tokens,
        "train_seconds": trainer.train_seconds,
        "elapsed_s": trainer.elapsed(),
        "skipped_steps": trainer.skipped_steps,
        "val_loss": trainer.last_val_loss,
        "sampler": trainer.sampler.state_dict(),
        "rng": rng_states(),
        "config": trainer.config.to_dict(),
    }


def verify(directory: Path) -> str | None:
    """Return why ``directory`` is not a complete checkpoint, or None when it is."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        return f"no readable {MANIFEST} ({error.__class__.__name__})"
    for name, digest in manifest.items():
        path = directory / name
        if not path.is_file() or _sha256(path) != digest:
            return f"{name} is missing or does not match its checksum"
    return None


def read_checkpoint(directory: Path) -> dict[str, Any]:
    """Return a verified checkpoint's tensors and state; raise ``CoursekitError`` if corrupt."""
    problem = verify(directory)
    if problem is not None:
        raise CoursekitError(f"{directory} is not a complete checkpoint: {problem}")
    return {
        "trainable": load_file(str(directory / "trainable.safetensors")),
        "optimizer": torch.load(directory / "optimizer.pt", weights_only=True),
        "scheduler": torch.load(directory / "scheduler.pt", weights_only=True),
        "state": json.loads((directory / "state.json").read_text(encoding="utf-8")),
    }


def incompatibility(trainer: Any, checkpoint: dict[str, Any]) -> str | None:
    """Return why ``checkpoint`` cannot continue ``trainer``'s run, or None when it can.

    Checked before anything is loaded: the ``TrainConfig`` of its ``state.json``, the names
    and shapes of ``trainable.safetensors`` against the model's trainable parameters, and
    the optimizer's parameter groups (names and sizes).
    """
    try:
        saved = TrainConfig.from_dict(checkpoint["state"]["config"])
    except (KeyError, TypeError, ValueError) as error:
        return f"its state.json holds no valid configuration ({error})"
    differing = saved.differences(trainer.config)
    if differing:
        listed = ", ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in differing.items())
        return f"it was trained with a different configuration ({listed})"
    wanted = {n: tuple(p.shape) for n, p in trainer.model.named_parameters() if p.requires_grad}
    found = {n: tuple(t.shape) for n, t in checkpoint["trainable"].items()}
    if found != wanted:
        return (
            f"its trainable parameters differ from the model's ({_first_difference(found, wanted)})"
        )
    groups = [(g.get("name"), len(g["params"])) for g in checkpoint["optimizer"]["param_groups"]]
    mine = [(g.get("name"), len(g["params"])) for g in trainer.optimizer.param_groups]
    if groups != mine:
        return f"its optimizer groups (name, size) {groups} differ from this run's {mine}"
    return None


def _first_difference(found: dict[str, tuple[int, ...]], wanted: dict[str, tuple[int, ...]]) -> str:
    """Describe the first of the missing, unknown and reshaped parameters, with a count."""
    missing, unknown = sorted(wanted.keys() - found), sorted(found.keys() - wanted)
    shapes = sorted(n for n in found.keys() & wanted.keys() if found[n] != wanted[n])
    if shapes:
        name = shapes[0]
        first = f"{name} is {list(found[name])}, the model's {list(wanted[name])}"
    elif missing:
        first = f"{missing[0]} is missing"
    else:
        first = f"{unknown[0]} is not in the model"
    return f"{first}; {len(shapes)} reshaped, {len(missing)} missing, {len(unknown)} unknown"


def restore(trainer: Any, checkpoint: dict[str, Any]) -> None:
    """Load a ``read_checkpoint`` result into ``trainer`` (weights, optimizer, data, RNG).

    Everything is checked before anything is changed: a checkpoint that does not fit
    (``incompatibility``) or whose data order differs leaves ``trainer`` as it was.

    Raises:
        ConfigMismatchError: the checkpoint belongs to another configuration or model.
        ValueError: the data order differs (other training data, seed or curriculum).
    """
    problem = incompatibility(trainer, checkpoint)
    if problem is not None:
        raise ConfigMismatchError(
            f"the checkpoint does not fit this run: {problem}; resume with the original "
            "settings or start a new run directory"
        )
    state = checkpoint["state"]
    trainer.sampler.load_state_dict(state["sampler"])  # checks the data order first
    parameters = dict(trainer.model.named_parameters())
    with torch.no_grad():
        for name, tensor in checkpoint["trainable"].items():
            parameters[name].copy_(tensor)
    trainer.optimizer.load_state_dict(checkpoint["optimizer"])
    trainer.scheduler.load_state_dict(checkpoint["scheduler"])
    trainer.step, trainer.target_tokens = state["step"], state["target_tokens"]
    trainer.train_seconds = state["train_seconds"]
    trainer.skipped_steps = state.get("skipped_steps", 0)
    trainer.last_val_loss = state.get("val_loss")
    trainer.elapsed_before, trainer.started = state["elapsed_s"], time.perf_counter()
    set_rng_states(state["rng"])


class Checkpointer:
    """Save every ``every`` steps into ``directory/step-N``, keeping the last ``keep_last``.

    Call it after each step (``Trainer.fit(checkpoint=...)``). Only the main process writes.

    Args:
        directory: the run's ``checkpoints/`` folder (created if missing).
        every: steps between checkpoints (0 = never).
        keep_last: how many complete checkpoints to keep.
    """

    def __init__(self, directory: str | os.PathLike[str], *, every: int, keep_last: int) -> None:
        self.directory, self.every, self.keep_last = Path(directory), every, keep_last

    def __call__(self, trainer: Any) -> None:
        """Save when ``trainer.step`` is a multiple of ``every``."""
        if self.every and trainer.step % self.every == 0:
            if trainer.accelerator.is_main_process:
                self.save(trainer)
            trainer.accelerator.wait_for_everyone()

    def steps(self) -> list[Path]:
        """Return the ``step-N`` directories, newest first."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.iterdir() if STEP_DIR.match(p.name) and p.is_dir()]
        return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)), reverse=True)

    def save(self, trainer: Any) -> Path:
        """Write ``step-N`` atomically, then delete all but the newest ``keep_last``.

        Raises:
            RunFailedError: the write failed (e.g. a full disk); older checkpoints are intact.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"step-{trainer.step}"
        try:
            with atomic_directory(target) as staging:
                write_checkpoint(staging, trainer)
        except OSError as error:
            previous = next((p.name for p in self.steps() if p != target), "none")
            raise RunFailedError(
                f"could not write checkpoint {target} ({error}); the previous checkpoint "
                f"({previous}) is intact: free disk space, then rerun with --resume"
            ) from error
        for stale in self.directory.glob(".step-*.tmp*"):
            shutil.rmtree(stale, ignore_errors=True)
        for old in self.steps()[self.keep_last :]:
            # renamed aside first: an interrupted delete never leaves a half-empty step-N
            aside = old.with_name(f".{old.name}.old.tmp")
            os.replace(old, aside)
            shutil.rmtree(aside, ignore_errors=True)
        return target

    def latest(self, trainer: Any = None) -> tuple[Path, dict[str, Any]] | None:
        """Return the newest complete checkpoint (that fits ``trainer``) and its contents.

        Unreadable checkpoints, and with ``trainer`` those that do not fit its run
        (``incompatibility``), are skipped with a ``CheckpointWarning`` each once an older
        one is found. None when there is no checkpoint or every one is unreadable.

        Raises:
            ConfigMismatchError: checkpoints exist but none fits ``trainer``'s run.
        """
        skipped: list[str] = []
        misfits: list[str] = []
        for directory in self.steps():
            try:
                checkpoint = read_checkpoint(directory)
            except (CoursekitError, OSError, RuntimeError, ValueError) as error:
                skipped.append(str(error))
                continue
            problem = None if trainer is None else incompatibility(trainer, checkpoint)
            if problem is None:
                self._warn(skipped)
                return directory, checkpoint
            skipped.append(f"{directory} does not fit this run: {problem}")
            misfits.append(f"{directory.name}: {problem}")
        if misfits:
            raise ConfigMismatchError(
                f"no checkpoint in {self.directory} fits this run ({misfits[0]}); resume with "
                "the settings the run was started with, or choose a new --output"
            )
        self._warn(skipped)
        return None

    @staticmethod
    def _warn(skipped: list[str]) -> None:
        for reason in skipped:
            warnings.warn(
                f"{reason}; falling back to an older checkpoint", CheckpointWarning, stacklevel=3
            )
