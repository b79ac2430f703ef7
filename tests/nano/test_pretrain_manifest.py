"""The pretraining manifest (every permissive Debian crate) and the text drawn from it."""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from coursekit.corpus.manifest import ManifestEntry, read_manifest
from coursekit.corpus.pretrain_manifest import _version_key, build_pretrain_manifest, pick_crates
from coursekit.corpus.pretrain_text import (
    read_documents,
    write_heldout_text,
    write_pretrain_text,
)
from coursekit.corpus.sources import CrateSource
from coursekit.data.corpus import load_splits

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"


def _fake_cache(root: Path, crates: dict[str, str]) -> Path:
    """A crate cache as `fetch_debian` leaves it: a .deb per package, unpacked under src/."""
    (root / "debs" / "trixie").mkdir(parents=True)
    for package, crate in crates.items():
        name, _, suite = package.partition("@")
        debs = root / "debs" / suite if suite else root / "debs"
        (debs / f"{name}_1_all.deb").write_bytes(b"")
        version = (FIXTURES / crate / "Cargo.toml").read_text().split('version = "')[1]
        target = root / "src" / package / "usr/share/cargo/registry" / f"{crate}-{version[:5]}"
        shutil.copytree(FIXTURES / crate, target)
    return root


def test_manifest_keeps_permissive_crates_once(tmp_path: Path) -> None:
    packages = {"librust-mini-dev": "mini", "librust-gpl-dev": "gpl",
                "librust-props-dev": "props", "librust-mini-dev@trixie": "mini"}  # fmt: skip
    cache = _fake_cache(tmp_path / "cache", packages)
    lines: list[str] = []
    report = build_pretrain_manifest(
        tmp_path / "m.txt", cache_dir=cache, packages=list(packages), log=lines.append
    )
    entries = read_manifest(tmp_path / "m.txt")
    assert [e.crate for e in entries] == ["mini", "props"]
    assert entries[0].source == "librust-mini-dev"  # the machine's suite wins
    assert report == {"packages": 4, "crates": 2, "not_permissive": 1, "skipped": 0}
    assert "resumable" in lines[0]


def test_pick_prefers_the_machines_suite_then_the_newest_version() -> None:
    def crate(version: str) -> CrateSource:
        return CrateSource(name="a", version=version, license="MIT", root=Path("."))

    found = [(crate("1.9.0"), "librust-a-dev@trixie"), (crate("1.10.0"), "librust-a-dev@trixie")]
    assert pick_crates(found)[0] == [ManifestEntry("a", "1.10.0", "librust-a-dev@trixie")]
    found.append((crate("0.1.0"), "librust-a-0.1-dev"))
    assert pick_crates(found)[0] == [ManifestEntry("a", "0.1.0", "librust-a-0.1-dev")]


@given(
    st.lists(st.integers(0, 99), min_size=1, max_size=4),
    st.lists(st.integers(0, 99), min_size=1, max_size=4),
)
def test_version_order_is_numeric(a: list[int], b: list[int]) -> None:
    key = lambda parts: _version_key(".".join(map(str, parts)))  # noqa: E731
    assert (key(a) < key(b)) == (tuple(a) < tuple(b))


def test_text_from_a_manifest_leaves_out_heldout_crates_and_adds_pairs(
    fixture_corpus: Path, tmp_path: Path
) -> None:
    manifest = read_manifest(fixture_corpus / "manifest.txt")
    (tmp_path / "m.txt").write_text(
        "".join(f"{e.crate} {e.version} {e.source}\n" for e in manifest)
    )
    counts = write_pretrain_text(
        fixture_corpus, tmp_path / "p.rs", manifest=tmp_path / "m.txt", pairs=True
    )
    documents = list(read_documents(tmp_path / "p.rs"))
    heads = {d.split("\n", 1)[0] for d in documents}
    assert {h.split()[1].split("/")[0] for h in heads if not h.startswith("// pair")} == {"mini"}
    train = load_splits(fixture_corpus)["train"]
    pairs = [d for d in documents if d.startswith("// pair mini/")]
    assert counts["pairs"] == len(pairs) == len(train) > 0
    assert train[0].tests.strip() in pairs[0]
    held = write_heldout_text(fixture_corpus, tmp_path / "h.rs", manifest=tmp_path / "m.txt")
    assert held["crates"] == 2 and held["files"] > 0
