from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coursekit.cli import build_parser, main
from tests.badinput import expect_cli_error, tree_digest


def test_doctor_json_reports_every_check(capsys):
    code = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)
    names = [check["name"] for check in report["checks"]]
    assert {"Python", "torch", "rustc", "bundled models"} <= set(names)
    assert code == (1 if report["status"] == "FAIL" else 0)


def test_doctor_table(capsys):
    main(["doctor"])
    assert "status" in capsys.readouterr().out.splitlines()[0]


def test_tiny_and_tokenizer_commands_write_loadable_directories(tmp_path, capsys):
    assert main(["tiny", str(tmp_path / "m"), "--seed", "1"]) == 0
    assert (tmp_path / "m" / "config.json").is_file()
    assert (tmp_path / "m" / "tokenizer.json").is_file()
    assert main(["tokenizer", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / "tokenizer_config.json").is_file()


def test_baseline_command_writes_a_run_directory(tmp_path, capsys, tiny_dir):
    args = ["baseline", "--steps", "2", "--batch-size", "2", "--eval-every", "1"]
    args += ["--seq-len", "256", "--generate", "0", "--output", str(tmp_path / "run")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "step    2:" in out and "val_loss_end" in out
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]["steps"] == 2


def test_bad_input_is_one_line_on_stderr_and_exit_2(tmp_path, capsys):
    assert main(["baseline", "--rank", "0", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("coursekit baseline: error: AdapterConfig.rank must be >= 1")


def test_unknown_command_is_refused():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fly"])


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["fly"], "coursekit"),
        (["plan", "--vram", "8"], "coursekit plan"),
        (["memory", "estimate", "--rank", "x"], "coursekit memory estimate"),
        (["corpus", "validate"], "coursekit corpus validate"),
        (["train", "--output", "x", "--method", "ia3"], "coursekit train"),
    ],
)
def test_argparse_errors_are_one_line_with_where_help_is(argv, prog, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage:" not in err
    assert err.startswith(f"{prog}: error: ") and err.endswith(f"; see {prog} --help\n")


def test_errors_name_the_innermost_command(capsys):
    assert main(["memory", "estimate", "--rank", "0"]) == 2
    assert capsys.readouterr().err.startswith("coursekit memory estimate: error: ")


def test_help_still_exits_0(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["plan", "--help"])
    assert stop.value.code == 0 and "--vram" in capsys.readouterr().out


def test_tiny_replaces_its_files_and_keeps_others(tmp_path, capsys):
    out = tmp_path / "m"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "config.json").write_text("{}")
    assert main(["tiny", str(out), "--seed", "1"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 2
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left


def test_tiny_that_fails_mid_write_leaves_the_old_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills during save_pretrained (simulated): the old files stay whole."""
    from transformers import Qwen2ForCausalLM

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"old": true}')
    (model / "model.safetensors").write_bytes(b"old weights")

    def disk_full(self: Any, directory: Any, **kwargs: Any) -> None:
        (Path(directory) / "model.safetensors").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Qwen2ForCausalLM, "save_pretrained", disk_full)
    before = tree_digest(tmp_path)
    expect_cli_error(["tiny", str(model)], capsys, f"{model}: cannot write", "No space left")
    assert tree_digest(tmp_path) == before
