"""Tests of the ``coursekit corpus`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coursekit.cli import main
from coursekit.data.corpus import seed_dir

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"


def test_validate_ok_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["corpus", "validate", str(seed_dir() / "val.jsonl")]) == 0
    assert "6 records OK" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    assert main(["corpus", "validate", str(bad)]) == 2
    assert f"{bad}:1: field" in capsys.readouterr().err


def test_stats_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["corpus", "stats", str(seed_dir())]) == 0
    assert "verified_val_test: 12 (target 300" in capsys.readouterr().out
    assert main(["corpus", "stats", str(seed_dir()), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["val"]["samples"] == 6


def test_build_local_crates_with_datasheet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mydata"
    code = main(
        [
            "corpus",
            "build",
            str(FIXTURES / "mini"),
            "--out",
            str(out),
            "--verify",
            "none",
            "--no-tokens",
            "--val-fraction",
            "0",
            "--test-fraction",
            "0",
            "--datasheet",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["samples"]["train"] == 7
    assert (out / "README.md").is_file()
    rebuilt = tmp_path / "again"
    code = main(
        [
            "corpus",
            "build",
            "--manifest",
            str(out / "manifest.txt"),
            "--out",
            str(rebuilt),
            "--verify",
            "none",
            "--no-tokens",
            "--val-fraction",
            "0",
            "--test-fraction",
            "0",
        ]
    )
    assert code == 0
    assert (rebuilt / "train.jsonl.gz").read_bytes() == (out / "train.jsonl.gz").read_bytes()
    capsys.readouterr()
    assert main(["corpus", "pretrain-text", str(out), "--out", str(tmp_path / "p.rs")]) == 0
    assert json.loads(capsys.readouterr().out)["files"] == 2


def test_build_needs_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["corpus", "build", "--out", str(tmp_path)]) == 2
    assert "needs SRC directories or --manifest" in capsys.readouterr().err
    assert main(["corpus", "build", str(FIXTURES), "--out", str(tmp_path), "--verify", "x"]) == 2
    assert "BuildConfig.verify must be one of" in capsys.readouterr().err


def test_fetch_reports_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["corpus", "fetch", "--debian", "itoa", "--cache", str(tmp_path)]) == 2
    assert "apt-get: not found" in capsys.readouterr().err


def test_fetch_prints_roots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from coursekit.corpus import sources

    monkeypatch.setattr(sources, "fetch_debian", lambda crates, **_: [Path("/x/y")])
    assert main(["corpus", "fetch", "--debian", "itoa"]) == 0
    assert capsys.readouterr().out == "/x/y\n"
