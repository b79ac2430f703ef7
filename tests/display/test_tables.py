from __future__ import annotations

import re
from html.parser import HTMLParser

from coursekit.display.tables import (
    format_value,
    funnel_table,
    generations_table,
    metrics_table,
    unit_of,
)


def test_units_and_formats():
    assert unit_of("val_loss_end") == "nats / target token"
    assert unit_of("peak_memory_bytes") == "bytes"
    assert unit_of("mystery") == ""
    assert format_value("peak_memory_bytes", 3 * 2**20) == "3.0 MiB"
    assert format_value("trainable_parameters", 1081344) == "1,081,344"
    assert format_value("val_loss_end", 2.123456) == "2.123"
    assert format_value("name", "x") == "x"


def test_metrics_table_escapes_and_lists_every_metric():
    html = metrics_table({"val_loss_end": 2.0, "<b>": 1})
    assert "<code>val_loss_end</code>" in html and "&lt;b&gt;" in html
    assert html.count("<tr>") == 3


def test_generations_table_escapes_code():
    row = {"id": "s/1", "function": "fn f() -> Vec<u8>", "reference": "#[test]", "generated": "<x>"}
    html = generations_table([row])
    assert "Vec&lt;u8&gt;" in html and "&lt;x&gt;" in html and "s/1" in html


def test_presets_table_lists_every_preset_with_its_parameter_count():
    from coursekit.display.tables import presets_table
    from coursekit.presets import PRESETS

    html = presets_table()
    assert all(name in html for name in PRESETS)
    assert "494,032,768" in html  # the 0.5B count
    assert html.count("<tr>") == len(PRESETS) + 1


class _Styles(HTMLParser):
    """Collect (tag, inline style) of every element of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        style = dict(attrs).get("style") or ""
        pairs = (item.split(":", 1) for item in style.split(";") if ":" in item)
        self.found.append((tag, {k.strip(): v.strip() for k, v in pairs}))


def styles(fragment: str) -> list[tuple[str, dict[str, str]]]:
    parser = _Styles()
    parser.feed(fragment)
    return parser.found


ROW = {"id": "a", "function": "fn f() {}", "generated": "  x\n    y", "reference": "z"}


def test_generations_table_left_aligns_code_in_monospace_with_lines_kept():
    found = styles(generations_table([ROW]))
    cells = [style for tag, style in found if tag in ("td", "th")]
    blocks = [style for tag, style in found if tag == "pre"]
    assert len(cells) == 5 and all(style.get("text-align") == "left" for style in cells)
    assert len(blocks) == 3
    for style in blocks:  # <pre>-like: lines as written, no wrapping; monospace; left
        assert style["white-space"] == "pre" and style["font-family"] == "monospace"
        assert style["text-align"] == "left" and style["overflow-x"] == "auto"


def test_metrics_table_left_aligns_names_and_units_and_right_aligns_values():
    found = styles(metrics_table({"val_loss_end": 2.0, "peak_memory_bytes": 2**20}))
    aligns = [style.get("text-align") for tag, style in found if tag in ("td", "th")]
    assert aligns == ["left", "right", "left"] * 3


def test_the_html_export_keeps_code_left_aligned_and_monospace():
    # nbconvert's lab template right-aligns table cells (the rule JupyterLab has too); the
    # tables' inline styles override it and must reach the exported page unchanged.
    from nbconvert import HTMLExporter
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    cell = new_code_cell("display(HTML(generations_table(rows)))")
    html_out = generations_table([ROW]) + metrics_table({"val_loss_end": 2.0})
    cell.outputs = [new_output("display_data", data={"text/html": html_out, "text/plain": ""})]
    page, _ = HTMLExporter(template_name="lab").from_notebook_node(new_notebook(cells=[cell]))
    assert re.search(r"\.jp-RenderedHTMLCommon td,[^}]*text-align: right", page)
    body = page[page.index("<body") :]
    found = styles(body[body.index("<table") : body.rindex("</table>")])
    blocks = [style for tag, style in found if tag == "pre"]
    assert len(blocks) == 3 and all(s["white-space"] == "pre" for s in blocks)
    assert all(s["font-family"] == "monospace" and s["text-align"] == "left" for s in blocks)
    assert "<pre style='white-space:pre;" in body or '<pre style="white-space:pre;' in body
    assert "  x\n    y" in body  # indentation kept, not collapsed


def test_funnel_table_shows_each_stage_with_its_interval():
    rate = {"passed": 1, "total": 4, "rate": 0.25, "low": 0.05, "high": 0.7}
    summary = {"funnel": {"parses": rate, "passes": rate}, "mutation_score": 0.5,
               "mutants": {"caught": 2, "missed": 2}}  # fmt: skip
    html = funnel_table({"base <model>": summary, "fine-tuned": summary})
    assert html.count("1/4 = 25% [5%, 70%]") == 4 and "base &lt;model&gt;" in html
    assert "50% of 4" in html and funnel_table({}).startswith("<table>")
