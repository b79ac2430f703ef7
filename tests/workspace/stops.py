"""Test helper: a released notebook stops at its first stub and nowhere before it.

``assert_stops_at_stub(path, workdir)`` executes a student notebook with papermill and
asserts that (1) execution stops with an error, (2) the error is the friendly
``NotImplementedError`` of a stub of that notebook (by default the first stub in cell order,
found with ``stub_cells``), and (3) every code cell before the failing one ran without an
error. Phase 3 notebooks' tests call it on their released versions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError

from coursekit.workspace.release import stub_cells


def _first_error(notebook: Any) -> int | None:
    """Index of the first code cell with an error output."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and any(o.output_type == "error" for o in cell.outputs):
            return index
    return None


def assert_stops_at_stub(
    released: Path, workdir: Path, *, expected: str | None = None, **parameters: Any
) -> str:
    """Execute ``released`` and check it stops at a stub; return the failing exercise's id."""
    notebook = nbformat.read(released, as_version=4)
    stubs = stub_cells(notebook)
    assert stubs, f"{released} has no stub cell (no solution region was released)"
    expected = expected or stubs[0][1][0]
    executed = workdir / f"executed-{released.name}"
    try:
        papermill.execute_notebook(
            str(released), str(executed), parameters=parameters, cwd=str(workdir),
            kernel_name="python3", progress_bar=False,
        )  # fmt: skip
    except PapermillExecutionError as error:
        raised = error
    else:
        raise AssertionError(f"{released.name} ran to the end: no stub stopped it")
    assert raised.ename == "NotImplementedError", (
        f"{released.name} stopped at a {raised.ename} ({raised.evalue}), not at a stub"
    )
    assert raised.evalue.startswith(f"Exercise {expected}:"), (
        f"{released.name} stopped at {raised.evalue!r}, expected exercise {expected}"
    )
    result = nbformat.read(executed, as_version=4)
    failing = _first_error(result)
    assert failing is not None
    before = [c for c in result.cells[:failing] if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in before), "a cell before the stub did not run"
    return expected
