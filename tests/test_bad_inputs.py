"""The bad-input catalogue: what a user can get wrong, and the one line they get back.

House rule: bad input gives exit status 2, exactly one line on stderr naming the culprit
(``file:line`` where there is a file, the field or flag, the value) and the fix, no
traceback, and nothing already saved changed. Each CLI case runs ``coursekit.cli.main``
in-process (``tests.badinput.expect_cli_error``) in its own directory, which holds an
earlier run's folder where the command takes ``--output``; ``tree_digest`` checks that no
file there was changed, added or removed.

A case is a row: its id, the command line and the texts its stderr line must contain. In
both, ``{name}`` is a file or directory that ``FILES[name]`` makes in the case's directory
(only those a row names are made). Python-API cases are rows of a call and the texts its
error must contain.

Fast by construction: no case loads a model or trains. The training recipes are replaced by
a guard that fails the test, so a case whose error came too late cannot start a run.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
import string
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coursekit.adapters import AdapterConfig, AdapterRankWarning, apply
from coursekit.cli import build_parser
from coursekit.data import corpus
from coursekit.data.corpus import load_corpus, load_splits, seed_dir
from coursekit.errors import CoursekitError, CoursekitWarning
from coursekit.loading import load_model, resolve_model
from coursekit.memory.estimate import GIB
from coursekit.memory.planner import model_config_from, plan
from coursekit.tiny import tiny_qwen2_config
from coursekit.train.cli import spec_from_args
from coursekit.train.config import TrainConfig
from coursekit.train.spec import RunSpec, load_spec
from tests.badinput import expect_cli_error, tree_digest


@pytest.fixture(autouse=True)
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail, rather than train, if a case gets past validation into a training recipe."""

    def reached(*args: Any, **kwargs: Any) -> None:
        pytest.fail("bad input reached a training recipe: it must be refused before loading")

    monkeypatch.setattr("coursekit.recipes.finetune.finetune", reached)
    monkeypatch.setattr("coursekit.recipes.lr_find.lr_find", reached)
    monkeypatch.setattr("coursekit.recipes.phase1_baseline.run_baseline", reached)


# --- the files the cases point at -------------------------------------------------------------


def record(**changes: Any) -> dict[str, Any]:
    """A valid corpus record, with ``changes``."""
    base = {"id": "bad/one", "crate": "demo", "version": "1.0.0", "license": "MIT"}
    base |= {"path": "src/lib.rs", "function": "pub fn one() -> i32 { 1 }", "context": ""}
    base |= {"tests": "#[cfg(test)]\nmod tests {}", "property_tests": None, "verified": False}
    return base | {"features": {}} | changes


def jsonl(path: Path, *lines: Any) -> Path:
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


def corpus_copy(root: Path, *, bad_val: bool = False, drop: str = "") -> Path:
    """The seed corpus; ``bad_val``: val.jsonl's line 2 lacks 'tests'; ``drop``: a file."""
    target = root / "corpus"
    shutil.copytree(seed_dir(), target)
    if drop:
        (target / drop).unlink()
    if bad_val:
        lines = (target / "val.jsonl").read_text(encoding="utf-8").splitlines()
        second = json.loads(lines[1])
        del second["tests"]
        jsonl(target / "val.jsonl", *lines[:1], second, *lines[2:])
    return target


def old_run(root: Path, saved_config: str = "method: lora\n") -> Path:
    """An earlier run's folder (its config.yaml is ``saved_config``), to be left as it was."""
    run = root / "run"
    (run / "train").mkdir(parents=True)
    (run / "config.yaml").write_text(saved_config)
    (run / "metrics.json").write_text('{"val_loss_end": 1.5}\n')
    return run


def model_dir(root: Path, config: str | None = None) -> Path:
    """The tiny model's config (or ``config``) and its model.safetensors cut to half."""
    source, model = Path(resolve_model("tiny")), root / "model"
    model.mkdir()
    if config is not None:
        (model / "config.json").write_text(config)
        return model
    shutil.copy(source / "config.json", model / "config.json")
    data = (source / "model.safetensors").read_bytes()
    (model / "model.safetensors").write_bytes(data[: len(data) // 2])
    return model


def truncated_gzip(root: Path) -> Path:
    data = "".join(json.dumps(record(id=f"bad/{i}")) + "\n" for i in range(99)).encode()
    (root / "c.jsonl.gz").write_bytes(gzip.compress(data)[:300])
    return root / "c.jsonl.gz"


def a_file(root: Path) -> Path:
    (root / "notes.txt").write_text("a file, not a directory\n")
    return root / "notes.txt"


def huge_line(root: Path) -> Path:
    long = record(id="bad/huge", function="x" * corpus.MAX_LINE_BYTES)
    return jsonl(root / "c.jsonl", record(), long)


FILES: dict[str, Callable[[Path], Path]] = {
    "tmp": lambda tmp: tmp,
    "run": old_run,
    "resumable": lambda tmp: old_run(tmp, "adapter:\n  rank: eight\n"),
    "corpus": corpus_copy,
    "bad_corpus": lambda tmp: corpus_copy(tmp, bad_val=True),
    "no_val": lambda tmp: corpus_copy(tmp, drop="val.jsonl"),
    "truncated_model": model_dir,
    "broken_config": lambda tmp: model_dir(tmp, config='{"model_type": "qwen2", '),
    "file": a_file,
    "bad_json": lambda tmp: jsonl(tmp / "c.jsonl", record(), "", '{"id": '),
    "bad_field": lambda tmp: jsonl(tmp / "c.jsonl", record(verified="yes")),
    "deep_json": lambda tmp: jsonl(tmp / "c.jsonl", "[" * 200_000 + "]" * 200_000),
    "huge_line": huge_line,
    "bad_gzip": truncated_gzip,
}

# --- the CLI: (id, command line, texts the stderr line contains) -----------------------------

CAP = f"longer than {corpus.MAX_LINE_BYTES} bytes"
# fmt: off
CLI_CASES = [
    # argparse: one line naming the flag and value, and where help is
    ("no-command", "", ["coursekit: error:", "command", "; see coursekit --help"]),
    ("unknown-command", "fly", ["invalid choice: 'fly'", "; see coursekit --help"]),
    ("baseline-steps-2.5", "baseline --steps 2.5 --output {run}",
     ["--steps", "'2.5'", "see coursekit baseline --help"]),
    ("estimate-method-ia3", "memory estimate --method ia3",
     ["coursekit memory estimate: error:", "--method", "'ia3'"]),
    ("train-max-steps-2.5", "train --max-steps 2.5 --output {run}",
     ["coursekit train: error:", "--max-steps", "'2.5'"]),
    # baseline: refused before the earlier run in --output is replaced, before any loading
    ("baseline-rank-0", "baseline --rank 0 --output {run}",
     ["AdapterConfig.rank", "(got 0)", "use an int such as 8"]),
    ("baseline-lr-inf", "baseline --lr inf --output {run}",
     ["learning_rate", "(got inf)", "finite"]),
    ("baseline-data-missing", "baseline --data {tmp}/none --output {run}",
     ["{tmp}/none: not a directory", "train/val/test"]),
    ("baseline-data-bad-record", "baseline --data {bad_corpus} --output {run}",
     ["{bad_corpus}/val.jsonl:2:", "'tests' is missing", "add it"]),
    ("baseline-model-truncated",
     "baseline --model {truncated_model} --data {corpus} --output {run}",
     ["{truncated_model}/model.safetensors: truncated", "download the model again"]),
    # plan
    ("plan-vram-inf", "plan --model tiny --vram inf",
     ["coursekit plan: error:", "--vram", "(got inf)", "e.g. --vram 8"]),
    ("plan-vram-nan", "plan --model tiny --vram nan", ["--vram", "(got nan)", "e.g. --vram 8"]),
    ("plan-vram-0", "plan --model tiny --vram 0", ["--vram", "(got 0.0)", "e.g. --vram 8"]),
    ("plan-vram-negative", "plan --model tiny --vram -8",
     ["--vram", "(got -8.0)", "e.g. --vram 8"]),
    ("plan-broken-config-json", "plan --vram 8 --model {broken_config}",
     ["{broken_config}/config.json: not a valid JSON", "restore the file"]),
    ("plan-unknown-model", "plan --vram 8 --model no-such-model",
     ["'no-such-model'", "neither a preset nor a directory", "qwen2.5-coder-0.5b"]),
    ("plan-unknown-method", "plan --vram 8 --model tiny --methods full,ia3",
     ["plan methods", "'ia3'", "qlora"]),
    # memory estimate / measure: refused before any model is built
    ("estimate-rank-0", "memory estimate --rank 0",
     ["coursekit memory estimate: error:", "AdapterConfig.rank", "(got 0)"]),
    ("estimate-targets-bogus", "memory estimate --targets bogus",
     ["AdapterConfig.targets", "'bogus'", "pass a preset or names"]),
    ("estimate-alpha-nan", "memory estimate --alpha nan",
     ["AdapterConfig.alpha", "(got nan)", "2 * rank"]),
    ("estimate-seq-len-4", "memory estimate --seq-len 4",
     ["TrainConfig.seq_len", ">= 8", "(got 4)"]),
    ("estimate-broken-config-json", "memory estimate --model {broken_config}",
     ["{broken_config}/config.json: not a valid JSON"]),
    ("measure-steps-0", "memory measure --model tiny --steps 0",
     ["coursekit memory measure: error:", "steps", "(got 0)", "use 2"]),
    ("measure-rank-0", "memory measure --rank 0",
     ["coursekit memory measure: error:", "AdapterConfig.rank", "(got 0)"]),
    # corpus
    ("corpus-invalid-json", "corpus validate {bad_json}",
     ["{bad_json}:3:", "invalid JSON", "one JSON object"]),
    ("corpus-bad-field", "corpus validate {bad_field}",
     ["{bad_field}:1:", "'verified'", "'yes'", "true or false"]),
    ("corpus-json-200k-deep", "corpus validate {deep_json}",
     ["{deep_json}:1:", "nested too deeply"]),
    ("corpus-line-over-1-MiB", "corpus validate {huge_line}",
     ["{huge_line}:2:", CAP, "drop or split"]),
    ("corpus-truncated-gzip", "corpus validate {bad_gzip}",
     ["{bad_gzip}:", "truncated or corrupt gzip", "regenerate"]),
    ("corpus-file-missing", "corpus validate {tmp}/none.jsonl",
     ["{tmp}/none.jsonl: no such corpus file"]),
    ("corpus-stats-split-missing", "corpus stats {no_val}",
     ["{no_val}: no val.jsonl or val.jsonl.gz", "add the split"]),
    # nano
    ("nano-info-no-build-json", "nano info --model {tmp}",
     ["{tmp}/build.json does not exist", "coursekit nano build"]),
    # tiny / tokenizer into a path that cannot be written. The tests run as root, where chmod
    # does not stop a write, so the path is under (or is) a regular file, or in /proc.
    ("tiny-under-a-file", "tiny {file}/sub",
     ["{file} is a file", "cannot write the tiny model", "choose a directory"]),
    ("tiny-onto-a-file", "tiny {file}", ["{file} is a file", "cannot write the tiny model"]),
    ("tiny-into-proc", "tiny /proc/coursekit-bad",
     ["/proc/coursekit-bad: cannot write the tiny model"]),
    ("tokenizer-under-a-file", "tokenizer {file}/sub",
     ["{file} is a file", "cannot write the tokenizer"]),
    ("tokenizer-onto-a-file", "tokenizer {file}",
     ["{file} is a file", "cannot write the tokenizer"]),
    # train and lr-find flags; the saved config of --resume
    ("train-lr-inf", "train --lr inf --output {run}",
     ["coursekit train: error:", "learning_rate", "(got inf)"]),
    ("train-rank-0", "train --rank 0 --output {run}", ["AdapterConfig.rank", "(got 0)"]),
    ("train-curriculum-packing", "train --curriculum linear --packing --output {run}",
     ["curriculum='linear'", "--no-packing"]),
    ("train-config-missing", "train --config {tmp}/none.yaml --output {run}",
     ["{tmp}/none.yaml: cannot read the config", "No such file"]),
    ("train-resume-bad-saved-config", "train --resume --output {resumable}",
     ["{resumable}/config.yaml:2:", "RunSpec.adapter.rank", "'eight'"]),
    ("lr-find-lr-nan", "lr-find --lr nan --output {run}",
     ["coursekit lr-find: error:", "learning_rate", "(got nan)"]),
]

# train --config bad.yaml: (id, the YAML, texts, the first one right after "bad.yaml")
YAML_CASES = [
    ("alpha-a-word", 'adapter:\n  alpha: "sixteen"\n',
     [":2:", "RunSpec.adapter.alpha", "'sixteen'", "a number"]),
    ("unknown-adapter-key", "adapter:\n  rank: 8\n  colour: red\n",
     [":3:", "'colour'", "known fields"]),
    ("max-steps-2.5", "train:\n  max_steps: 2.5\n",
     [":2:", "RunSpec.train.max_steps", "2.5", "not rounded"]),
    ("max-steps-true", "train:\n  max_steps: true\n", [":2:", "RunSpec.train.max_steps", "True"]),
    ("learning-rate-inf", "train:\n  learning_rate: .inf\n",
     [":2:", "learning_rate", "(got inf)", "finite"]),
    ("method-ia3", "method: ia3\n", [":1:", "RunSpec.method", "'ia3'"]),
    ("tab-indent", "train:\n\tseed: 1\n", [":2:", "cannot read the config", "fix the YAML"]),
    ("a-list", "- a\n- b\n", [": a config must be a YAML mapping"]),
    ("nested-5000-deep", "train: " + "[" * 5000 + "]" * 5000 + "\n", ["", "nested too deeply"]),
]
# fmt: on
ROWS = [pytest.param(command, names, "", id=case) for case, command, names in CLI_CASES] + [
    pytest.param(
        "train --config {tmp}/bad.yaml --output {run}",
        ["{tmp}/bad.yaml" + names[0], *names[1:]],
        text,
        id=f"train-yaml-{case}",
    )
    for case, text, names in YAML_CASES
]


def _fields(*texts: str) -> set[str]:
    return {name for text in texts for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize(("command", "names", "yaml"), ROWS)
def test_cli_bad_input(
    command: str,
    names: list[str],
    yaml: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if "/proc/" in command and not Path("/proc/self").is_dir():
        pytest.skip("no /proc on this system")
    monkeypatch.chdir(tmp_path)
    if yaml:
        (tmp_path / "bad.yaml").write_text(yaml)
    paths = {name: FILES[name](tmp_path) for name in sorted(_fields(command, *names))}
    before = tree_digest(tmp_path)
    expect_cli_error(command.format(**paths).split(), capsys, *(n.format(**paths) for n in names))
    assert tree_digest(tmp_path) == before, "a refused command changed files"


def test_yaml_learning_rate_2e_4_is_accepted_as_a_number(tmp_path: Path) -> None:
    """PyYAML 1.1 reads ``2e-4`` (no dot) as a string: the codec coerces it, exactly."""
    config = tmp_path / "good.yaml"
    config.write_text("train:\n  learning_rate: 2e-4\n  max_steps: 20\n")
    assert load_spec(config).train.learning_rate == 2e-4
    args = build_parser().parse_args(["train", "--config", str(config), "--output", "run"])
    spec = spec_from_args(args)
    assert spec.train.learning_rate == 2e-4 and isinstance(spec.train.learning_rate, float)
    assert spec.train.max_steps == 20


@pytest.mark.parametrize("text", ["{", "{}"], ids=["not-json", "no-evaluation"])
def test_nano_info_with_a_broken_build_json(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "build.json").write_text(text)
    expect_cli_error(["nano", "info", "--model", str(tmp_path)], capsys, "build.json")


# --- the Python API: (id, call, texts its one-line error contains) ----------------------------


def duplicate_across_splits(root: Path) -> Path:
    for split, name in (("train", "same"), ("val", "other"), ("test", "same")):
        jsonl(root / f"{split}.jsonl", record(id=f"bad/{name}"))
    return root


# fmt: off
API_CASES: list[tuple[str, Callable[[Path], Any], list[str]]] = [
    ("AdapterConfig-alpha-inf", lambda tmp: AdapterConfig(alpha=math.inf),
     ["AdapterConfig.alpha", "> 0 and finite", "(got inf)", "2 * rank"]),
    ("AdapterConfig-rank-True", lambda tmp: AdapterConfig(rank=True),
     ["AdapterConfig.rank", "(got True)", "use an int"]),
    ("AdapterConfig-targets-qkv", lambda tmp: AdapterConfig(targets="qkv"),
     ["AdapterConfig.targets", "'qkv'", "pass a preset"]),
    ("TrainConfig-max-steps-True", lambda tmp: TrainConfig(max_steps=True),
     ["TrainConfig.max_steps", "whole number", "(got True)"]),
    ("TrainConfig-max-steps-2.5", lambda tmp: TrainConfig(max_steps=2.5),
     ["TrainConfig.max_steps", "(got 2.5)", "not rounded"]),
    ("TrainConfig-lr-nan", lambda tmp: TrainConfig(learning_rate=math.nan),
     ["TrainConfig.learning_rate", "(got nan)", "finite"]),
    ("RunSpec-method-ia3", lambda tmp: RunSpec(method="ia3"),
     ["RunSpec.method", "(got 'ia3')", "'qlora'"]),
    ("RunSpec-rank-a-word", lambda tmp: RunSpec.from_dict({"adapter": {"rank": "eight"}}),
     ["RunSpec.adapter.rank", "'eight'", "whole number"]),
    ("RunSpec-unknown-key", lambda tmp: RunSpec.from_dict({"train": {"colour": 1}}),
     ["RunSpec.train", "'colour'", "known fields"]),
    ("load_splits-bad-record", lambda tmp: load_splits(corpus_copy(tmp, bad_val=True)),
     ["val.jsonl:2:", "'tests' is missing"]),
    ("load_splits-id-in-two-splits", lambda tmp: load_splits(duplicate_across_splits(tmp)),
     ["test.jsonl:1:", "'bad/same'", "train.jsonl:1", "unique across splits"]),
    ("load_corpus-line-over-1-MiB", lambda tmp: load_corpus(huge_line(tmp)), ["c.jsonl:2:", CAP]),
    ("load_model-truncated-weights", lambda tmp: load_model(model_dir(tmp)),
     ["model.safetensors: truncated safetensors file", "download the model again"]),
    ("load_model-no-config", lambda tmp: load_model(tmp), ["no config.json", "save_pretrained"]),
    ("load_model-config-not-json", lambda tmp: load_model(model_dir(tmp, "{")),
     ["config.json: not a valid JSON model config", "restore"]),
    ("plan-budget-inf", lambda tmp: plan(math.inf, tiny_qwen2_config()),
     ["plan budget_bytes", "finite number > 0", "(got inf)", "8 * 2**30"]),
    ("plan-method-ia3", lambda tmp: plan(8 * GIB, tiny_qwen2_config(), methods=["ia3"]),
     ["plan methods", "'ia3'"]),
    ("model_config_from-not-json", lambda tmp: model_config_from(str(model_dir(tmp, "{"))),
     ["config.json: not a valid JSON model config"]),
]
# fmt: on


@pytest.mark.parametrize(
    ("call", "names"), [pytest.param(*row[1:], id=row[0]) for row in API_CASES]
)
def test_api_bad_input(call: Callable[[Path], Any], names: list[str], tmp_path: Path) -> None:
    """Each raises ValueError (CoursekitError for files) with one line naming culprit and fix."""
    with pytest.raises((ValueError, CoursekitError)) as caught:
        call(tmp_path)
    message = str(caught.value)
    assert "\n" not in message, message
    for name in names:
        assert name in message, f"{name!r} is not named in: {message}"


def test_rank_above_a_layers_width_warns_once(make_tiny_qwen2: Callable[..., Any]) -> None:
    """--rank 1000 on a 256-wide model: B·A cannot reach that rank; one CoursekitWarning."""
    model = make_tiny_qwen2(0, vocab_size=256, hidden_size=256, intermediate_size=512)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        apply(model, AdapterConfig(rank=1000, targets="qv"))
    ours = [w for w in caught if issubclass(w.category, CoursekitWarning)]
    assert len(ours) == 1 and issubclass(ours[0].category, AdapterRankWarning)
    message = str(ours[0].message)
    # the narrowest adapted layer: v_proj, 256 -> 128 (2 KV heads of 64)
    assert "AdapterConfig.rank=1000" in message and "min(d_in, d_out)=128" in message
    assert "model.layers.0.self_attn.v_proj (256 -> 128) and 3 other" in message
    assert "use a rank <= 128" in message
