from __future__ import annotations

import json

import pytest

from coursekit.cli import build_parser, main


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
