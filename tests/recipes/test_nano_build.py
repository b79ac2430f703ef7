"""The nano build recipe end to end on the fixture crates: resume, the card and the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from coursekit.cli import main
from coursekit.errors import CoursekitError
from coursekit.recipes.nano_build import build_nano
from tests.nano.conftest import MICRO


def test_build_writes_a_loadable_checkpoint_with_card(micro_build: tuple) -> None:
    out, report, _, lines = micro_build
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "README.md", "loss.png", "build.json"} <= names  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert type(model).__name__ == "Qwen2ForCausalLM" and len(tokenizer) == MICRO.vocab_size
    assert sum(p.numel() for p in model.parameters()) == MICRO.parameter_count()
    assert json.loads((out / "build.json").read_text()) == json.loads(json.dumps(report))
    assert report["pretrain"]["steps"] == MICRO.steps
    assert report["data"]["licenses"] == {"MIT OR Apache-2.0": 1}
    assert set(report["seconds"]) == {
        "text",
        "tokenizer",
        "encode",
        "pretrain",
        "evaluate",
        "total",
    }
    assert lines[0] == "nano build: text..." and lines[-1].startswith("nano build: wrote ")


def test_card_reports_the_measured_numbers(micro_build: tuple) -> None:
    out, report, _, _ = micro_build
    card = (out / "README.md").read_text()
    evaluation = report["evaluation"]
    row = f"| Qwen2.5-Coder-nano-base | {evaluation['perplexity']:.2f} | "
    assert row + f"{evaluation['bits_per_byte']:.3f} |" in card
    assert f"{evaluation['perplexity_unigram']:.2f}" in card
    assert f"{report['pretrain']['parameters']:,}" in card
    assert "| MIT OR Apache-2.0 | 1 |" in card and "![loss curve](loss.png)" in card
    assert (out / "loss.png").read_bytes()[1:4] == b"PNG"


def test_training_moved_the_weights_and_the_loss(micro_build: tuple) -> None:
    out, report, work, _ = micro_build
    start = AutoModelForCausalLM.from_pretrained(work / "init").state_dict()
    end = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert any(not torch.equal(start[k], end[k]) for k in start)
    evaluation = report["evaluation"]
    assert evaluation["perplexity"] < evaluation["perplexity_initial"]


def test_rebuild_needs_resume_and_resume_reuses_stages(
    micro_build: tuple, fixture_corpus: Path
) -> None:
    out, report, _work, _ = micro_build
    with pytest.raises(CoursekitError, match=r"holds an earlier build; pass --resume"):
        build_nano(fixture_corpus, out, config=MICRO, log=lambda _: None)
    other = dataclasses.replace(MICRO, steps=5, vocab_size=320)
    with pytest.raises(
        CoursekitError, match=r"other settings \(steps: 4 → 5, vocab_size: 300 → 320\)"
    ):
        build_nano(fixture_corpus, out, config=other, resume=True, log=lambda _: None)
    again = build_nano(fixture_corpus, out, config=MICRO, resume=True, log=lambda _: None)
    assert again["text"] == again["tokenizer"] == {"reused": True}
    assert again["evaluation"]["perplexity"] == report["evaluation"]["perplexity"]
    assert (
        again["pretrain"]["resumed_from"] == "step-4" and report["pretrain"]["resumed_from"] is None
    )
    assert "It resumed the pretraining from step-4" in (out / "README.md").read_text()


def test_build_is_reproducible(micro_build: tuple, fixture_corpus: Path, tmp_path: Path) -> None:
    out, _, _, _ = micro_build
    build_nano(fixture_corpus, tmp_path / "nano", config=MICRO, log=lambda _: None)
    assert (tmp_path / "nano" / "model.safetensors").read_bytes() == (
        out / "model.safetensors"
    ).read_bytes()


def test_too_little_text_is_a_clear_error(fixture_corpus: Path, tmp_path: Path) -> None:
    config = dataclasses.replace(MICRO, seq_len=8192, max_position_embeddings=8192)
    with pytest.raises(CoursekitError, match=r"rows of seq_len=8192; lower seq_len or add crates"):
        build_nano(fixture_corpus, tmp_path / "n", config=config, log=lambda _: None)


def test_cli_build_and_info(fixture_corpus: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m"
    args = ["nano", "build", "--corpus", str(fixture_corpus), "--out", str(out), "--steps", "2",
            "--hidden-size", "16", "--num-hidden-layers", "1", "--vocab-size", "300",
            "--num-attention-heads", "2", "--intermediate-size", "32",
            "--seq-len", "16", "--micro-batch-size", "2", "--max-position-embeddings", "512",
            "--instruct-steps", "2"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "perplexity" in printed and "both stages in" in printed
    assert main(["nano", "info", "--model", str(tmp_path / "m-instruct")]) == 0
    tuned = json.loads(capsys.readouterr().out)
    assert tuned["stage"] == "instruct" and tuned["summary"]["steps"] == 2
    assert main(["nano", "info", "--model", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pretrain"]["steps"] == 2 and "completions" not in info["evaluation"]
    assert main(["nano", "info", "--model", str(tmp_path)]) == 2
    assert "build.json does not exist" in capsys.readouterr().err


def test_compare_agrees_with_the_builds_own_bits_per_byte(micro_build: tuple, capsys) -> None:
    """Two code paths (the build's measure and `nano compare`) on the same rows agree."""
    model, report, work, _ = micro_build
    args = ["nano", "compare", str(model), "--text", str(work / "heldout.rs"),
            "--rows", str(MICRO.heldout_rows), "--seq-len", str(MICRO.seq_len)]  # fmt: skip
    assert main(args) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    bpb = float(line.split(", ")[1].split()[0])
    assert bpb == pytest.approx(report["evaluation"]["bits_per_byte"], rel=1e-3)


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["nano", "compare", "nano", "--text", "{tmp}/missing.rs"], "missing.rs is not a file"),
        (["nano", "sweep", "--corpus", "{tmp}", "--out", "{tmp}/out", "--text", "{tmp}"],
         "pretrain.rs is not a file"),
    ],
)  # fmt: skip
def test_a_missing_text_is_one_line_before_any_work(tmp_path: Path, capsys, args, culprit) -> None:
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert culprit in err and "--text" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
