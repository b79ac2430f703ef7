"""docs/adapters.md's variant table is the registry, row for row."""

from __future__ import annotations

from pathlib import Path

from coursekit.adapters import VARIANTS

DOC = Path(__file__).resolve().parents[2] / "docs" / "adapters.md"
MARKER = "<!-- variants table: name | summary -->"


def _table_rows(text: str) -> list[tuple[str, str]]:
    lines = text.split(MARKER, 1)[1].strip().splitlines()
    rows = []
    for line in lines[2:]:  # header and rule
        if not line.startswith("|"):
            break
        name, summary = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((name.strip("`"), summary))
    return rows


def test_docs_table_lists_every_variant_with_its_summary():
    assert _table_rows(DOC.read_text(encoding="utf-8")) == [
        (name, entry.summary) for name, entry in VARIANTS.items()
    ]


def test_a_missing_row_is_noticed():
    text = DOC.read_text(encoding="utf-8")
    broken = "\n".join(line for line in text.splitlines() if not line.startswith("| `rslora`"))
    assert _table_rows(broken) != [(name, e.summary) for name, e in VARIANTS.items()]
