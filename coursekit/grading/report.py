"""The grading outputs over a class: ``grades.json``, feedback pages, the cohort report.

:func:`write_reports` writes, atomically, into the grades folder: ``<name>/feedback.md`` and
``<name>/feedback.html`` per learner (:mod:`coursekit.grading.feedback`), ``grades.json``
(``{"schema": 1, "rubric", "generated", "learners": [rows]}``), and the cohort report
``cohort.md`` / ``cohort.html`` with ``cohort-distribution.png``: learners graded and failed,
the final scores' histogram and letters, per-check pass rates (:func:`pass_rates`), the
slowest submissions, the failed ones with their reasons, and the near-duplicate flags.

Example:
    >>> rows = [{"name": "ada", "reason": "", "final": 91.0, "letter": "A", "seconds": 12.0,
    ...          "checks": [{"id": "coverage", "points": 8.0, "of": 8.0}]},
    ...         {"name": "bob", "reason": "", "final": 55.0, "letter": "F", "seconds": 9.0,
    ...          "checks": [{"id": "coverage", "points": 4.0, "of": 8.0}]}]
    >>> pass_rates(rows)
    {'coverage': 0.5}

Guide: docs/grading.md ("Outputs and resuming").
"""

from __future__ import annotations

import html
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from coursekit.grading import rubric as rubrics
from coursekit.grading.feedback import (
    feedback_html,
    feedback_markdown,
    html_table,
    md_cell,
    page,
    png_figure,
)
from coursekit.io import atomic_open

__all__ = [
    "cohort_html", "cohort_markdown", "distribution_figure", "feedback_html", "pass_rates",
    "write_reports",
]  # fmt: skip
SCHEMA = 1
"""Version of ``grades.json``'s layout."""
FIGURE = "cohort-distribution.png"
SLOWEST = 5
"""Slowest submissions listed in the cohort report."""


def _graded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows that were scored (no ``reason``)."""
    return [row for row in rows if not row.get("reason")]


def pass_counts(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Return ``{check id: (learners with full points, learners scored)}``; pending excluded.

    Rubric checks come from ``row["checks"]``, hidden checks (their ``id``) from
    ``row["hidden"]``; rows with a ``reason`` are not counted.

    Example:
        >>> pass_counts([{"name": "ada", "checks": [{"id": "x", "points": None, "of": 2.0}]}])
        {}
    """
    counts: dict[str, list[int]] = {}
    for row in _graded(rows):
        for item in [*row.get("checks", []), *row.get("hidden", [])]:
            if item.get("points") is None:
                continue
            count = counts.setdefault(item["id"], [0, 0])
            count[0] += item["points"] >= item["of"]
            count[1] += 1
    return {key: (full, scored) for key, (full, scored) in counts.items()}


def pass_rates(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Return ``{check id: share of graded learners with full points}`` (rubric and hidden).

    Graded learners are the rows without a ``reason``; a pending check (points None) is not
    counted for that learner, and a check pending for everyone is absent.

    Example:
        >>> pass_rates([{"name": "ada", "hidden": [{"id": "E.x", "points": 1.0, "of": 2.0}]}])
        {'E.x': 0.0}
    """
    return {key: full / scored for key, (full, scored) in pass_counts(rows).items()}


def distribution_figure(rows: list[dict[str, Any]]):
    """Return a matplotlib ``Figure``: histogram of graded learners' ``final``, bands shaded.

    Each rubric band (A ≥ 90, B ≥ 80, ...) is a shaded span labelled with its letter; rows
    with a ``reason`` are left out. No pyplot state is touched.

    Example:
        >>> distribution_figure([{"name": "ada", "final": 91.0}]).axes[0].get_xlabel()
        'final score (1 learners graded)'
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rubric = rubrics.load_rubric()
    finals = [row["final"] for row in _graded(rows)]
    top = 100 + rubric.bonus_cap
    figure = Figure(figsize=(7, 3.2), layout="constrained")
    axes = figure.add_subplot()
    edges = sorted({0.0, *(band.min for band in rubric.bands), top})
    bands = sorted(rubric.bands, key=lambda band: band.min)
    for i, band in enumerate(bands):
        high = bands[i + 1].min if i + 1 < len(bands) else top
        axes.axvspan(band.min, high, color=f"C{i}", alpha=0.12, lw=0)
        axes.text((band.min + high) / 2, 1.0, band.letter, transform=axes.get_xaxis_transform(),
                  ha="center", va="bottom")  # fmt: skip
    axes.hist(finals, bins=[x for x in range(0, int(top) + 1, 5)], color="0.3", edgecolor="w")
    axes.set_xlim(0, top)
    axes.set_xticks(edges)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(f"final score ({len(finals)} learners graded)")
    axes.set_ylabel("learners")
    return figure


def distribution_png(rows: list[dict[str, Any]]) -> bytes:
    r"""Return :func:`distribution_figure` as PNG bytes (100 dpi), e.g. for a notebook.

    Example:
        >>> distribution_png([{"name": "ada", "final": 80.0, "reason": ""}])[:4]
        b'\x89PNG'
    """
    buffer = io.BytesIO()
    distribution_figure(rows).savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _tables(rows: list[dict[str, Any]]) -> dict[str, tuple[tuple[str, ...], list[tuple]]]:
    """The cohort report's tables as (header, body), shared by Markdown and HTML."""
    graded = _graded(rows)
    letters = [band.letter for band in rubrics.load_rubric().bands]
    count = {letter: sum(row.get("letter") == letter for row in graded) for letter in letters}
    share = {k: f"{v / len(graded):.0%}" if graded else "-" for k, v in count.items()}
    counts = pass_counts(rows).items()
    rates = [(key, f"{full / n:.0%}", f"{full} / {n}") for key, (full, n) in counts]
    timed = sorted((r for r in rows if r.get("seconds") is not None), key=lambda r: -r["seconds"])
    return {
        "Letters": (("letter", "learners", "share"), [(k, count[k], share[k]) for k in letters]),
        "Pass rate per check (full points; pending excluded)":
            (("check", "pass rate", "learners"), rates),
        "Slowest submissions": (("learner", "seconds", "result"), [
            (r["name"], f"{r['seconds']:.1f}", r.get("reason") or f"{r['final']:g}")
            for r in timed[:SLOWEST]]),
        "Failed submissions": (("learner", "reason"),
                               [(r["name"], r["reason"]) for r in rows if r.get("reason")]),
        "Flags for a human (no penalty)": (("learner", "flags"), [
            (r["name"], "; ".join(r["flags"])) for r in rows if r.get("flags")]),
    }  # fmt: skip


def _headline(rows: list[dict[str, Any]]) -> str:
    graded = sorted(row["final"] for row in _graded(rows))
    said = f"{len(graded)} graded, {len(rows) - len(graded)} failed."
    if graded:
        median = graded[len(graded) // 2] if len(graded) % 2 else sum(
            graded[len(graded) // 2 - 1 : len(graded) // 2 + 1]) / 2  # fmt: skip
        mean = sum(graded) / len(graded)
        said += f" Final score: mean {mean:.1f}, median {median:g}, "
        said += f"lowest {graded[0]:g}, highest {graded[-1]:g}."
    notes = sorted({row["protection"] for row in rows if row.get("protection")})
    return said + "".join(f" Warning: {note}" for note in notes)


def cohort_markdown(rows: list[dict[str, Any]]) -> str:
    """Return the cohort report as Markdown (the histogram linked as ``cohort-distribution.png``).

    Example:
        >>> print(cohort_markdown([{"name": "ada", "reason": "no report"}]).splitlines()[2])
        0 graded, 1 failed.
    """
    lines = ["# Cohort report", "", _headline(rows), "", f"![final scores]({FIGURE})", ""]
    for title, (header, body) in _tables(rows).items():
        lines += [f"## {title}", ""]
        if not body:
            lines += ["none", ""]
            continue
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(md_cell(v) for v in entry) + " |" for entry in body] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def cohort_html(rows: list[dict[str, Any]], figure: bytes | None = None) -> str:
    """Return the cohort report as self-contained HTML (the histogram as a data URI).

    Example:
        >>> "<h2>Failed submissions</h2>" in cohort_html([], figure=b"")
        True
    """
    png = distribution_png(rows) if figure is None else figure
    body = [f"<p>{html.escape(_headline(rows))}</p>", png_figure(png, "final scores", "wide")]
    for title, (header, entries) in _tables(rows).items():
        table = html_table(header, entries) if entries else "<p>none</p>"
        body += [f"<h2>{html.escape(title)}</h2>", table]
    return page("Cohort report", body)


def _write(path: Path, text: str | bytes) -> None:
    with atomic_open(path, "wb" if isinstance(text, bytes) else "w") as handle:
        handle.write(text)


def write_reports(out: Path, rows: list[dict[str, Any]]) -> None:
    """Write the feedback pages, ``grades.json`` and the cohort report into ``out`` (atomic).

    Per row ``out/<name>/feedback.md`` and ``feedback.html`` (plots from ``out/<name>/plots``),
    then ``out/grades.json``, ``out/cohort.md``, ``out/cohort.html`` and
    ``out/cohort-distribution.png``. Rows are written in name order.

    Example:
        >>> write_reports(Path("grades"), rows)  # doctest: +SKIP
    """
    out = Path(out)
    rows = sorted(rows, key=lambda row: row["name"])
    for row in rows:
        folder = out / row["name"]
        folder.mkdir(parents=True, exist_ok=True)
        _write(folder / "feedback.md", feedback_markdown(row))
        _write(folder / "feedback.html", feedback_html(row, folder / "plots"))
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    document = {"schema": SCHEMA, "rubric": rubrics.load_rubric().name, "generated": generated,
                "learners": rows}  # fmt: skip
    _write(out / "grades.json", json.dumps(document, indent=2) + "\n")
    png = distribution_png(rows)
    _write(out / FIGURE, png)
    _write(out / "cohort.md", cohort_markdown(rows))
    _write(out / "cohort.html", cohort_html(rows, figure=png))
