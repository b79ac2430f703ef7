"""Fixtures of the workspace tests: synthetic notebooks and a completed learner workspace."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from coursekit.workspace.layout import new_workspace
from tests.workspace import complete


def notebook(*sources: str, markdown: str = "# A synthetic notebook") -> nbformat.NotebookNode:
    """A notebook of one Markdown cell and one code cell per source, with a python3 kernel."""
    cells = [nbformat.v4.new_markdown_cell(markdown)]
    cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def write(path: Path, nb: nbformat.NotebookNode) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


EXERCISE = '''def double(x):
    """Return 2x."""
    # BEGIN SOLUTION E.double
    y = 2 * x
    return y
    # END SOLUTION
'''


@pytest.fixture
def solutions(tmp_path) -> Path:
    """A source folder: Phase 1 and two Phase 3 notebooks with exercises, and two others."""
    root = tmp_path / "solutions"
    write(root / "phase1_intro.ipynb", notebook("x = 1"))
    write(root / "phase3_core.ipynb", notebook("x = 1", EXERCISE, "assert double(2) == 4"))
    write(root / "phase3_advanced.ipynb", notebook("# BEGIN SOLUTION\nz = 3\n# END SOLUTION"))
    write(root / "phase5_extra.ipynb", notebook("x = 1"))
    write(root / "notes.ipynb", notebook("x = 1"))
    return root


@pytest.fixture
def fresh(tmp_path, solutions) -> Path:
    """A new workspace (tiers A and E) released from the synthetic notebooks."""
    return new_workspace(tmp_path / "ws", name="ada", tiers=("A", "E"), notebooks=solutions)


@pytest.fixture
def completed(fresh) -> Path:
    """The new workspace filled in so that every gate passes."""
    complete.fill(fresh)
    return fresh
