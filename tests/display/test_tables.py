from __future__ import annotations

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


def test_generations_table_left_aligns_code_in_monospace():
    row = {"id": "a", "function": "fn f() {}", "generated": "x", "reference": "y"}
    html = generations_table([row])
    assert html.count("text-align:left") >= 5 and "text-align:right" not in html
    assert html.count("font-family:monospace") == 3


def test_funnel_table_shows_each_stage_with_its_interval():
    rate = {"passed": 1, "total": 4, "rate": 0.25, "low": 0.05, "high": 0.7}
    summary = {"funnel": {"parses": rate, "passes": rate}, "mutation_score": 0.5,
               "mutants": {"caught": 2, "missed": 2}}  # fmt: skip
    html = funnel_table({"base <model>": summary, "fine-tuned": summary})
    assert html.count("1/4 = 25% [5%, 70%]") == 4 and "base &lt;model&gt;" in html
    assert "50% of 4" in html and funnel_table({}).startswith("<table>")
