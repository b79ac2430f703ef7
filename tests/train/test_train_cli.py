"""``coursekit train`` and ``coursekit lr-find`` (tests/test_cli.py owns the name test_cli)."""

from __future__ import annotations

import json

import pytest
import yaml

from coursekit.cli import build_parser, main
from coursekit.recipes import finetune as finetune_module
from coursekit.recipes import lr_find as lr_find_module
from coursekit.train.cli import spec_from_args
from coursekit.train.spec import RunSpec


@pytest.fixture
def no_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("loaded a model before validating the input")

    monkeypatch.setattr(finetune_module, "load_for_training", refuse)
    monkeypatch.setattr(lr_find_module, "load_for_training", refuse)


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_flags_override_the_config_file(tmp_path) -> None:
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump({"model": "nano", "train": {"max_steps": 7, "seed": 3}}))
    args = parse("train", "--config", str(path), "--seed", "5", "--targets", "q_proj,k_proj",
                 "--no-packing", "--output", str(tmp_path / "run"))  # fmt: skip
    spec = spec_from_args(args)
    assert (spec.model, spec.train.max_steps, spec.train.seed) == ("nano", 7, 5)
    assert spec.adapter.targets == ("q_proj", "k_proj") and spec.train.packing is False


def test_on_nonfinite_is_a_flag_and_stop_by_default(tmp_path) -> None:
    out = str(tmp_path / "run")
    assert spec_from_args(parse("train", "--output", out)).train.on_nonfinite == "stop"
    skip = parse("train", "--on-nonfinite", "skip", "--output", out)
    assert spec_from_args(skip).train.on_nonfinite == "skip"


def test_resume_starts_from_the_saved_config(tmp_path) -> None:
    saved = RunSpec(model="nano")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved.to_dict()))
    assert spec_from_args(parse("train", "--resume", "--output", str(tmp_path))) == saved


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rank", "0"], "AdapterConfig.rank must be >= 1"),
        (["--lr", "-1"], "TrainConfig.learning_rate must be > 0"),
        (["--batch-size", "0"], "TrainConfig.micro_batch_size"),
        (["--curriculum", "root"], "pass --no-packing"),
    ],
)
def test_bad_input_fails_before_loading(tmp_path, capsys, no_loading, flags, message) -> None:
    assert main(["train", *flags, "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_config_mismatch_on_resume_lists_the_fields(tmp_path, capsys, no_loading) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(RunSpec().to_dict()))
    assert main(["train", "--resume", "--rank", "4", "--output", str(tmp_path)]) == 2
    assert "adapter.rank: 8 → 4" in capsys.readouterr().err


@pytest.mark.heavy
def test_train_end_to_end_with_the_real_tokenizer_and_seed_data(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["train", "--model", "tiny", "--max-steps", "2", "--batch-size", "2", "--seq-len",
            "256", "--save-every", "1", "--rank", "4", "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "val_loss" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["val_loss"] > 0
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-1", "step-2"]
    assert main([*argv, "--resume"]) == 0  # already finished: nothing to do
    assert "already finished at step 2" in capsys.readouterr().out


def test_lr_find_writes_suggestions_and_a_plot(tmp_path, capsys) -> None:
    out = tmp_path / "lr"
    argv = ["lr-find", "--model", "tiny", "--num-steps", "6", "--seq-len", "256",
            "--batch-size", "1", "--output", str(out)]  # fmt: skip
    assert main(argv) == 0
    result = json.loads((out / "lr_find.json").read_text())
    assert len(result["lrs"]) <= 6 and set(result["suggestions"]) >= {"valley"}
    assert (out / "lr_find.png").stat().st_size > 0
    assert "valley" in capsys.readouterr().out


@pytest.mark.heavy
def test_full_fine_tune_with_a_curriculum_end_to_end(tmp_path) -> None:
    argv = ["train", "--model", "tiny", "--method", "full", "--curriculum", "linear",
            "--no-packing", "--max-steps", "1", "--batch-size", "1", "--seq-len", "256",
            "--output", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 0
    assert (tmp_path / "run" / "model" / "config.json").is_file()


def test_a_full_fine_tune_of_nano_saves_its_own_tokenizer(tmp_path) -> None:
    from coursekit.loading import load_model, load_tokenizer

    argv = ["train", "--model", "nano", "--method", "full", "--max-steps", "1",
            "--batch-size", "1", "--seq-len", "256", "--output", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 0
    saved = tmp_path / "run" / "model"
    assert len(load_tokenizer(saved)) == len(load_tokenizer("nano")) == 8192
    assert load_model(saved).config.vocab_size == 8192


def test_no_example_fitting_seq_len_is_a_clear_error(tmp_path, capsys) -> None:
    argv = ["train", "--model", "tiny", "--seq-len", "8", "--output", str(tmp_path / "run")]
    assert main(argv) == 2
    assert "raise --seq-len" in capsys.readouterr().err
