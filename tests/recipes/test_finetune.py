"""The ``finetune`` recipe: the folder is checked before loading, then a run folder is written."""

from __future__ import annotations

import json
import shutil

import pytest

from coursekit.data.corpus import seed_dir
from coursekit.errors import CoursekitError
from coursekit.recipes import finetune as finetune_module
from coursekit.recipes.finetune import finetune
from coursekit.train import RunSpec, TrainConfig
from coursekit.train.checkpoint import ConfigMismatchError
from coursekit.train.run import EmptyValidationWarning

TRAIN = TrainConfig(max_steps=1, micro_batch_size=1, seq_len=256, eval_every=0)


def spec(**train: object) -> RunSpec:
    config = TrainConfig(**{**vars(TRAIN), **train})
    return RunSpec(model="tiny", data=str(seed_dir()), train=config)


@pytest.fixture
def no_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("loaded a model before checking the output folder")

    monkeypatch.setattr(finetune_module, "load_for_training", refuse)


def test_writes_a_run_folder_and_returns_the_summary(tmp_path):
    summary = finetune(spec(), tmp_path / "run")
    assert summary["steps"] == 1 and summary["val_loss"] > 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 1
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_a_taken_folder_fails_before_loading(tmp_path, no_loading):
    (tmp_path / "config.yaml").write_text("model: tiny\n")
    with pytest.raises(CoursekitError, match="already holds a run"):
        finetune(spec(), tmp_path)


def test_resume_with_other_settings_fails_before_loading(tmp_path, no_loading):
    from coursekit.train.run import prepare_output

    prepare_output(tmp_path, spec(), resume=False)
    with pytest.raises(ConfigMismatchError, match=r"train\.seed: 0 → 1"):
        finetune(spec(seed=1), tmp_path, resume=True)


def test_a_start_that_fails_while_loading_removes_only_what_it_created(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise CoursekitError("the model cannot be loaded")

    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.setattr(finetune_module, "load_for_training", fail)
    with pytest.raises(CoursekitError, match="cannot be loaded"):
        finetune(spec(), tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    with pytest.raises(CoursekitError, match="cannot be loaded"):
        finetune(spec(), tmp_path / "new")
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    assert finetune(spec(), tmp_path)["steps"] == 1  # the same call works once loading does


def test_an_empty_validation_split_warns_naming_the_data(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(seed_dir(), data)
    (data / "val.jsonl").write_text("")
    empty = RunSpec(model="tiny", data=str(data), train=TRAIN)
    with pytest.warns(EmptyValidationWarning, match=f"{data}: the validation split is empty"):
        summary = finetune(empty, tmp_path / "run")
    assert summary["val_loss"] is None


def test_resuming_a_finished_run_loads_nothing(tmp_path, monkeypatch):
    finetune(spec(), tmp_path)
    monkeypatch.setattr(finetune_module, "load_for_training", None)  # would fail if called
    summary = finetune(spec(), tmp_path, resume=True)
    assert summary["already_finished"] is True and summary["steps"] == 1
