"""The trainer's bad-input catalogue: each case exits with its documented status and one line.

Statuses (coursekit/train/failures.py): 2 refused input, nothing changed; 1 the run started
and failed, the newest checkpoint intact and named; 130 interrupted; 0 a finished run resumed
(nothing changed). Every case names the culprit and the fix on one stderr line without a
traceback (``expect_cli_error``) and, where a run folder exists, leaves every file as it was
(``tree_digest``). The audit's findings are marked "finding".

Runs use the tiny random model on the seed set (6 validation examples), 2 steps of batch 1:
a run folder takes about a second to train.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
import yaml

from coursekit.cli import main
from coursekit.data.corpus import seed_dir
from coursekit.errors import CoursekitError
from coursekit.recipes.finetune import finetune
from coursekit.train import RunSpec, TrainConfig
from coursekit.train import loop as loop_module
from coursekit.train import run as run_module
from coursekit.train.checkpoint import verify
from tests.badinput import expect_cli_error, tree_digest

TINY = ["--model", "tiny", "--data", str(seed_dir()), "--batch-size", "1", "--seq-len", "256"]
RUN = [*TINY, "--max-steps", "2", "--save-every", "1", "--eval-every", "0"]


@pytest.fixture(scope="module", autouse=True)
def quiet_loading():
    """transformers draws a "Loading weights" bar on stderr; an error must be the only line."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    yield
    logging.enable_progress_bar()


def train(out: Path, *flags: str) -> list[str]:
    return ["train", *RUN, *flags, "--output", str(out)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_dir) -> Path:
    """A finished 2-step run (rank 8, a checkpoint at each step)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(train(out)) == 0
    return out


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    shutil.copytree(finished, tmp_path / "run")
    return tmp_path / "run"


def expect_api_error(call, error: type[BaseException], *names: str) -> str:
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message, message
    for name in names:
        assert name in message, f"{name!r} is not named in: {message}"
    return message


# --- refused before anything is written (status 2) -------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "1e999"])
def test_a_non_finite_lr_is_refused(tmp_path, capsys, value) -> None:  # finding
    out = tmp_path / "run"
    expect_cli_error(train(out, "--lr", value), capsys, "TrainConfig.learning_rate", "finite")
    assert not out.exists()


@pytest.mark.parametrize(
    ("train_section", "names"),
    [
        ({"max_steps": 2.5}, ["config.yaml:4", "max_steps", "whole number", "not rounded"]),
        ({"learning_rate": float("inf")}, ["config.yaml:4", "learning_rate", "finite"]),
        ({"packing": 1}, ["config.yaml:4", "packing", "true or false"]),
        ({"micro_batch_size": True}, ["config.yaml:4", "micro_batch_size", "True"]),
        ({"lerning_rate": 1e-3}, ["config.yaml:4", "'lerning_rate'", "known fields"]),
        ({"on_nonfinite": "ignore"}, ["config.yaml:4", "on_nonfinite", "'stop', 'skip'"]),
    ],
)
def test_a_bad_config_file_names_its_line(tmp_path, capsys, train_section, names) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"model": "tiny", "method": "lora", "train": train_section}))
    out = tmp_path / "run"
    expect_cli_error(["train", "--config", str(path), "--output", str(out)], capsys, *names)
    assert not out.exists()


def test_missing_data_is_refused_before_config_yaml(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["train", "--model", "tiny", "--data", str(tmp_path / "nope"), "--output", str(out)]
    expect_cli_error(argv, capsys, "--data", "nope", "train/val/test.jsonl")
    assert not out.exists()


def test_an_output_that_is_a_file_is_refused(tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("keep")
    expect_cli_error(train(tmp_path / "file"), capsys, "is a file", "choose a folder")
    assert (tmp_path / "file").read_text() == "keep"


def test_a_folder_with_a_run_is_not_overwritten(run_copy, capsys) -> None:
    before = tree_digest(run_copy)
    expect_cli_error(train(run_copy), capsys, "already holds a run", "--resume")
    assert tree_digest(run_copy) == before


def test_run_files_without_config_yaml_are_not_overwritten(run_copy, capsys) -> None:
    (run_copy / "config.yaml").unlink()
    before = tree_digest(run_copy)
    expect_cli_error(train(run_copy), capsys, "checkpoints/step-2", "no config.yaml", "--output")
    assert tree_digest(run_copy) == before


# --- resume (status 2, or 0 for a finished run) -----------------------------------------------


def test_resume_without_a_run_is_refused(tmp_path, capsys) -> None:  # finding
    out = tmp_path / "run"
    out.mkdir()
    expect_cli_error(train(out, "--resume"), capsys, "no run to resume", "drop --resume")
    assert list(out.iterdir()) == []


def test_resume_with_config_yaml_deleted_names_it(run_copy, capsys) -> None:  # finding
    (run_copy / "config.yaml").unlink()
    before = tree_digest(run_copy)
    argv = ["train", "--output", str(run_copy), "--resume"]
    expect_cli_error(argv, capsys, str(run_copy / "config.yaml"), "is missing", "put the run's")
    assert tree_digest(run_copy) == before  # not rewritten with defaults


def test_resume_with_other_settings_lists_them(run_copy, capsys) -> None:
    before = tree_digest(run_copy)
    expect_cli_error(train(run_copy, "--resume", "--rank", "4"), capsys, "adapter.rank: 8 → 4")
    assert tree_digest(run_copy) == before


def test_resuming_a_finished_run_changes_nothing(run_copy, capsys) -> None:  # finding
    before = tree_digest(run_copy)
    assert main(["train", "--output", str(run_copy), "--resume"]) == 0
    captured = capsys.readouterr()
    assert "already finished at step 2: nothing to do" in captured.out and not captured.err
    assert tree_digest(run_copy) == before
    assert json.loads((run_copy / "summary.json").read_text())["val_loss"] > 0


@pytest.fixture(scope="module")
def rank4(tmp_path_factory, finished) -> Path:
    """A finished run like ``finished`` but with rank-4 adapters: its checkpoints do not fit."""
    out = tmp_path_factory.mktemp("rank4") / "run"
    assert main(train(out, "--rank", "4")) == 0
    return out


def unfinished(run: Path) -> Path:
    (run / "summary.json").unlink()  # as if stopped before the end: resume loads checkpoints
    shutil.rmtree(run / "adapter")
    return run


def test_a_newest_checkpoint_of_another_configuration_is_skipped(run_copy, rank4, capsys):
    # finding: this was a RuntimeError traceback (a size mismatch while copying weights)
    shutil.copytree(
        rank4 / "checkpoints" / "step-2", unfinished(run_copy) / "checkpoints" / "step-3"
    )
    capsys.readouterr()
    assert main(train(run_copy, "--resume")) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning" in err[0], err
    assert "step-3 does not fit this run" in err[0] and "falling back" in err[0]
    assert json.loads((run_copy / "summary.json").read_text())["resumed_from"] == "step-2"


def test_checkpoints_of_another_configuration_are_refused(run_copy, rank4, capsys) -> None:
    shutil.rmtree(unfinished(run_copy) / "checkpoints")
    shutil.copytree(rank4 / "checkpoints", run_copy / "checkpoints")
    before = tree_digest(run_copy)
    line = expect_cli_error(train(run_copy, "--resume"), capsys, "step-2:", "lora_a is [4, 64]")
    assert "fits this run" in line and "choose a new --output" in line
    assert tree_digest(run_copy) == before


# --- failed starts leave the folder as they found it ------------------------------------------


def test_a_start_that_fails_while_loading_can_simply_be_rerun(tmp_path, capsys) -> None:
    # finding: config.yaml was written, then loading failed and the folder was locked
    out = tmp_path / "run"
    argv = ["train", *RUN, "--output", str(out)]
    short = [*argv[:-2], "--seq-len", "8", *argv[-2:]]
    expect_cli_error(short, capsys, "seq_len=8", "raise --seq-len")
    assert not out.exists()
    out.mkdir()  # an empty folder given by the user stays, empty
    expect_cli_error(short, capsys, "raise --seq-len")
    assert out.is_dir() and list(out.iterdir()) == []
    assert main(argv) == 0


# --- the run started and stopped (status 1, 130) ----------------------------------------------


def test_a_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    argv = train(out, "--targets", "all-linear", "--lr", "1e30", "--max-steps", "3")
    line = expect_cli_error(argv, capsys, "step 2", "non-finite", "--on-nonfinite skip", status=1)
    assert str(out / "checkpoints" / "step-1") in line
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-1"]
    assert verify(out / "checkpoints" / "step-1") is None
    assert not (out / "adapter").exists() and not (out / "summary.json").exists()


def test_on_nonfinite_skip_counts_the_skipped_steps(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    argv = train(out, "--targets", "all-linear", "--lr", "1e30", "--max-steps", "3",
                 "--on-nonfinite", "skip")  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [row for row in rows if "lr" in row]
    assert [row["skipped_steps"] for row in steps] == [0, 1, 2]
    assert "loss" in steps[0] and "loss" not in steps[1]
    assert json.loads((out / "summary.json").read_text())["skipped_steps"] == 2


def test_a_full_disk_at_the_final_save_keeps_every_step(tmp_path, capsys, monkeypatch) -> None:
    # finding: an OSError traceback, and every trained step lost
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "run"
    argv = train(out, "--save-every", "0")
    monkeypatch.setattr(run_module, "_save_final", full_disk)
    kept = str(out / "checkpoints" / "step-2")
    expect_cli_error(argv, capsys, "No space left", kept, "--resume", status=1)
    assert verify(Path(kept)) is None and not (out / "summary.json").exists()
    monkeypatch.undo()
    assert main([*argv, "--resume"]) == 0  # the disk has room again: the result is written
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["val_loss"] > 0
    assert summary["resumed_from"] == "step-2" and (out / "adapter").is_dir()


def test_an_interrupt_says_how_to_resume(tmp_path, capsys, monkeypatch) -> None:
    # finding: SIGINT printed an 80-line traceback (the real signal: tests/train/test_signals.py)
    original = loop_module.Trainer.train_step

    def interrupted(self):
        if self.step == 1:
            raise KeyboardInterrupt
        return original(self)

    out = tmp_path / "run"
    monkeypatch.setattr(loop_module.Trainer, "train_step", interrupted)
    hint = f"coursekit train --output {out} --resume"
    expect_cli_error(train(out), capsys, "interrupted", "after step 1 of 2", hint, status=130)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-1"]


def test_an_empty_validation_split_warns_once_naming_the_data(tmp_path, capsys) -> None:
    data = tmp_path / "data"  # finding: val_loss None without a word
    shutil.copytree(seed_dir(), data)
    (data / "val.jsonl").write_text("")
    argv = ["train", *RUN, "--data", str(data), "--output", str(tmp_path / "run")]
    assert main(argv) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning" in err[0] and str(data) in err[0], err
    assert "validation split is empty" in err[0] and "val.jsonl" in err[0]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["val_loss"] is None


# --- lr-find ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        (["--end-lr", "inf"], ["end_lr", "finite"]),
        (["--start-lr", "0"], ["start_lr", "must be > 0"]),
        (["--start-lr", "1", "--end-lr", "0.1"], ["end_lr", "> start_lr=1.0"]),
        (["--num-steps", "1"], ["num_steps", ">= 2"]),
        (["--lr", "nan"], ["TrainConfig.learning_rate", "finite"]),
    ],
)
def test_lr_find_refuses_bad_sweeps_before_loading(tmp_path, capsys, flags, names) -> None:
    out = tmp_path / "lr"
    expect_cli_error(["lr-find", *TINY, *flags, "--output", str(out)], capsys, *names)
    assert not out.exists()


def test_lr_find_into_a_file_is_refused(tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("keep")
    argv = ["lr-find", *TINY, "--output", str(tmp_path / "file")]
    expect_cli_error(argv, capsys, "is a file", "choose a folder")
    assert (tmp_path / "file").read_text() == "keep"


# --- the Python API ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"learning_rate": float("inf")}, ["TrainConfig.learning_rate", "finite"]),
        ({"max_steps": True}, ["TrainConfig.max_steps", "True"]),
        ({"max_steps": 2.5}, ["TrainConfig.max_steps", "2.5"]),
        ({"on_nonfinite": "ignore"}, ["TrainConfig.on_nonfinite", "'stop', 'skip'"]),
        ({"max_steps": None}, ["exactly one of max_steps and epochs"]),
    ],
)
def test_train_config_refuses(changes, names) -> None:
    expect_api_error(lambda: TrainConfig(**changes), ValueError, *names)


def test_run_spec_refuses_an_unknown_method() -> None:
    expect_api_error(lambda: RunSpec(method="prefix"), ValueError, "RunSpec.method", "'lora'")


def test_finetune_resume_without_a_run_is_refused(tmp_path) -> None:
    spec = RunSpec(model="tiny", data=str(seed_dir()), train=TrainConfig(max_steps=1))
    call = lambda: finetune(spec, tmp_path / "run", resume=True)  # noqa: E731
    expect_api_error(call, CoursekitError, "no run to resume", "drop --resume")
    assert not (tmp_path / "run").exists()
