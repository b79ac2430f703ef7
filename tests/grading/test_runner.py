"""coursekit.grading.runner: papermill in the sandbox, and the judgement of its output."""

from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat
import pytest

from coursekit.evaluate import jail
from coursekit.grading.runner import RunLimits, cleared, execute, judge

V4 = nbformat.v4
NEEDS_BWRAP = jail.available("bubblewrap")


def notebook(*sources: str) -> nbformat.NotebookNode:
    """A python3 notebook of code cells."""
    nb = V4.new_notebook(cells=[V4.new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def write_submission(root: Path, notebooks: dict[str, nbformat.NotebookNode | str]) -> Path:
    """A submission folder with ``notebooks/<name>`` (a str is written as raw text)."""
    folder = root / "notebooks"
    folder.mkdir(parents=True)
    for name, content in notebooks.items():
        if isinstance(content, str):
            (folder / name).write_text(content)
        else:
            nbformat.write(content, folder / name)
    return root


def digest(folder: Path) -> str:
    """SHA-256 over every file's path and bytes."""
    sha = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            sha.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return sha.hexdigest()


def test_judge_counts_cells_without_execution_count_as_stopped(tmp_path):
    source = notebook("a = 1", "import sys; sys.exit(0)", "b = 2", "c = 3")
    out = notebook("a = 1", "import sys; sys.exit(0)", "b = 2", "c = 3")
    out.cells[0].execution_count, out.cells[1].execution_count = 1, 2
    nbformat.write(out, tmp_path / "out.ipynb")
    result = judge(source, tmp_path / "out.ipynb", "p.ipynb")
    assert (result.status, result.stopped_at, result.executed) == ("stopped", 2, 2)
    assert "stopped at cell 2 of 4" in result.message


def test_judge_refuses_an_output_whose_code_differs(tmp_path):
    out = notebook("forged = True")
    out.cells[0].execution_count = 1
    nbformat.write(out, tmp_path / "out.ipynb")
    result = judge(notebook("x = 1"), tmp_path / "out.ipynb", "p.ipynb")
    assert result.status == "invalid" and "differ" in result.message


def test_judge_names_the_error_cell(tmp_path):
    out = notebook("x = 1", "1 / 0")
    out.cells[0].execution_count, out.cells[1].execution_count = 1, 2
    out.cells[1].outputs = [
        V4.new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])
    ]
    nbformat.write(out, tmp_path / "out.ipynb")
    result = judge(notebook("x = 1", "1 / 0"), tmp_path / "out.ipynb", "p.ipynb")
    assert (result.status, result.stopped_at) == ("error", 2)
    assert "ZeroDivisionError" in result.message


def test_judge_passes_a_complete_run_and_cleared_empties_outputs(tmp_path):
    out = notebook("x = 1")
    out.cells[0].execution_count = 1
    out.cells[0].outputs = [V4.new_output("stream", text="forged\n")]
    nbformat.write(out, tmp_path / "in.ipynb")
    source = cleared(tmp_path / "in.ipynb")
    assert source.cells[0].outputs == [] and source.cells[0].execution_count is None
    assert judge(source, tmp_path / "in.ipynb", "p.ipynb").ok


def test_cleared_refuses_broken_json(tmp_path):
    (tmp_path / "x.ipynb").write_text("{not json")
    with pytest.raises(ValueError, match=r"x\.ipynb: not a valid notebook"):
        cleared(tmp_path / "x.ipynb")


def test_run_limits_are_validated():
    with pytest.raises(ValueError, match=r"RunLimits\.cell_seconds"):
        RunLimits(cell_seconds=0)


@pytest.mark.slow
@pytest.mark.skipif(bool(NEEDS_BWRAP), reason=f"needs bubblewrap ({NEEDS_BWRAP})")
def test_hostile_notebooks_each_become_a_result(tmp_path):
    other = tmp_path / "other-learner"  # another submission: invisible in the sandbox
    other.mkdir()
    (other / "secret.txt").write_text("answers")
    submission = write_submission(
        tmp_path / "learner",
        {
            "phase1_good.ipynb": notebook("x = 1", "print(x + 1)"),
            "phase2_exit.ipynb": notebook("a = 1", "import sys; sys.exit(0)", "b = 2", "c = 3"),
            "phase3_hang.ipynb": notebook("while True:\n    pass"),
            "phase3_net.ipynb": notebook(
                "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)"
            ),
            "phase4_broken.ipynb": "{not json",
            "phase4_snoop.ipynb": notebook(
                f"import os\nassert not os.path.exists({str(other)!r})\n"
                f"assert not os.path.exists({str(Path(__file__).parent)!r})",
                f"open({str(other / 'secret.txt')!r}).read()",
            ),
        },
    )
    before = digest(submission)
    results = {r.name: r for r in execute(submission, tmp_path / "work", RunLimits(cell_seconds=4))}
    assert digest(submission) == before  # the original is never written
    assert results["phase1_good.ipynb"].ok
    assert (results["phase2_exit.ipynb"].status, results["phase2_exit.ipynb"].stopped_at) == (
        "stopped",
        2,
    )
    assert "stopped at cell 2 of 4" in results["phase2_exit.ipynb"].message
    assert results["phase3_hang.ipynb"].status == "timeout"
    assert results["phase3_net.ipynb"].status == "error"
    assert "OSError" in results["phase3_net.ipynb"].message  # no route: loopback only
    assert results["phase4_broken.ipynb"].status == "invalid"
    snoop = results["phase4_snoop.ipynb"]  # cell 1's asserts hold; cell 2 cannot open the file
    assert (snoop.status, snoop.stopped_at) == ("error", 2) and "FileNotFoundError" in snoop.message


@pytest.mark.slow
@pytest.mark.skipif(bool(NEEDS_BWRAP), reason=f"needs bubblewrap ({NEEDS_BWRAP})")
def test_the_submission_time_limit_ends_a_run(tmp_path):
    submission = write_submission(
        tmp_path / "learner",
        {
            "phase1_a.ipynb": notebook("import time\ntime.sleep(600)"),
            "phase2_b.ipynb": notebook("1"),
        },
    )
    limits = RunLimits(cell_seconds=600, submission_seconds=6)
    first, second = execute(submission, tmp_path / "work", limits)
    assert first.status == "timeout" and first.seconds < 30
    assert second.status == "timeout" and "not run" in second.message
