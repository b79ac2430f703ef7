"""Tests of coursekit.corpus.sources and manifest: licenses, Cargo.toml, Debian fetching."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from coursekit.corpus.extract import extract_crate
from coursekit.corpus.manifest import ManifestEntry, parse_manifest, read_manifest, write_manifest
from coursekit.corpus.sources import (
    SourceError,
    crates_for_manifest,
    debian_package,
    default_cache_dir,
    discover_crates,
    fetch_debian,
    is_permissive,
    read_crate,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("MIT", True),
        ("MIT OR Apache-2.0", True),
        ("MIT/Apache-2.0", True),
        ("(MIT OR Apache-2.0) AND Unicode-DFS-2016", True),
        ("GPL-3.0-only", False),
        ("MIT AND GPL-2.0", False),
        ("LGPL-2.1 OR MIT", True),
        ("", False),
    ],
)
def test_is_permissive(expression: str, expected: bool) -> None:
    assert is_permissive(expression) is expected


def test_read_crate() -> None:
    crate = read_crate(FIXTURES / "mini")
    assert (crate.name, crate.version, crate.license) == ("mini", "0.1.0", "MIT OR Apache-2.0")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (None, "no Cargo.toml"),
        ("[package\n", "invalid TOML"),
        ("[package]\nname = 'x'\nversion.workspace = true\n", "workspace-inherited"),
    ],
)
def test_read_crate_errors(tmp_path: Path, toml: str | None, message: str) -> None:
    if toml is not None:
        (tmp_path / "Cargo.toml").write_text(toml)
    with pytest.raises(SourceError, match=message):
        read_crate(tmp_path)


def test_missing_license_reads_as_empty(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text("[package]\nname='x'\nversion='1'\nlicense=1\n")
    assert read_crate(tmp_path).license == ""


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COURSEKIT_CRATE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("COURSEKIT_CRATE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "coursekit" / "crates"


def test_debian_package() -> None:
    assert debian_package("Serde_JSON") == "librust-serde-json-dev"


def test_discover_crates(tmp_path: Path) -> None:
    found = discover_crates([FIXTURES])
    assert sorted(c.name for c, _ in found) == ["gpl", "macros", "mini", "props"]
    (label,) = {label for c, label in found if c.name == "mini"}
    assert label == str(FIXTURES / "mini")
    assert discover_crates([FIXTURES / "mini"])[0][0].name == "mini"
    with pytest.raises(SourceError, match="no such directory"):
        discover_crates([tmp_path / "nope"])
    with pytest.raises(SourceError, match=r"no Cargo\.toml"):
        discover_crates([tmp_path])


FAKE_APT = """#!{python}
import pathlib, sys
for package in sys.argv[2:]:
    if "missing" in package:
        sys.exit(100)
    pathlib.Path(f"{{package}}_1.0-1_amd64.deb").write_text(package)
"""
FAKE_DPKG = """#!{python}
import pathlib, shutil, sys
deb, target = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
crate = deb.read_text().removeprefix("librust-").removesuffix("-dev")
if crate == "empty":
    target.mkdir()
    sys.exit(0)
if crate == "broken":
    sys.exit(2)
shutil.copytree("{fixtures}/" + crate, target / "usr/share/cargo/registry" / (crate + "-0.1.0"))
"""


@pytest.fixture()
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("apt-get", FAKE_APT), ("dpkg-deb", FAKE_DPKG)):
        path = bin_dir / name
        path.write_text(text.format(python=sys.executable, fixtures=FIXTURES))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "cache"


def test_fetch_debian_downloads_once_and_unpacks(fake_tools: Path) -> None:
    (root,) = fetch_debian(["mini"], cache_dir=fake_tools)
    assert read_crate(root).name == "mini"
    assert root.parts[-6] == "librust-mini-dev"
    assert fetch_debian(["librust-mini-dev"], cache_dir=fake_tools) == [root]
    assert [c.name for c, _ in discover_crates([fake_tools / "src"])] == ["mini"]
    assert discover_crates([fake_tools / "src"])[0][1] == "librust-mini-dev"


def test_fetch_debian_failures(fake_tools: Path) -> None:
    with pytest.raises(SourceError, match="librust-missing-dev: apt-get download failed"):
        fetch_debian(["mini", "missing"], cache_dir=fake_tools)
    with pytest.raises(SourceError, match="holds no crate"):
        fetch_debian(["empty"], cache_dir=fake_tools)
    with pytest.raises(SourceError, match="dpkg-deb -x failed"):
        fetch_debian(["broken"], cache_dir=fake_tools)


def test_fetch_without_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SourceError, match="apt-get: not found"):
        fetch_debian(["mini"], cache_dir=tmp_path / "cache")


def test_manifest_round_trip_and_version_check(fake_tools: Path, tmp_path: Path) -> None:
    entries = [
        ManifestEntry("mini", "0.1.0", "librust-mini-dev"),
        ManifestEntry("props", "1.0.0", str(FIXTURES / "props")),
    ]
    path = write_manifest(tmp_path / "manifest.txt", entries[::-1])
    assert read_manifest(path) == entries
    crates = crates_for_manifest(read_manifest(path), cache_dir=fake_tools)
    assert [(c.name, label) for c, label in crates] == [
        ("mini", "librust-mini-dev"),
        ("props", str(FIXTURES / "props")),
    ]
    with pytest.raises(SourceError, match=r"manifest pins mini 9\.9 but the source holds mini"):
        crates_for_manifest([("mini", "9.9", "librust-mini-dev")], cache_dir=fake_tools)


def test_manifest_errors(tmp_path: Path) -> None:
    assert parse_manifest("# comment\n\n", "m") == []
    with pytest.raises(SourceError, match="m:2: expected 'crate version source'"):
        parse_manifest("a 1 b\nbad line\n", "m")
    with pytest.raises(SourceError, match="no such manifest"):
        read_manifest(tmp_path / "none.txt")


@pytest.mark.network
def test_real_debian_crate_is_fetched_and_extracted(tmp_path: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("apt-get/dpkg-deb not available")
    try:
        (root,) = fetch_debian(["lru-cache"], cache_dir=tmp_path)
    except SourceError as error:
        pytest.skip(f"Debian registry not reachable: {error}")
    crate = read_crate(root)
    assert crate.name == "lru-cache" and is_permissive(crate.license)
    samples = extract_crate(root, name=crate.name, version=crate.version, license=crate.license)
    assert samples and all(s.crate == "lru-cache" for s in samples)
    assert all("#[test]" in s.tests for s in samples)


def test_a_package_holding_several_crates_serves_each(fake_tools: Path) -> None:
    (root,) = fetch_debian(["mini"], cache_dir=fake_tools)
    shutil.copytree(FIXTURES / "props", root.parent / "props-1.0.0")  # like librust-cranelift-dev
    crates = crates_for_manifest(
        [("mini", "0.1.0", "librust-mini-dev"), ("props", "1.0.0", "librust-mini-dev")],
        cache_dir=fake_tools,
    )
    assert [(c.name, c.version, label) for c, label in crates] == [
        ("mini", "0.1.0", "librust-mini-dev"),
        ("props", "1.0.0", "librust-mini-dev"),
    ]
