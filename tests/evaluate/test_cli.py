"""``coursekit eval``: one-line errors before loading, a reference run, interrupts."""

from __future__ import annotations

import json

import pytest

from coursekit import cli
from coursekit.data.corpus import seed_dir
from tests.badinput import expect_cli_error, tree_digest


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        (["--split", "dev"], ["EvalSpec.split", "dev"]),
        (["--limit", "-1"], ["EvalSpec.limit", "-1"]),
        (["--runs", "0"], ["EvalSpec.runs"]),
        (["--k", "2"], ["Decoding.k", "do_sample"]),
        (["--temperature", "inf", "--sample"], ["Decoding.temperature"]),
        (["--mutants", "x"], ["--mutants", "x"]),
    ],
)
def test_bad_flags_are_one_line_and_create_nothing(flags, names, tmp_path, capsys):
    out = tmp_path / "eval"
    expect_cli_error(["eval", "--output", str(out), *flags], capsys, *names)
    assert tree_digest(out) == {}


@pytest.mark.slow
def test_reference_run_prints_the_funnel(tmp_path, capsys):
    argv = ["eval", "--reference", "--data", str(seed_dir()), "--limit", "1", "--mutants", "2",
            "--output", str(tmp_path)]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "stable" in printed and "1/1" in printed and "mutation score" in printed
    assert json.loads((tmp_path / "summary.json").read_text())["functions"] == 1


def test_an_interrupt_is_one_line_and_status_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_doctor", interrupted)
    assert cli.main(["doctor"]) == 130
    assert capsys.readouterr().err.strip() == "coursekit doctor: interrupted"
