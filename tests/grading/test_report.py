"""coursekit.grading.report and feedback: pages, pass rates, the histogram, grades.json."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest

from coursekit.grading.batch import write_csv
from coursekit.grading.feedback import (
    MAX_PLOT_BYTES,
    PNG_MAGIC,
    copy_plots,
    feedback_html,
    find_plots,
)
from coursekit.grading.report import (
    cohort_markdown,
    distribution_figure,
    pass_rates,
    write_reports,
)
from coursekit.grading.rubric import load_rubric

EVIL = "<script>alert('x')</script>"


def _png() -> bytes:
    from matplotlib.figure import Figure

    buffer = io.BytesIO()
    Figure(figsize=(1, 1)).savefig(buffer, format="png", dpi=20)
    return buffer.getvalue()


def row(name: str, final: float = 80.0, **extra) -> dict:
    letter = next(b.letter for b in load_rubric().bands if final >= b.min)
    base = {
        "name": name, "reason": "", "total": final, "late_days": 0, "late_points": 0.0,
        "final": final, "letter": letter, "pending": ["clarity"], "categories": {},
        "checks": [{"id": "coverage", "points": 8.0, "of": 8.0, "message": ""},
                   {"id": "ruff-check", "points": 6.0, "of": 6.0, "message": ""},
                   {"id": "clarity", "points": None, "of": 3.0, "message": "pending (manual)"}],
        "hidden": [{"tier": "E", "id": "E.dora_forward/bias untouched", "name": "bias untouched",
                    "points": 1.0, "of": 1.0, "passed": True, "message": ""}],
        "evidence": {"baseline": {"ok": True, "message": ""},
                     "benchmark": {"ok": None, "message": "no benchmark runs"}},
        "notebooks": [{"name": "phase1_baseline.ipynb", "status": "executed", "message": ""}],
        "flags": [], "seconds": 10.0, "plots": [],
    }  # fmt: skip
    return {**base, **extra}


def test_pass_rates_count_full_points_of_graded_learners_without_pending():
    rows = [
        row("ada"),
        row("bob", checks=[{"id": "coverage", "points": 4.0, "of": 8.0, "message": "low"},
                           {"id": "clarity", "points": 3.0, "of": 3.0, "message": ""}],
            hidden=[{"id": "E.dora_forward/bias untouched", "name": "bias untouched",
                     "points": 0.0, "of": 1.0, "passed": False, "message": "bias scaled"}]),
        {"name": "cy", "reason": "no report", "checks": [], "final": 0.0},
    ]  # fmt: skip
    assert pass_rates(rows) == {
        "coverage": 0.5, "ruff-check": 1.0, "clarity": 1.0, "E.dora_forward/bias untouched": 0.5,
    }  # fmt: skip
    assert pass_rates([rows[2]]) == {}


def test_the_public_line_is_exact_when_all_public_checks_pass():
    page = feedback_html(row("ada", hidden=[row("x")["hidden"][0]] * 3))
    assert "public checks passed (3 hidden checks graded separately)" in page
    failed = row("bob", checks=[{"id": "coverage", "points": 4.0, "of": 8.0, "message": "low"}])
    page = feedback_html(failed)
    assert "public checks not fully met: coverage (4 / 8) (1 hidden checks graded" in page
    assert "public checks passed" not in page
    page = feedback_html({"name": "cy", "reason": "no report", "checks": [], "final": 0.0})
    assert "no checks graded: grading failed" in page and "public checks" not in page


def test_a_hostile_learner_string_is_text_everywhere(tmp_path):
    hostile = row(
        "ev<i>l", reason="", flags=[f"same adapter as {EVIL} (sha256 1a2b3c4d…)"],
        checks=[{"id": "coverage", "points": 4.0, "of": 8.0, "message": EVIL}],
        hidden=[{"id": "E.x", "name": EVIL, "points": 0.0, "of": 1.0, "passed": False,
                 "message": EVIL}],
        evidence={"baseline": {"ok": False, "message": EVIL}},
        notebooks=[{"name": EVIL, "status": "error", "message": EVIL}],
        plots=[f"runs/{EVIL}.png"],
    )  # fmt: skip
    failed = {"name": "bob", "reason": EVIL, "checks": [], "final": 0.0, "seconds": 99.0}
    write_reports(tmp_path, [hostile, failed])
    pages = [tmp_path / "ev<i>l" / "feedback.html", tmp_path / "bob" / "feedback.html"]
    pages += [tmp_path / "cohort.html", tmp_path / "cohort.md", tmp_path / "ev<i>l" / "feedback.md"]
    for path in pages:
        text = path.read_text()
        assert "<script" not in text.lower() and "<i>" not in text, path
        assert ("same adapter as" in text) == (path.name.startswith("cohort")), path
        assert "&lt;script&gt;" in text, path
    assert "| bob | " in (tmp_path / "cohort.md").read_text()


def test_plots_are_embedded_as_png_data_uris_and_nothing_else(tmp_path):
    sub = tmp_path / "ada"
    (sub / "runs" / "phase1").mkdir(parents=True)
    (sub / "docs").mkdir()
    png = _png()
    (sub / "runs" / "phase1" / "loss.png").write_bytes(png)
    (sub / "docs" / "fake.png").write_text("<svg onload=alert(1)>")  # not a PNG
    (sub / "docs" / "huge.png").write_bytes(PNG_MAGIC + b"\0" * MAX_PLOT_BYTES)
    (sub / "docs" / "link.png").symlink_to(sub / "runs" / "phase1" / "loss.png")
    for k in range(8):
        (sub / "docs" / f"p{k}.png").write_bytes(png)
    plots = find_plots(sub)
    assert plots == ["runs/phase1/loss.png", *[f"docs/p{k}.png" for k in range(5)]]
    page = feedback_html(row("ada", plots=[*plots[:1], "docs/fake.png", "../ada/docs/p1.png"]), sub)
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(u) for u in uris] == [png]  # the fake, and a path out, not shown
    assert "docs/fake.png" in page  # listed by name
    copy_plots(sub, [*plots[:2], "docs/fake.png", "/etc/passwd"], tmp_path / "kept")
    kept = tmp_path / "kept"
    kept = sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*") if p.is_file())
    assert kept == ["docs/p0.png", "runs/phase1/loss.png"]
    assert feedback_html(row("ada", plots=plots[:2]), tmp_path / "kept").count("base64,") == 2


def test_write_reports_writes_grades_json_and_the_cohort_report(tmp_path):
    rows = [row("ada", 95.0, seconds=3.0), row("bob", 72.0, seconds=30.0),
            row("cy", 55.0, seconds=12.0, flags=["same adapter as dan (sha256 1a2b3c4d…)"]),
            {"name": "dan", "reason": "workspace check gave no report", "checks": [],
             "final": 0.0, "seconds": 1.0}]  # fmt: skip
    write_reports(tmp_path, rows)
    document = json.loads((tmp_path / "grades.json").read_text())
    assert set(document) == {"schema", "rubric", "generated", "learners"}
    assert document["schema"] == 1 and document["rubric"] == load_rubric().name
    assert [r["name"] for r in document["learners"]] == ["ada", "bob", "cy", "dan"]
    text = (tmp_path / "cohort.md").read_text()
    assert "3 graded, 1 failed. Final score: mean 74.0, median 72, lowest 55, highest 95." in text
    assert "| A | 1 | 33% |" in text and "| F | 1 | 33% |" in text
    assert "| coverage | 100% | 3 / 3 |" in text
    slowest = re.findall(r"^\| (\w+) \| [\d.]+ \|", text.split("## Slowest")[1], re.M)
    assert slowest[:4] == ["bob", "cy", "ada", "dan"]
    assert "| dan | workspace check gave no report |" in text
    assert "| cy | same adapter as dan (sha256 1a2b3c4d…) |" in text
    assert (tmp_path / "cohort-distribution.png").read_bytes().startswith(PNG_MAGIC)
    html = (tmp_path / "cohort.html").read_text()
    assert html.count("data:image/png;base64,") == 1 and "<h2>Failed submissions</h2>" in html
    assert (
        "Grading failed: workspace check gave no report"
        in (tmp_path / "dan" / "feedback.html").read_text()
    )
    assert "flags" in (write_csv(tmp_path, rows)).read_text().splitlines()[0]


def test_the_histogram_counts_graded_learners_and_marks_every_band():
    rows = [row("a", 95.0), row("b", 91.0), row("c", 40.0), {"name": "d", "reason": "x"}]
    axes = distribution_figure(rows).axes[0]
    (bars,) = axes.containers  # the histogram's bars (the bands are spans, not bars)
    heights = {bar.get_x(): bar.get_height() for bar in bars if bar.get_height()}
    assert heights == {40.0: 1, 90.0: 1, 95.0: 1}  # bins of 5 points; the failed row left out
    letters = [text.get_text() for text in axes.texts]
    assert letters == sorted((b.letter for b in load_rubric().bands), reverse=True)


@pytest.mark.parametrize("name", ["ada", EVIL])
def test_cohort_markdown_tables_stay_one_line_per_learner(name):
    rows = [{"name": name, "reason": "line one\nline | two", "checks": [], "final": 0.0}]
    failed = cohort_markdown(rows).split("## Failed submissions")[1].split("##")[0]
    assert failed.strip().splitlines()[-1].endswith("| line one line \\| two |")
