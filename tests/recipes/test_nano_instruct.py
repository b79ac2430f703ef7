"""The nano instruct stage: a full fine-tune on the training pairs, written as a model directory."""

from __future__ import annotations

import json

import pytest

from coursekit.cli import main
from coursekit.data.corpus import load_splits, seed_dir
from coursekit.errors import CoursekitError
from coursekit.loading import load_model
from coursekit.recipes.nano_instruct import InstructConfig, instruct_nano, set_decoding


def test_instruct_writes_a_loadable_model_that_remembers_every_crate_it_saw(tiny_dir, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    for path in tiny_dir.iterdir():
        (base / path.name).write_bytes(path.read_bytes())
    (base / "build.json").write_text(json.dumps({"pretrained_crates": [["older", "1.0"]]}))
    config = InstructConfig(steps=2, warmup_steps=0, micro_batch_size=2, seq_len=256)
    report = instruct_nano(base, seed_dir(), tmp_path / "out", config=config, log=lambda _: None)
    generation = json.loads((tmp_path / "out" / "generation_config.json").read_text())
    assert generation["no_repeat_ngram_size"] == 10  # the decoding default chosen on val
    record = json.loads((tmp_path / "out" / "build.json").read_text())
    assert record == json.loads(json.dumps(report)) and record["summary"]["steps"] == 2
    train = {s.crate for s in load_splits(seed_dir())["train"]}
    assert {c for c, _ in record["pretrained_crates"]} == train | {"older"}
    card = (tmp_path / "out" / "README.md").read_text()
    assert "fine-tuned for 2 steps" in card and "`no_repeat_ngram_size: 10`" in card
    assert f"lists the {len(record['pretrained_crates']):,} crates" in card
    tuned, original = load_model(tmp_path / "out"), load_model(base)
    changed = [
        name
        for (name, a), (_, b) in zip(
            tuned.named_parameters(), original.named_parameters(), strict=True
        )
        if not a.equal(b)
    ]
    assert len(changed) > 10  # every weight is trained, not an adapter
    weights = (tmp_path / "out" / "model.safetensors").read_bytes()
    set_decoding(tmp_path / "out", {"split": "val", "parses": {"4": 3}}, no_repeat_ngram_size=4)
    generation = json.loads((tmp_path / "out" / "generation_config.json").read_text())
    record = json.loads((tmp_path / "out" / "build.json").read_text())
    assert (
        generation["no_repeat_ngram_size"] == 4 and record["config"]["no_repeat_ngram_size"] == 10
    )
    assert record["decoding"] == {"settings": {"no_repeat_ngram_size": 4},
                                  "replaces": {"no_repeat_ngram_size": 10},
                                  "split": "val", "parses": {"4": 3}}  # fmt: skip
    card = (tmp_path / "out" / "README.md").read_text()
    assert "`no_repeat_ngram_size: 4`, the decoding chosen on the validation split after" in card
    assert "`no_repeat_ngram_size: 10`" not in card
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == weights
    with pytest.raises(CoursekitError, match=r"no instruct stage's build\.json"):
        set_decoding(base, {}, no_repeat_ngram_size=4)


def test_cli_runs_the_stage(tiny_dir, tmp_path, capsys):
    out = tmp_path / "m"
    args = ["nano", "instruct", "--base", str(tiny_dir), "--corpus", str(seed_dir())]
    args += ["--out", str(out), "--steps", "1", "--warmup-steps", "0", "--seq-len", "128"]
    assert main(args) == 0
    assert (
        out / "model.safetensors"
    ).is_file() and "nano instruct: wrote" in capsys.readouterr().out
    assert main(args) == 2  # the work folder holds a run: --resume or remove it
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("field", "value"),
    [("steps", 0), ("micro_batch_size", 0), ("learning_rate", 0.0), ("warmup_steps", 5),
     ("seq_len", 8), ("eval_every", -1), ("precision", "fp16")],
)  # fmt: skip
def test_bad_settings_name_the_field(field, value):
    changes = {"steps": 5, "warmup_steps": 0, field: value}
    with pytest.raises(ValueError, match=f"InstructConfig.{field} "):
        InstructConfig(**changes)
