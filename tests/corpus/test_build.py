"""Tests of the corpus build, verification, stats, datasheet and pretraining text."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from coursekit.corpus.build import BuildConfig, build_corpus
from coursekit.corpus.datasheet import write_datasheet
from coursekit.corpus.extract import extract_crate
from coursekit.corpus.manifest import read_manifest
from coursekit.corpus.pretrain_text import read_documents, write_pretrain_text
from coursekit.corpus.sources import discover_crates, read_crate
from coursekit.corpus.stats import corpus_stats
from coursekit.corpus.verify import is_self_contained, verify_samples
from coursekit.data.corpus import Sample, load_splits

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"
FRACTIONS = BuildConfig(
    tokens=False, jobs=2, timeout_s=5, val_fraction=0.05, test_fraction=0.05, val_verified=0,
    test_verified=0,
)  # fmt: skip
"""The fixture crates split by sample fractions (the verified goals off)."""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("corpus")
    report = build_corpus(
        discover_crates([FIXTURES]),
        out,
        FRACTIONS,
    )
    return out, report


def test_build_writes_splits_manifest_and_report(built: tuple[Path, dict]) -> None:
    out, report = built
    assert report["crates_not_permissive"] == ["gpl"]
    assert report["crates_with_samples"] == 3
    assert sum(report["samples"].values()) == report["extracted"] == 11
    # all: the proptest block is kept aside in property_tests, the unit test compiles
    assert sum(report["verified"].values()) == 11
    splits = load_splits(out)
    assert [e.crate for e in read_manifest(out / "manifest.txt")] == ["macros", "mini", "props"]
    assert json.loads((out / "build.json").read_text()) == report
    every = [s for v in splits.values() for s in v]
    assert all(s.features["cyclomatic"] >= 1 and "tokens" not in s.features for s in every)


def test_build_is_reproducible(built: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = built
    again = build_corpus(
        discover_crates([FIXTURES]),
        tmp_path,
        FRACTIONS,
    )
    assert again["samples"] == json.loads((out / "build.json").read_text())["samples"]
    for name in ("train.jsonl.gz", "val.jsonl.gz", "test.jsonl.gz", "manifest.txt"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_newest_version_wins_and_tokens_are_counted(tmp_path: Path) -> None:
    crate = read_crate(FIXTURES / "props")
    older = type(crate)(name="props", version="0.9.0", license="MIT", root=crate.root)
    report = build_corpus(
        [(older, "old"), (crate, "new")],
        tmp_path,
        BuildConfig(verify="none", tokens=True, val_fraction=0, test_fraction=0),
    )
    assert report["samples"] == {"train": 1, "val": 0, "test": 0}
    (entry,) = read_manifest(tmp_path / "manifest.txt")
    assert entry.version == "1.0.0"
    (sample,) = load_splits(tmp_path)["train"]
    assert sample.features["tokens"] > 0 and not sample.verified


@pytest.mark.parametrize(
    ("field", "value"), [("verify", "some"), ("jobs", -1), ("timeout_s", 0), ("val_fraction", 1)]
)
def test_build_config_validation(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"BuildConfig.{field} must"):
        BuildConfig(**{field: value})


def test_self_contained() -> None:
    def sample(tests: str, context: str = "") -> Sample:
        return Sample(
            id="a",
            crate="c",
            version="1",
            license="MIT",
            path="src/lib.rs",
            function="fn f() {}",
            tests=tests,
            context=context,
        )

    assert is_self_contained(sample("use std::fmt;", "extern crate alloc;"))
    assert not is_self_contained(sample("use serde::Serialize;"))
    assert not is_self_contained(sample("#[tokio::test]\nasync fn t() {}"))
    assert not is_self_contained(sample("mod t {}", "extern crate libc;"))


def test_stats(built: tuple[Path, dict]) -> None:
    out, report = built
    stats = corpus_stats(out)
    assert stats["shared_crates"] == [] and stats["crates"] == 3
    assert {k: v["samples"] for k, v in stats["splits"].items()} == report["samples"]
    assert stats["licenses"]["MIT OR Apache-2.0"] == 7
    assert stats["features"]["lines"]["min"] >= 1 and stats["features"]["tokens"] is None
    assert stats["targets"]["crates"] == {"target": 150, "measured": 3, "met": False}


def test_datasheet(built: tuple[Path, dict]) -> None:
    out, _ = built
    readme = write_datasheet(out).read_text()
    assert "| train |" in readme and "## Example records" in readme and '"verified": true' in readme
    assert (out / "lengths.png").stat().st_size > 1000
    assert (out / "difficulty.png").stat().st_size > 1000


def test_pretrain_text_uses_only_training_crates(built: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = built
    train_crates = {s.crate for s in load_splits(out)["train"]}
    counts = write_pretrain_text(out, tmp_path / "pretrain.rs")
    text = (tmp_path / "pretrain.rs").read_text()
    headers = {
        doc.split("\n", 1)[0].split()[1].split("/")[0]
        for doc in read_documents(tmp_path / "pretrain.rs")
    }
    assert headers == train_crates
    assert counts["crates"] == len(train_crates) and counts["bytes"] == len(text.encode())
    assert counts["files"] >= 1 and counts["duplicates"] == 0


def test_pretrain_text_skips_duplicate_and_huge_files(tmp_path: Path) -> None:
    for name in ("a", "b"):
        root = tmp_path / name
        (root / "src").mkdir(parents=True)
        (root / "Cargo.toml").write_text(f"[package]\nname='{name}'\nversion='1'\nlicense='MIT'\n")
        (root / "src" / "lib.rs").write_text(
            "pub fn f() -> u8 { 1 }\n#[cfg(test)]\nmod tests {\n use super::*;\n"
            f" #[test]\n fn f_{name}() {{ assert_eq!(f(), 1); }}\n}}\n"
        )
        (root / "src" / "big.rs").write_text("//" + "x" * 300_000)
        (root / "src" / "copy.rs").write_text(
            "// same code, other comment\npub fn f() -> u8 { 1 }\n"
        )
        (root / "src" / "orig.rs").write_text("pub fn f() -> u8 {\n    1\n}\n")
    out = tmp_path / "out"
    build_corpus(
        discover_crates([tmp_path]),
        out,
        BuildConfig(verify="none", tokens=False, val_fraction=0, test_fraction=0),
    )
    counts = write_pretrain_text(out, tmp_path / "p.rs")
    assert (counts["files"], counts["duplicates"]) == (2, 1)


def test_wide_context_rescues_a_sample(tmp_path: Path) -> None:
    wide = FIXTURES.parent / "wide"
    (narrow,) = extract_crate(wide, name="wide", version="0.3.0", license="Zlib")
    (broad,) = extract_crate(wide, name="wide", version="0.3.0", license="Zlib", wide_context=True)
    assert narrow.id == broad.id and "enum Kind" not in narrow.context
    assert "pub enum Kind" in broad.context
    (alone,) = verify_samples([narrow], jobs=1)
    assert not alone.verified
    (rescued,) = verify_samples([narrow], jobs=1, alternatives={narrow.id: broad.context})
    assert rescued.verified and rescued.context == broad.context
    report = build_corpus(discover_crates([wide]), tmp_path, BuildConfig(tokens=False, jobs=1))
    assert report["verified"] == {"train": 0, "val": 0, "test": 1}  # test is dealt first
    assert report["verified_goals_met"] is False


def test_trim_context_keeps_uses_of_unverified_oversized_samples() -> None:
    from coursekit.corpus.build import MAX_CONTEXT_CHARS, trim_context

    big = "struct S;\n" * (MAX_CONTEXT_CHARS // 5)
    sample = Sample(
        id="a",
        crate="c",
        version="1",
        license="MIT",
        path="src/lib.rs",
        function="fn f() {}",
        tests="mod tests {}",
        context="use std::fmt;\n\n" + big,
    )
    assert trim_context(sample).context == "use std::fmt;"
    no_uses = dataclasses.replace(sample, context=big)
    assert trim_context(no_uses).context == ""
    verified = dataclasses.replace(sample, verified=True)
    assert trim_context(verified) == verified
    small = dataclasses.replace(sample, context="use std::fmt;")
    assert trim_context(small) == small
