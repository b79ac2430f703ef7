"""The ``finetune`` recipe: the folder is checked before loading, then a run folder is written."""

from __future__ import annotations

import json

import pytest

from coursekit.data.corpus import seed_dir
from coursekit.errors import CoursekitError
from coursekit.recipes import finetune as finetune_module
from coursekit.recipes.finetune import finetune
from coursekit.train import RunSpec, TrainConfig
from coursekit.train.checkpoint import ConfigMismatchError

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
