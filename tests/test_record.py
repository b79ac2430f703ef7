from __future__ import annotations

import math

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook, new_output

from coursekit.record import RECORD_MIME, read_records, record


def test_records_survive_real_notebook_execution(tmp_path):
    notebook = new_notebook(
        cells=[
            new_code_cell("import coursekit\ncoursekit.record('loss', 2.5)"),
            new_code_cell("coursekit.record('steps', 10)\ncoursekit.record('loss', 1.25)"),
            new_code_cell("coursekit.record('table', {'a': [1, 2]})"),
            new_code_cell("coursekit.record('shown', 0.5, show=True)"),
        ]
    )
    NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    path = tmp_path / "run.ipynb"
    nbformat.write(notebook, path)
    assert read_records(path) == {"loss": 1.25, "steps": 10, "table": {"a": [1, 2]}, "shown": 0.5}
    # Silent by default: an empty text/plain (JupyterLab would print "No renderer could be
    # found" for a bundle with only the custom type), no stream output; show=True adds a line.
    silent = [output for cell in notebook.cells[:3] for output in cell.outputs]
    assert len(silent) == 4 and all(o["output_type"] == "display_data" for o in silent)
    assert {o["data"]["text/plain"] for o in silent} == {""}
    assert notebook.cells[3].outputs[0]["data"]["text/plain"] == "shown = 0.5"


def test_read_records_ignores_other_outputs(tmp_path):
    cell = new_code_cell("x")
    cell.outputs = [
        new_output("stream", name="stdout", text="hello"),
        new_output("display_data", data={"text/plain": "x"}),
        new_output("display_data", data={RECORD_MIME: {"name": "m", "value": 3}}),
    ]
    path = tmp_path / "n.ipynb"
    nbformat.write(new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("# t")]), path)
    assert read_records(path) == {"m": 3}


def test_outside_a_notebook_record_prints_only_when_asked(capsys):
    record("val_loss_end", 2.0)
    assert capsys.readouterr().out == ""
    record("val_loss_end", 2.0, show=True)
    assert capsys.readouterr().out == "val_loss_end = 2.0\n"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("", 1, "non-empty"),
        ("x", math.nan, "finite"),
        ("x", math.inf, "finite"),
        ("x", object(), "JSON-serialisable"),
        ("x", {"a": math.nan}, "JSON-serialisable"),
    ],
)
def test_bad_records_are_refused(name, value, message):
    with pytest.raises(ValueError, match=message):
        record(name, value)


def test_unreadable_notebook_is_named(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.ipynb"):
        read_records(bad)
    with pytest.raises(FileNotFoundError):
        read_records(tmp_path / "missing.ipynb")
