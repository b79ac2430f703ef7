"""The corpus build's verification cache: results are reused, so an interrupted build resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coursekit.corpus import verify
from coursekit.corpus.extract import extract_crate
from coursekit.corpus.manifest import read_crate_list
from coursekit.corpus.sources import SourceError
from coursekit.corpus.verify import verify_samples

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"


def test_results_are_cached_per_source_and_a_torn_line_is_ignored(
    rustc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = extract_crate(FIXTURES / "mini", name="mini", version="0.1.0", license="MIT")
    broken = samples[0].__class__(**{**samples[0].__dict__, "id": "x", "tests": "fn nope("})
    cache = tmp_path / "verified.jsonl"
    first = verify_samples([*samples, broken], jobs=1, cache=cache)
    rows = [json.loads(line) for line in cache.read_text().splitlines()]
    assert len(rows) == len(samples) + 1 and sum(r["passed"] for r in rows) == len(samples)
    assert [s.verified for s in first] == [True] * len(samples) + [False]
    with cache.open("a") as handle:
        handle.write('{"key": "torn')  # an interrupted append

    def no_compiles(*args: object, **kwargs: object) -> list[object]:
        raise AssertionError("a cached result was compiled again")

    monkeypatch.setattr(verify, "compile_and_test_many", no_compiles)
    again = verify_samples([*samples, broken], jobs=1, cache=cache)
    assert [s.verified for s in again] == [s.verified for s in first]
    # another time limit is another key: compiled afresh
    with pytest.raises(AssertionError, match="compiled again"):
        verify_samples(samples, jobs=1, cache=cache, timeout_s=3.0)


def test_read_crate_list(tmp_path: Path) -> None:
    text = tmp_path / "crates.txt"
    text.write_text("# pinned\nzeta 1.0 librust-zeta-dev\n\nalpha\nzeta\n")
    assert read_crate_list(text) == ("alpha", "zeta")
    record = tmp_path / "build.json"
    record.write_text(json.dumps({"pretrained_crates": [["b", "1"], ["a", "2"]]}))
    assert read_crate_list(record) == ("a", "b")
    record.write_text(json.dumps({"pretrained_crates": "a"}))
    with pytest.raises(SourceError, match=r"build\.json: field pretrained_crates: expected"):
        read_crate_list(record)
    record.write_text("[1]")
    with pytest.raises(SourceError, match="field pretrained_crates"):
        read_crate_list(record)
    with pytest.raises(SourceError, match="no such crate list"):
        read_crate_list(tmp_path / "none.txt")
