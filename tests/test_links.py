"""Every file path the package, the docs and the notebooks point to exists in the project."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(
    r"(?<![\w/.~-])((?:notebooks|docs|tests|benchmarks|coursekit|data)/[\w./-]*\w"
    r"\.(?:ipynb|md|py|yaml|yml|json|png|txt|rs|toml))(?!\w)"
)
OUTSIDE = re.compile(r"\.\./shared|(?<![\w/])(?:COURSE|DESIGN|STYLE)\.md")
"""Pointers outside the project: the shared course files are not part of a clone."""


def _sources() -> list[Path]:
    files = [*ROOT.glob("coursekit/**/*.py"), *ROOT.glob("docs/*.md"), ROOT / "README.md"]
    return sorted([*files, *ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("benchmarks/*.py")])


def paths_in(text: str) -> set[str]:
    """Return the project-relative file paths named in ``text``."""
    return {match.group(1) for match in PATH.finditer(text)}


def test_the_pattern_finds_paths_and_ignores_run_outputs():
    text = "see docs/adapters.md, ``notebooks/phase1_baseline.ipynb``, data/x.jsonl, runs/y.png"
    assert paths_in(text) == {"docs/adapters.md", "notebooks/phase1_baseline.ipynb"}
    assert OUTSIDE.search("(DESIGN.md, COURSE.md)") and not OUTSIDE.search("docs/design.md")


@pytest.mark.parametrize("source", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_file_exists(source: Path):
    text = source.read_text(encoding="utf-8")
    missing = sorted(path for path in paths_in(text) if not (ROOT / path).exists())
    assert not missing, f"{source.relative_to(ROOT)} names files that do not exist: {missing}"
    outside = sorted({match.group(0) for match in OUTSIDE.finditer(text)})
    assert not outside, f"{source.relative_to(ROOT)} points outside the project: {outside}"
