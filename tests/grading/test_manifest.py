"""The run manifest: what train_run writes, and how it is read."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit import codec
from coursekit.data.corpus import load_splits, seed_dir
from coursekit.data.tokenized import TokenCache
from coursekit.errors import CoursekitError
from coursekit.grading.manifest import (
    MANIFEST,
    code_revision,
    data_digest,
    examples_digest,
    line_digests,
    output_files,
    read_manifest,
    sha256_file,
)
from coursekit.loading import load_tokenizer
from coursekit.train.spec import RunSpec, load_spec
from tests.grading.conftest import nano_spec


def test_the_manifest_records_settings_data_and_every_file(nano_runs) -> None:
    run = nano_runs[0]
    manifest = read_manifest(run)
    assert codec.from_dict(RunSpec, manifest["spec"]) == load_spec(run / "config.yaml")
    assert load_spec(run / "config.yaml") == nano_spec(0)
    assert manifest["seed"] == 0 and manifest["spec_error"] is None
    assert manifest["data"] == data_digest(seed_dir())
    assert sorted(manifest["files"]) == [
        "adapter/adapter_config.json", "adapter/adapter_model.safetensors", "config.yaml",
        "metrics.jsonl", "summary.json",
    ]  # fmt: skip
    for name, sha in manifest["files"].items():
        assert sha256_file(run / name) == sha
    assert manifest["metrics_lines"] == line_digests(run / "metrics.jsonl")
    expected = TokenCache(persist=False).encode(
        load_splits(seed_dir())["train"], load_tokenizer("nano"), 256
    )  # the examples that fit seq_len, in file order
    assert manifest["examples"]["train_ids"] == [e.sample_id for e in expected]
    assert manifest["examples"]["train_sha256"] == examples_digest(expected)
    env = manifest["environment"]
    assert (env["device"], env["threads"], env["processes"]) == ("cpu", 1, 1)
    assert env["torch"].startswith("2.")
    assert manifest["code"] == code_revision()


def test_two_seeds_differ_in_adapter_and_metrics_but_not_in_data(nano_runs) -> None:
    first, second = (read_manifest(nano_runs[s]) for s in (0, 1))
    assert first["data"] == second["data"]
    assert first["examples"] == second["examples"]
    for name in ("adapter/adapter_model.safetensors", "metrics.jsonl"):
        assert first["files"][name] != second["files"][name]


def test_code_revision_names_the_checkout_or_says_why_not() -> None:
    revision = code_revision()
    if revision["git_sha"] is None:
        assert revision["git_reason"]
    else:
        assert len(revision["git_sha"]) == 40 and revision["git_reason"] is None


def test_data_digest_changes_with_any_split_and_names_an_empty_folder(tmp_path) -> None:
    for path in seed_dir().glob("*.jsonl"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    assert data_digest(tmp_path)["sha256"] == data_digest(seed_dir())["sha256"]
    with (tmp_path / "val.jsonl").open("a") as handle:
        handle.write("\n")
    assert data_digest(tmp_path)["sha256"] != data_digest(seed_dir())["sha256"]
    with pytest.raises(CoursekitError, match="no data to digest"):
        data_digest(tmp_path / "empty")


@given(st.lists(st.tuples(st.text(max_size=5), st.lists(st.integers(0, 9), max_size=4))))
def test_examples_digest_sees_order_and_content(rows) -> None:
    from coursekit.data.prompts import EncodedExample

    examples = [EncodedExample(sample_id=i, input_ids=tuple(t), labels=tuple(t)) for i, t in rows]
    assert examples_digest(examples) == examples_digest(list(examples))
    if len(set(map(repr, rows))) > 1:
        assert examples_digest(examples) != examples_digest(examples[::-1]) or rows == rows[::-1]


def test_a_missing_or_broken_manifest_is_a_one_line_error(run_copy, tmp_path) -> None:
    run = run_copy(0)
    (run / MANIFEST).unlink()
    with pytest.raises(CoursekitError, match=r"manifest\.json: missing") as missing:
        read_manifest(run)
    assert "\n" not in str(missing.value)
    (run / MANIFEST).write_text("{not json")
    with pytest.raises(CoursekitError, match="not readable JSON"):
        read_manifest(run)
    (run / MANIFEST).write_text(json.dumps({"format": 99}))
    with pytest.raises(CoursekitError, match="not a manifest of format 1"):
        read_manifest(run)
    with pytest.raises(CoursekitError, match="no such run folder"):
        read_manifest(tmp_path / "nowhere")


def test_output_files_lists_the_hashed_files(run_copy) -> None:
    run = run_copy(0)
    assert output_files(run) == sorted(read_manifest(run)["files"], key=output_files(run).index)
    (run / "summary.json").unlink()
    assert "summary.json" not in output_files(run)
