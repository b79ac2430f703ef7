"""The run folder, RunSpec and the checks made before anything is loaded."""

from __future__ import annotations

import errno
import json
import os

import pytest
import yaml

from coursekit.adapters import AdapterConfig
from coursekit.errors import CoursekitError
from coursekit.train import run as run_module
from coursekit.train.checkpoint import Checkpointer, ConfigMismatchError
from coursekit.train.config import TrainConfig
from coursekit.train.failures import RunFailedError
from coursekit.train.run import prepare_output, prepare_output_once, train_run
from coursekit.train.spec import RunSpec, load_spec
from tests.badinput import tree_digest
from tests.train import _resume_worker as worker


def test_spec_round_trips_through_yaml(tmp_path) -> None:
    spec = RunSpec(
        model="tiny", method="dora",
        adapter=AdapterConfig(rank=4, alpha=8, targets=("q_proj", "v_proj")),
        train=TrainConfig(max_steps=3, packing=False),
    )  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(spec.to_dict()))
    assert load_spec(path) == spec
    assert spec.adapter_config.method == "dora"


@pytest.mark.parametrize(
    ("method", "expected"),
    [("lora", ("lora", "none")), ("qlora", ("lora", "nf4")), ("dora", ("dora", "none"))],
)
def test_method_sets_the_adapter(method, expected) -> None:
    adapter = RunSpec(method=method).adapter_config
    assert (adapter.method, adapter.base_quantization) == expected
    assert RunSpec(method="full").adapter_config is None


def test_spec_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"RunSpec\.method"):
        RunSpec(method="prefix")
    with pytest.raises(ValueError, match=r"RunSpec has no field\(s\) \['modle'\]"):
        RunSpec.from_dict({"modle": "tiny"})


def test_load_spec_names_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(CoursekitError, match="YAML mapping"):
        load_spec(bad)
    with pytest.raises(CoursekitError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def test_prepare_output_refuses_to_overwrite_and_lists_differences(tmp_path) -> None:
    spec = RunSpec(model="tiny", train=TrainConfig(max_steps=3))
    prepare_output(tmp_path, spec, resume=False)
    assert load_spec(tmp_path / "config.yaml") == spec
    with pytest.raises(CoursekitError, match="already holds a run"):
        prepare_output(tmp_path, spec, resume=False)
    other = RunSpec(model="nano", train=TrainConfig(max_steps=5))
    with pytest.raises(ConfigMismatchError, match=r"model: 'tiny' → 'nano'.*train.max_steps"):
        prepare_output(tmp_path, other, resume=True)
    prepare_output(tmp_path, spec, resume=True)  # same settings: fine


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_an_unwritable_output_is_a_clear_error(tmp_path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(CoursekitError, match="choose a writable --output"):
            prepare_output(tmp_path / "run", RunSpec(), resume=False)
    finally:
        tmp_path.chmod(0o700)


def test_an_output_under_a_file_is_a_clear_error(tmp_path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(CoursekitError, match="choose a writable --output"):
        prepare_output(tmp_path / "file" / "run", RunSpec(), resume=False)


def test_a_full_fine_tune_writes_the_whole_model(tmp_path) -> None:
    config = TrainConfig(max_steps=2, micro_batch_size=2, seq_len=32, eval_every=0)
    prepare_output(tmp_path, RunSpec(method="full", train=config), resume=False)
    model = worker.tiny_model(adapter=False)
    summary = train_run(model, worker.examples(8), worker.examples(2), config, tmp_path, pad_id=0)
    assert summary["output"] == str(tmp_path / "model")
    assert (tmp_path / "model" / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoints", "config.yaml", "manifest.json", "metrics.jsonl", "model", "summary.json",
    ]  # fmt: skip


def test_prepare_output_once_checks_before_writing(tmp_path) -> None:
    spec = RunSpec(train=TrainConfig(max_steps=3))
    assert prepare_output_once(tmp_path, spec, resume=False) == tmp_path
    assert (tmp_path / "config.yaml").is_file()
    with pytest.raises(CoursekitError, match="already holds a run"):
        prepare_output_once(tmp_path, spec, resume=False)


def test_a_resume_writes_nothing_before_training(tmp_path) -> None:
    spec = RunSpec(train=TrainConfig(max_steps=3))
    prepare_output(tmp_path, spec, resume=False)
    before = (tmp_path / "config.yaml").stat()
    prepare_output(tmp_path, spec, resume=True)
    after = (tmp_path / "config.yaml").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_resume_needs_a_run_and_its_config(tmp_path) -> None:
    with pytest.raises(CoursekitError, match="holds no run to resume"):
        prepare_output(tmp_path / "new", RunSpec(), resume=True)
    assert not (tmp_path / "new").exists()
    worker.run(tmp_path / "run", max_steps=2)
    (tmp_path / "run" / "config.yaml").unlink()
    with pytest.raises(CoursekitError, match=r"config\.yaml is missing, but .* holds a run"):
        prepare_output(tmp_path / "run", RunSpec(), resume=True)
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_resuming_a_finished_run_returns_its_summary_and_writes_nothing(tmp_path) -> None:
    first = worker.run(tmp_path)
    before = tree_digest(tmp_path)
    again = worker.run(tmp_path, resume=True)
    assert again["already_finished"] is True
    assert again["val_loss"] == first["val_loss"] is not None
    assert tree_digest(tmp_path) == before


def test_resuming_at_the_last_step_keeps_the_val_loss(tmp_path) -> None:
    first = worker.run(tmp_path)  # the last checkpoint, step-6, is the end of the run
    (tmp_path / "summary.json").unlink()
    again = worker.run(tmp_path, resume=True)
    assert again["resumed_from"] == "step-6" and again["val_loss"] == first["val_loss"]
    assert json.loads((tmp_path / "summary.json").read_text())["val_loss"] == first["val_loss"]


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_the_end_names_the_checkpoint_that_holds_the_steps(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(run_module, "_save_final", full_disk)
    with pytest.raises(RunFailedError) as caught:
        worker.run(tmp_path)  # a checkpoint at step 6 already
    message = str(caught.value)
    assert "No space left" in message and "all 6 steps are kept in" in message
    assert str(tmp_path / "checkpoints" / "step-6") in message and "--resume" in message
    assert not (tmp_path / "summary.json").exists()


def test_a_full_disk_for_the_last_checkpoint_too_names_the_newest(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(run_module, "_save_final", full_disk)
    save = Checkpointer.save

    def save_until_full(self, trainer):
        if trainer.step == 5:
            raise RunFailedError("full")
        return save(self, trainer)

    monkeypatch.setattr(Checkpointer, "save", save_until_full)
    with pytest.raises(
        RunFailedError, match=r"newest checkpoint is .*step-4 \(the run reached step 5"
    ):
        worker.run(tmp_path, max_steps=5)
