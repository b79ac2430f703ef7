"""Tests of coursekit.corpus.debian_suite and fetching ``package@suite`` (fake apt tools)."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from coursekit.cli import main
from coursekit.corpus import debian_suite
from coursekit.corpus.debian_suite import (
    SuiteError,
    apt_options,
    crate_key,
    new_rust_packages,
    rust_packages,
    split_source,
)
from coursekit.corpus.sources import SourceError, discover_crates, fetch_debian, read_crate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"
# Fake apt: '-o Key=Value' pairs, then a command. The machine's suite knows crate 'mini';
# the private suite (recognised by its Dir::State::Lists option) also 'props' and 'mini-0.2'.
FAKE_APT = """#!{python}
import pathlib, sys
args, options = sys.argv[1:], {{}}
while args and args[0] == "-o":
    key, _, value = args[1].partition("="); options[key] = value; args = args[2:]
lists = options.get("Dir::State::Lists")
command, rest = args[0], args[1:]
if command == "update":
    if "{fail}" == "update":
        print("E: The repository is not signed.", file=sys.stderr); sys.exit(100)
    pathlib.Path(lists, "deb.debian.org_dists_trixie_main_Packages").write_text("x")
elif command == "pkgnames":
    names = ["librust-mini-dev", "librust-mini+std-dev", "librust-other"]
    if lists:
        names += ["librust-props-dev", "librust-mini-0.2-dev", "librust-empty-dev"]
    print("\\n".join(names))
elif command == "download":
    for package in rest:
        if "missing" in package:
            sys.exit(100)
        suffix = "trixie" if lists else "bookworm"
        pathlib.Path(f"{{package}}_1.0-{{suffix}}_amd64.deb").write_text(package)
"""
FAKE_DPKG = """#!{python}
import pathlib, shutil, sys
deb, target = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
crate = deb.read_text().removeprefix("librust-").removesuffix("-dev")
if crate == "empty":
    target.mkdir(); sys.exit(0)
shutil.copytree("{fixtures}/" + crate, target / "usr/share/cargo/registry" / (crate + "-0.1.0"))
"""


def _tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str = "") -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    apt = FAKE_APT.format(python=sys.executable, fail=fail)
    for name, text in (("apt-get", apt), ("apt-cache", apt), ("dpkg-deb", FAKE_DPKG)):
        path = bin_dir / name
        path.write_text(
            text.replace("{fixtures}", str(FIXTURES)).replace("{python}", sys.executable)
        )
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    keyring = tmp_path / "keyring.gpg"
    keyring.write_text("key")
    monkeypatch.setattr(debian_suite, "KEYRING", keyring)
    return tmp_path / "cache"


def test_split_source_and_crate_key() -> None:
    assert split_source("librust-a-dev@trixie") == ("librust-a-dev", "trixie")
    assert split_source("/some/path") == ("/some/path", "")
    with pytest.raises(SuiteError, match="'Trixie!' is not a Debian suite name"):
        split_source("librust-a-dev@Trixie!")
    assert crate_key("librust-nom-7-dev") == "nom"
    assert crate_key("librust-foo-bar-0.3.1-dev") == "foo-bar"
    assert crate_key("librust-x11-dev") == "x11"


def test_private_apt_lists_packages_and_new_crates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _tools(tmp_path, monkeypatch)
    options = apt_options(cache, "trixie")
    assert f"Dir::State::Lists={cache}/apt/trixie/lists" in options
    assert "signed-by=" in (cache / "apt/trixie/sources.list").read_text()
    assert rust_packages(cache, "trixie") == [
        "librust-empty-dev",
        "librust-mini-0.2-dev",
        "librust-mini-dev",
        "librust-props-dev",
    ]
    # the machine's suite ships crate mini: its second version is not new
    assert new_rust_packages(cache, "trixie") == ["librust-empty-dev", "librust-props-dev"]


def test_fetch_from_a_suite_keeps_its_files_apart_and_skips_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = _tools(tmp_path, monkeypatch)
    (root,) = fetch_debian(["props@trixie"], cache_dir=cache)
    assert read_crate(root).name == "props" and root.parts[-6] == "librust-props-dev@trixie"
    assert list((cache / "debs/trixie").glob("*.deb"))
    assert discover_crates([cache / "src"])[0][1] == "librust-props-dev@trixie"
    skipped: list[str] = []
    roots = fetch_debian(
        ["librust-empty-dev@trixie", "missing@trixie", "mini"], cache_dir=cache, skipped=skipped
    )
    assert [read_crate(r).name for r in roots] == ["mini"]
    assert any("holds no crate" in m for m in skipped)
    assert any("librust-missing-dev: apt-get download failed" in m for m in skipped)
    with pytest.raises(SourceError, match="holds no crate"):
        fetch_debian(["librust-empty-dev@trixie"], cache_dir=cache)


def test_cli_fetches_new_crates_of_a_suite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = _tools(tmp_path, monkeypatch)
    assert main(["corpus", "fetch", "--new-from-suite", "trixie", "--cache", str(cache)]) == 0
    out, err = capsys.readouterr()
    assert out.strip().endswith("props-0.1.0") and "skipped: " in err and "empty" in err
    assert main(["corpus", "fetch", "--cache", str(cache)]) == 2
    assert "needs --debian CRATE... or --new-from-suite SUITE" in capsys.readouterr().err


def test_failures_name_the_cause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = _tools(tmp_path, monkeypatch, fail="update")
    with pytest.raises(SuiteError, match=r"apt-get update for suite trixie failed .*not signed"):
        rust_packages(cache, "trixie")
    monkeypatch.setattr(debian_suite, "KEYRING", tmp_path / "none.gpg")
    with pytest.raises(SuiteError, match="install the Debian package debian-archive-keyring"):
        apt_options(cache, "trixie")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SuiteError, match="apt-cache: not found"):
        debian_suite._run(["apt-cache", "pkgnames"])
