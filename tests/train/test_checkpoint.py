"""Checkpoints: contents, keep-last, corruption fallback, full disk, config mismatch."""

from __future__ import annotations

import errno
import json
import random

import numpy as np
import pytest
import torch

from coursekit.errors import CoursekitError
from coursekit.io import atomic_directory
from coursekit.train import checkpoint as ckpt
from coursekit.train.checkpoint import (
    Checkpointer,
    CheckpointWarning,
    ConfigMismatchError,
    read_checkpoint,
    restore,
    rng_states,
    set_rng_states,
    verify,
)
from coursekit.train.config import TrainConfig
from coursekit.train.loop import Trainer
from tests.train import _resume_worker as worker


def trainer(steps: int = 0, **changes) -> Trainer:
    config = TrainConfig(**({"max_steps": 6, "micro_batch_size": 2, "seq_len": 32} | changes))
    made = Trainer(worker.tiny_model(), worker.examples(12), [], config, pad_id=0)
    for _ in range(steps):
        made.train_step()
    return made


def test_a_checkpoint_holds_everything_and_verifies(tmp_path) -> None:
    saved = Checkpointer(tmp_path, every=1, keep_last=2).save(trainer(steps=2))
    assert saved.name == "step-2"
    names = {p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file()}
    assert names == {
        "trainable.safetensors", "adapter/adapter_config.json", "adapter/adapter_model.safetensors",
        "optimizer.pt", "scheduler.pt", "state.json", "manifest.json",
    }  # fmt: skip
    state = json.loads((saved / "state.json").read_text())
    assert state["step"] == 2 and state["sampler"]["position"] > 0
    assert set(state["rng"]) == {"python", "numpy", "torch"}
    assert state["config"]["max_steps"] == 6 and "curriculum" not in state
    assert verify(saved) is None


def test_keep_last_and_stale_staging_directories_are_removed(tmp_path) -> None:
    checkpointer = Checkpointer(tmp_path, every=1, keep_last=2)
    (tmp_path / ".step-9.abc.tmp").mkdir()  # left behind by a killed write
    made = trainer()
    for _ in range(4):
        made.train_step()
        checkpointer(made)
    assert [p.name for p in checkpointer.steps()] == ["step-4", "step-3"]
    assert not list(tmp_path.glob(".step-*"))


def test_every_zero_never_saves(tmp_path) -> None:
    made = trainer(steps=1)
    Checkpointer(tmp_path, every=0, keep_last=1)(made)
    assert Checkpointer(tmp_path, every=0, keep_last=1).steps() == []
    assert Checkpointer(tmp_path / "missing", every=0, keep_last=1).latest() is None


@pytest.mark.parametrize("damage", ["truncate", "no-manifest", "bad-manifest"])
def test_a_corrupt_latest_checkpoint_falls_back_with_a_warning(tmp_path, damage) -> None:
    checkpointer = Checkpointer(tmp_path, every=1, keep_last=3)
    made = trainer()
    for _ in range(2):
        made.train_step()
        checkpointer(made)
    latest = tmp_path / "step-2"
    if damage == "truncate":
        weights = latest / "trainable.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "no-manifest":
        (latest / "manifest.json").unlink()
    else:
        (latest / "manifest.json").write_text("{not json")
    with pytest.warns(CheckpointWarning, match="step-2"):
        found = checkpointer.latest()
    assert found[0].name == "step-1" and found[1]["state"]["step"] == 1
    with pytest.raises(CoursekitError, match="not a complete checkpoint"):
        read_checkpoint(latest)


def test_a_full_disk_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch) -> None:
    checkpointer = Checkpointer(tmp_path, every=1, keep_last=3)
    made = trainer(steps=1)
    checkpointer.save(made)
    before = {p: p.read_bytes() for p in (tmp_path / "step-1").rglob("*") if p.is_file()}
    made.train_step()

    def full_disk(obj, handle_path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "_fsynced_save", full_disk)
    with pytest.raises(CoursekitError, match=r"No space left.*step-1\) is intact"):
        checkpointer.save(made)
    assert [p.name for p in tmp_path.iterdir()] == ["step-1"]  # no step-2, no staging left
    assert {p: p.read_bytes() for p in (tmp_path / "step-1").rglob("*") if p.is_file()} == before


def test_restore_rejects_a_different_config(tmp_path) -> None:
    saved = Checkpointer(tmp_path, every=1, keep_last=1).save(trainer(steps=1))
    other = trainer(learning_rate=1e-3, seq_len=48)
    with pytest.raises(ConfigMismatchError, match=r"learning_rate.*seq_len"):
        restore(other, read_checkpoint(saved))


def test_restore_continues_the_data_order(tmp_path) -> None:
    first = trainer(steps=3)
    saved = Checkpointer(tmp_path, every=1, keep_last=1).save(first)
    second = trainer()
    restore(second, read_checkpoint(saved))
    assert second.step == 3
    assert second.sampler.take(2) == first.sampler.take(2)


def test_rng_states_round_trip() -> None:
    states = rng_states()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_states(states)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_atomic_directory_replaces_atomically_and_cleans_up(tmp_path) -> None:
    target = tmp_path / "out"
    with atomic_directory(target) as staging:
        (staging / "a").write_text("1")
    with atomic_directory(target) as staging:
        (staging / "b").write_text("2")
    assert [p.name for p in target.iterdir()] == ["b"]
    with pytest.raises(RuntimeError), atomic_directory(target) as staging:
        (staging / "c").write_text("3")
        raise RuntimeError("boom")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in target.iterdir()] == ["b"]


def test_restore_rejects_another_data_order(tmp_path) -> None:
    saved = Checkpointer(tmp_path, every=1, keep_last=1).save(trainer(steps=1))
    checkpoint = read_checkpoint(saved)
    checkpoint["state"]["sampler"]["order"].reverse()
    with pytest.raises(ValueError, match="data order differs"):
        restore(trainer(), checkpoint)


def test_a_curriculum_position_survives_a_checkpoint(tmp_path) -> None:
    def curriculum_trainer() -> Trainer:
        config = TrainConfig(
            max_steps=6, micro_batch_size=2, seq_len=32, curriculum="root", packing=False
        )
        data = worker.examples(12)
        return Trainer(worker.tiny_model(), data, [], config, pad_id=0,
                       difficulties=[float(-i) for i in range(12)])  # fmt: skip

    first = curriculum_trainer()
    first.train_step()
    saved = Checkpointer(tmp_path, every=1, keep_last=1).save(first)
    checkpoint = read_checkpoint(saved)
    assert checkpoint["state"]["sampler"]["position"] == 1
    second = curriculum_trainer()
    restore(second, checkpoint)
    assert second.sampler.take(2) == first.sampler.take(2)
    checkpoint["state"]["sampler"]["order"].reverse()
    with pytest.raises(ValueError, match="curriculum order differs"):
        restore(curriculum_trainer(), checkpoint)


def foreign_trainer(steps: int) -> Trainer:
    """The same TrainConfig, but rank-2 adapters: its checkpoints do not fit ``trainer()``."""
    from coursekit.adapters import AdapterConfig, apply

    model = worker.tiny_model(adapter=False)
    apply(model, AdapterConfig(rank=2, alpha=4, targets="all-linear"))
    config = TrainConfig(max_steps=6, micro_batch_size=2, seq_len=32)
    made = Trainer(model, worker.examples(12), [], config, pad_id=0)
    for _ in range(steps):
        made.train_step()
    return made


def test_a_checkpoint_of_another_model_falls_back_to_the_newest_that_fits(tmp_path) -> None:
    checkpointer = Checkpointer(tmp_path, every=1, keep_last=5)
    checkpointer.save(trainer(steps=2))
    checkpointer.save(foreign_trainer(steps=3))  # step-3: rank 2 where the run has rank 4
    resumed = trainer()
    with pytest.warns(CheckpointWarning, match=r"step-3 does not fit this run.*lora_a is \[2, "):
        found = checkpointer.latest(resumed)
    assert found[0].name == "step-2"
    restore(resumed, found[1])
    assert resumed.step == 2


def test_no_fitting_checkpoint_is_one_error_and_changes_nothing(tmp_path) -> None:
    checkpointer = Checkpointer(tmp_path, every=1, keep_last=5)
    checkpointer.save(foreign_trainer(steps=1))
    made = trainer()
    before = {n: p.detach().clone() for n, p in made.model.named_parameters()}
    with pytest.raises(ConfigMismatchError, match=r"no checkpoint in .* fits this run \(step-1: "):
        checkpointer.latest(made)
    with pytest.raises(ConfigMismatchError, match="trainable parameters differ"):
        restore(made, read_checkpoint(tmp_path / "step-1"))  # was a RuntimeError mid-copy
    assert made.step == 0
    assert all(torch.equal(p, before[n]) for n, p in made.model.named_parameters())


def test_other_optimizer_groups_do_not_fit(tmp_path) -> None:
    saved = Checkpointer(tmp_path, every=1, keep_last=1).save(trainer(steps=1))
    checkpoint = read_checkpoint(saved)
    checkpoint["optimizer"]["param_groups"].append(checkpoint["optimizer"]["param_groups"][0])
    assert "optimizer groups" in ckpt.incompatibility(trainer(), checkpoint)


def test_old_checkpoints_are_renamed_aside_before_they_are_deleted(tmp_path, monkeypatch) -> None:
    checkpointer = Checkpointer(tmp_path, every=1, keep_last=1)
    made = trainer(steps=1)
    checkpointer.save(made)
    deleted = []
    monkeypatch.setattr(ckpt.shutil, "rmtree", lambda path, **kw: deleted.append(path.name))
    made.train_step()
    checkpointer.save(made)  # the delete of step-1 "is interrupted" (never happens)
    assert [name for name in deleted if "step-1" in name] == [".step-1.old.tmp"]
    assert [p.name for p in checkpointer.steps()] == ["step-2"]  # no half-deleted step-1
    monkeypatch.undo()
    made.train_step()
    checkpointer.save(made)  # the next save clears what was left aside
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-3"]
