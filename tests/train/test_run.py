"""The run folder, RunSpec and the checks made before anything is loaded."""

from __future__ import annotations

import os

import pytest
import yaml

from coursekit.adapters import AdapterConfig
from coursekit.errors import CoursekitError
from coursekit.train.checkpoint import ConfigMismatchError
from coursekit.train.config import TrainConfig
from coursekit.train.run import prepare_output, prepare_output_once, train_run
from coursekit.train.spec import RunSpec, load_spec
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
        "checkpoints", "config.yaml", "metrics.jsonl", "model", "summary.json",
    ]  # fmt: skip


def test_prepare_output_once_checks_before_writing(tmp_path) -> None:
    spec = RunSpec(train=TrainConfig(max_steps=3))
    assert prepare_output_once(tmp_path, spec, resume=False) == tmp_path
    assert (tmp_path / "config.yaml").is_file()
    with pytest.raises(CoursekitError, match="already holds a run"):
        prepare_output_once(tmp_path, spec, resume=False)
