"""Tests of coursekit.data.corpus: the schema, strict loading, and round trips."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.data import corpus
from coursekit.data.corpus import (
    CorpusError,
    Sample,
    load_corpus,
    load_splits,
    seed_dir,
    write_corpus,
)
from coursekit.errors import CoursekitError


def record(**changes: Any) -> dict[str, Any]:
    base = {
        "id": "test/one",
        "crate": "demo",
        "version": "1.0.0",
        "license": "MIT",
        "path": "src/lib.rs",
        "function": "/// One.\npub fn one() -> i32 {\n    1\n}",
        "context": "",
        "tests": "#[cfg(test)]\nmod tests {\n    #[test]\n    fn t() {}\n}",
        "property_tests": None,
        "verified": False,
        "features": {},
    }
    return base | changes


def write_lines(path: Path, records: list[Any]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def assert_one_line(error: pytest.ExceptionInfo[CorpusError], *needles: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_corpus_error_is_a_coursekit_error() -> None:
    assert issubclass(CorpusError, CoursekitError)


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"tests": None}, "tests"),
        ({"function": ""}, "function"),
        ({"function": "   \n"}, "function"),
        ({"id": 7}, "id"),
        ({"context": None}, "context"),
        ({"verified": "yes"}, "verified"),
        ({"verified": 1}, "verified"),
        ({"property_tests": ""}, "property_tests"),
        ({"features": []}, "features"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_field_names_file_line_and_field(
    tmp_path: Path, bad: dict[str, Any], field: str
) -> None:
    path = write_lines(tmp_path / "c.jsonl", [record(), record(**({"id": "test/two"} | bad))])
    with pytest.raises(CorpusError) as error:
        load_corpus(path)
    assert_one_line(error, f"{path}:2:", f"'{field}'")


def test_missing_field(tmp_path: Path) -> None:
    broken = record()
    del broken["tests"]
    path = write_lines(tmp_path / "c.jsonl", [broken])
    with pytest.raises(CorpusError) as error:
        load_corpus(path)
    assert_one_line(error, f"{path}:1:", "'tests' is missing")


def test_invalid_json(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [record(), '{"id": "x",'])
    with pytest.raises(CorpusError) as error:
        load_corpus(path)
    assert_one_line(error, f"{path}:2:", "invalid JSON")


def test_record_must_be_an_object(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", ["[1, 2]"])
    with pytest.raises(CorpusError) as error:
        load_corpus(path)
    assert_one_line(error, f"{path}:1:", "not a JSON object")


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(json.dumps(record()).encode() + b"\n" + b'{"id": "\xff"}\n')
    with pytest.raises(CorpusError) as error:
        load_corpus(path)
    assert_one_line(error, f"{path}:2:", "invalid UTF-8")


def test_truncated_gzip(tmp_path: Path) -> None:
    lines = [json.dumps(record(id=f"test/{i}")) + "\n" for i in range(200)]
    data = gzip.compress("".join(lines).encode())
    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError) as error:
        load_corpus(path)
    assert_one_line(error, f"{path}:", "truncated or corrupt gzip")


def test_not_gzip_at_all(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl.gz", [record()])
    with pytest.raises(CorpusError) as error:
        load_corpus(path)
    assert_one_line(error, f"{path}:1:", "gzip")


def test_json_nested_too_deeply(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [record(), "[" * 200_000 + "]" * 200_000])
    with pytest.raises(CorpusError) as error:
        load_corpus(path)
    assert_one_line(error, f"{path}:2:", "nested too deeply")


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_a_line_over_the_cap_is_refused_at_its_number(tmp_path: Path, suffix: str) -> None:
    """A line of MAX_LINE_BYTES + 1 bytes is refused; the error names file:line and the cap."""
    huge = json.dumps(record(id="test/huge"))[:-1] + ', "x": "'
    huge += "y" * (corpus.MAX_LINE_BYTES + 1 - len(huge) - 2) + '"}'
    assert len(huge.encode()) == corpus.MAX_LINE_BYTES + 1
    text = json.dumps(record()) + "\n" + huge + "\n"
    path = tmp_path / f"c{suffix}"
    data = text.encode()
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    with pytest.raises(CorpusError) as error:
        load_corpus(path)
    assert_one_line(error, f"{path}:2:", f"longer than {corpus.MAX_LINE_BYTES} bytes")


def test_a_line_of_exactly_the_cap_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [json.dumps(record(id=f"test/{i}")) for i in range(3)]
    monkeypatch.setattr(corpus, "MAX_LINE_BYTES", max(len(line) for line in lines))
    path = write_lines(tmp_path / "c.jsonl", lines)
    assert [s.id for s in load_corpus(path)] == ["test/0", "test/1", "test/2"]
    monkeypatch.setattr(corpus, "MAX_LINE_BYTES", corpus.MAX_LINE_BYTES - 1)
    with pytest.raises(CorpusError, match="longer than"):
        load_corpus(path)


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [record(), record(id="test/2"), record()])
    with pytest.raises(CorpusError) as error:
        load_corpus(path)
    assert_one_line(error, f"{path}:3:", "'id'", "first at line 1")


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", ["", record(), "   "])
    assert load_corpus(path) == [Sample(**record())]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="no such corpus file"):
        load_corpus(tmp_path / "absent.jsonl")
    with pytest.raises(CorpusError, match="use load_splits"):
        load_corpus(tmp_path)


def test_gz_round_trip(tmp_path: Path) -> None:
    samples = load_corpus(seed_dir() / "train.jsonl")
    path = write_corpus(tmp_path / "train.jsonl.gz", samples)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert load_corpus(path) == samples
    again = write_corpus(tmp_path / "again.jsonl.gz", samples)
    assert again.read_bytes() == path.read_bytes()


def test_plain_round_trip_reproduces_the_seed_file(tmp_path: Path) -> None:
    original = seed_dir() / "val.jsonl"
    copy = write_corpus(tmp_path / "val.jsonl", load_corpus(original))
    assert copy.read_bytes() == original.read_bytes()


def _write_splits(directory: Path, ids: dict[str, list[str]]) -> None:
    directory.mkdir(exist_ok=True)
    for split, names in ids.items():
        write_corpus(directory / f"{split}.jsonl", [Sample(**record(id=n)) for n in names])


def test_load_splits_mixed_compression(tmp_path: Path) -> None:
    _write_splits(tmp_path, {"train": ["a", "b"], "val": ["c"]})
    write_corpus(tmp_path / "test.jsonl.gz", [Sample(**record(id="d"))])
    splits = load_splits(tmp_path)
    assert {k: [s.id for s in v] for k, v in splits.items()} == {
        "train": ["a", "b"],
        "val": ["c"],
        "test": ["d"],
    }


def test_load_splits_duplicate_across_splits(tmp_path: Path) -> None:
    _write_splits(tmp_path, {"train": ["a", "b"], "val": ["c"], "test": ["b"]})
    with pytest.raises(CorpusError) as error:
        load_splits(tmp_path)
    assert_one_line(error, f"{tmp_path / 'test.jsonl'}:1:", f"{tmp_path / 'train.jsonl'}:2")


def test_load_splits_missing_or_doubled_split(tmp_path: Path) -> None:
    _write_splits(tmp_path, {"train": ["a"], "val": ["b"]})
    with pytest.raises(CorpusError, match=r"no test\.jsonl or test\.jsonl\.gz"):
        load_splits(tmp_path)
    _write_splits(tmp_path, {"test": ["c"]})
    write_corpus(tmp_path / "test.jsonl.gz", [Sample(**record(id="c"))])
    with pytest.raises(CorpusError, match="keep one"):
        load_splits(tmp_path)


def test_load_splits_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not a directory"):
        load_splits(tmp_path / "absent")


def test_seed_dir_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(corpus, "__file__", str(tmp_path / "coursekit" / "data" / "corpus.py"))
    with pytest.raises(CorpusError, match="pip install -e"):
        seed_dir()


def test_seed_dir_is_found_from_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (seed_dir() / "README.md").is_file()


def test_sample_validation_message() -> None:
    with pytest.raises(ValueError, match=r"Sample\.verified must be true or false \(got 1\)"):
        Sample(**record(verified=1))


def test_source_joins_non_empty_parts() -> None:
    sample = Sample(**record(context="use std::fmt;\n"))
    assert sample.source() == f"use std::fmt;\n\n{sample.function}\n\n{sample.tests}\n"
    assert Sample(**record()).source().startswith("/// One.")


def test_to_record_matches_the_schema_order() -> None:
    assert list(Sample(**record()).to_record()) == list(record())


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
NON_EMPTY = st.text(min_size=1).filter(str.strip)
SAMPLES = st.builds(
    Sample,
    id=NON_EMPTY,
    crate=NON_EMPTY,
    version=NON_EMPTY,
    license=NON_EMPTY,
    path=NON_EMPTY,
    function=NON_EMPTY,
    tests=NON_EMPTY,
    context=st.text(),
    property_tests=st.none() | NON_EMPTY,
    verified=st.booleans(),
    features=st.dictionaries(st.text(), JSON_VALUES, max_size=4),
)


@settings(max_examples=60, deadline=None)
@given(samples=st.lists(SAMPLES, max_size=4, unique_by=lambda s: s.id), compress=st.booleans())
def test_any_valid_sample_round_trips(
    tmp_path_factory: pytest.TempPathFactory, samples: list[Sample], compress: bool
) -> None:
    directory = tmp_path_factory.mktemp("roundtrip")
    path = directory / ("c.jsonl.gz" if compress else "c.jsonl")
    write_corpus(path, samples)
    assert load_corpus(path) == samples
