"""A learner's feedback page, as Markdown (``feedback.md``) and self-contained HTML.

Both show the total, late penalty, final score and letter; each rubric check with its points
and message; the hidden checks (name, points, message from ``row["hidden"]``, never their
source); the re-verification of the runs (``row["evidence"]``); the notebooks' results.
The near-duplicate flags are not shown: they name another learner and are for the
instructor (``grades.csv``, ``grades.json``, the cohort report). The HTML page also embeds
the learner's plots (``row["plots"]``, PNG files read as bytes, never executed). Every
learner-supplied string is escaped: a name, a message or a file name is text, never markup.

Example:
    >>> page = feedback_html({"name": "<script>alert(1)</script>", "checks": []})
    >>> "<script>" in page, "&lt;script&gt;" in page
    (False, True)

Guide: docs/grading.md ("Outputs and resuming").
"""

from __future__ import annotations

import base64
import html
import os
import stat
from pathlib import Path
from typing import Any

from coursekit.grading import rubric as rubrics
from coursekit.io import atomic_open

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_PLOTS = 6
"""Plots shown per learner (the first in path order)."""
MAX_PLOT_BYTES = 1 << 20
"""Largest PNG file shown (1 MiB); larger ones are skipped."""
PLOT_FOLDERS = ("runs", "docs")
HIDDEN_IDS = frozenset({"hidden-checks", "bonus-checks"})
"""Rubric checks scored from the hidden checks, not public ones."""
CSS = (
    "body{font:15px/1.45 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}.bad{color:#a00}.ok{color:#070}"
    "figure{display:inline-block;margin:.5em}img{max-width:100%;border:1px solid #ddd}"
    ".plot img{max-width:28em}"
)


def _plot_bytes(base: Path, relative: str) -> bytes | None:
    """Return the bytes of PNG ``base/relative`` when it is a small regular file inside ``base``."""
    path = base / relative
    if ".." in Path(relative).parts or Path(relative).is_absolute():
        return None
    try:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_PLOT_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    return data if data.startswith(PNG_MAGIC) and len(data) <= MAX_PLOT_BYTES else None


def find_plots(submission: Path) -> list[str]:
    """Return up to ``MAX_PLOTS`` PNG files under ``runs/`` and ``docs/``, relative, in order.

    Only regular files (links are not followed) of at most ``MAX_PLOT_BYTES`` that start with
    the PNG signature count.

    Example:
        >>> find_plots(Path("/nonexistent"))
        []
    """
    found: list[str] = []
    for top in PLOT_FOLDERS:
        for folder, dirs, files in os.walk(submission / top, followlinks=False):
            dirs.sort()
            for name in sorted(f for f in files if f.lower().endswith(".png")):
                relative = (Path(folder) / name).relative_to(submission).as_posix()
                if _plot_bytes(submission, relative) is not None:
                    found.append(relative)
                if len(found) == MAX_PLOTS:
                    return found
    return found


def copy_plots(submission: Path, plots: list[str], folder: Path) -> None:
    """Copy the bytes of ``plots`` (from :func:`find_plots`) into ``folder`` under their paths.

    ``folder`` then serves as the ``submission`` of :func:`feedback_html` (the grades folder
    keeps the plots when the submission is gone).

    Example:
        >>> copy_plots(Path("ada"), [], Path("grades/ada/plots"))  # doctest: +SKIP
    """
    for relative in plots:
        data = _plot_bytes(submission, relative)
        if data is not None:
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(folder / relative, "wb") as handle:
                handle.write(data)


def _num(value: Any) -> str:
    return "pending" if value is None else f"{value:g}"


def public_line(row: dict[str, Any]) -> str:
    """Return the public checks' summary: all automatic ones passed, or which did not.

    The public automatic checks are the rubric's ``auto`` checks except those scored from
    hidden checks (``HIDDEN_IDS``); pending ones are not counted.

    Example:
        >>> public_line({"checks": [{"id": "coverage", "points": 8.0, "of": 8.0}], "hidden": [{}]})
        'public checks passed (1 hidden checks graded separately)'
    """
    if row.get("reason"):
        return "no checks graded: grading failed (see above)"
    auto = {k.id for c in rubrics.load_rubric().categories for k in c.checks if k.kind == "auto"}
    graded = [
        c for c in row.get("checks", []) if c["id"] in auto - HIDDEN_IDS and c["points"] is not None
    ]
    failed = [f"{c['id']} ({c['points']:g} / {c['of']:g})" for c in graded if c["points"] < c["of"]]
    hidden = f"({len(row.get('hidden', []))} hidden checks graded separately)"
    if not failed:
        return f"public checks passed {hidden}"
    return f"public checks not fully met: {', '.join(failed)} {hidden}"


def _evidence(row: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(what, ok / failed / not checked, message) for each re-verified run."""
    out = []
    for what, found in sorted((row.get("evidence") or {}).items()):
        ok = found.get("ok")
        said = {True: "ok", False: "failed"}.get(ok, "not checked")
        out.append((what, said, found.get("message", "")))
    return out


def md_cell(value: Any) -> str:
    r"""Return ``value`` as one Markdown table cell: HTML-escaped, ``|`` escaped, one line.

    Example:
        >>> print(md_cell("a|<b>\nc"))
        a\|&lt;b&gt; c
    """
    text = html.escape(str(value), quote=False).replace("|", "\\|")
    return " ".join(text.split())


def feedback_markdown(row: dict[str, Any]) -> str:
    """Return a learner's feedback page (Markdown): totals, checks, hidden checks, evidence.

    Example:
        >>> print(feedback_markdown({"name": "ada", "reason": "broken"}).splitlines()[0])
        # Feedback for ada
    """
    lines = [f"# Feedback for {md_cell(row['name'])}", ""]
    if row.get("reason"):
        lines += [f"Grading failed: {md_cell(row['reason'])}", ""]
    if "total" in row:
        late = f"late penalty {row['late_points']:g} ({row['late_days']} days)"
        lines += [f"Total {row['total']:g}, {late}, final {row['final']:g} ({row['letter']})", ""]
    lines += ["| check | points | message |", "|---|---|---|"]
    for check in row.get("checks", []):
        got = f"{_num(check['points'])} / {check['of']:g}"
        lines.append(f"| {check['id']} | {got} | {md_cell(check['message'])} |")
    lines += ["", "## Hidden checks", "", public_line(row), ""]
    if row.get("hidden"):
        lines += ["| hidden check | points | message |", "|---|---|---|"]
        for item in row["hidden"]:
            got = f"{item['points']:g} / {item['of']:g}"
            lines.append(f"| {md_cell(item['name'])} | {got} | {md_cell(item['message'])} |")
        lines.append("")
    for title, table, header in (
        ("Re-verification of your runs", _evidence(row), "| run | result | message |"),
        ("Notebooks", [(n["name"], n["status"], n["message"]) for n in row.get("notebooks", [])],
         "| notebook | status | message |"),
    ):  # fmt: skip
        if table:
            lines += [f"## {title}", "", header, "|---|---|---|"]
            lines += ["| " + " | ".join(md_cell(v) for v in entry) + " |" for entry in table] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def html_table(
    header: tuple[str, ...], body: list[tuple[Any, ...]], classes: list[str] | None = None
) -> str:
    """Return an HTML table; every cell (and header) escaped; ``classes`` per body row.

    Example:
        >>> html_table(("a",), [("<i>",)])
        '<table><tr><th>a</th></tr><tr><td>&lt;i&gt;</td></tr></table>'
    """
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    rows = []
    for i, entry in enumerate(body):
        mark = f' class="{classes[i]}"' if classes and classes[i] else ""
        rows.append(f"<tr{mark}>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in entry))
    return f"<table><tr>{head}</tr>{''.join(r + '</tr>' for r in rows)}</table>"


def page(title: str, body: list[str]) -> str:
    """Return a self-contained HTML page (inline CSS) with the escaped ``title`` and ``body``.

    Example:
        >>> page("a<b", ["<p>x</p>"]).count("a&lt;b")
        2
    """
    head = f'<meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style>'
    return (
        f'<!doctype html>\n<html lang="en"><head>{head}</head><body>\n'
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def png_figure(data: bytes, caption: str, css_class: str = "plot") -> str:
    """Return an HTML ``<figure>`` with the PNG ``data`` as a data URI and an escaped caption.

    Example:
        >>> png_figure(PNG_MAGIC, "a&b")[:49]
        '<figure class="plot"><img src="data:image/png;bas'
    """
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    text = html.escape(caption)
    mark = html.escape(css_class)
    image = f'<img src="{uri}" alt="{text}">'
    return f'<figure class="{mark}">{image}<figcaption>{text}</figcaption></figure>'


def feedback_html(row: dict[str, Any], submission: Path | None = None) -> str:
    """Return a learner's feedback page as self-contained HTML (CSS inline, plots as data URIs).

    Args:
        row: the learner's row (``result.json``).
        submission: the folder ``row["plots"]`` are relative to (the submission, or the
            grades folder's ``<name>/plots``); None: the plots are listed, not shown.

    Example:
        >>> feedback_html({"name": "ada", "total": 80.0, "late_days": 0, "late_points": 0.0,
        ...                "final": 80.0, "letter": "B", "checks": []}).count("final 80 (B)")
        1
    """
    escape = html.escape
    body = []
    if row.get("reason"):
        body.append(f'<p class="bad">Grading failed: {escape(str(row["reason"]))}</p>')
    if "total" in row:
        late = f"late penalty {row['late_points']:g} ({row['late_days']} days)"
        body.append(f"<p><b>Total {row['total']:g}, {late}, final {row['final']:g} "
                    f"({escape(str(row['letter']))})</b></p>")  # fmt: skip
    checks = row.get("checks", [])
    body += ["<h2>Rubric checks</h2>", html_table(
        ("check", "points", "message"),
        [(c["id"], f"{_num(c['points'])} / {c['of']:g}", c["message"]) for c in checks],
        ["" if c["points"] is None else "ok" if c["points"] >= c["of"] else "bad" for c in checks],
    )]  # fmt: skip
    body += ["<h2>Hidden checks</h2>", f"<p>{escape(public_line(row))}</p>"]
    if row.get("hidden"):
        body.append(html_table(
            ("hidden check", "points", "message"),
            [(h["name"], f"{h['points']:g} / {h['of']:g}", h["message"]) for h in row["hidden"]],
            ["ok" if h.get("passed") else "bad" for h in row["hidden"]],
        ))  # fmt: skip
    if evidence := _evidence(row):
        body += ["<h2>Re-verification of your runs</h2>",
                 html_table(("run", "result", "message"), evidence)]  # fmt: skip
    if notebooks := row.get("notebooks"):
        table = [(n["name"], n["status"], n["message"]) for n in notebooks]
        body += ["<h2>Notebooks</h2>", html_table(("notebook", "status", "message"), table)]
    if row.get("plots"):
        body.append("<h2>Your plots</h2>")
        for relative in row["plots"]:
            data = _plot_bytes(submission, relative) if submission else None
            body.append(png_figure(data, relative) if data else f"<p>{escape(relative)}</p>")
    return page(f"Feedback for {row['name']}", body)
