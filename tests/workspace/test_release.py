from __future__ import annotations

import json

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.errors import CoursekitError
from coursekit.workspace.release import (
    find_regions,
    release,
    release_notebook,
    stub_cells,
    stub_line,
)
from tests.workspace.conftest import EXERCISE, notebook, write
from tests.workspace.stops import assert_stops_at_stub


def test_a_region_becomes_one_stub_line_at_its_indentation():
    nb = notebook("import math", EXERCISE)
    student = release_notebook(nb, name="p3")
    assert student.cells[2].source == (
        'def double(x):\n    """Return 2x."""\n' + stub_line("E.double", "    ") + "\n"
    )
    assert "BEGIN SOLUTION" in nb.cells[2].source  # the input is left as it was
    assert stub_cells(student) == [(2, ("E.double",))]


def test_the_stub_names_the_exercise_its_guide_and_the_workspace_section():
    line = stub_line("E.dora_forward")
    message = eval(line.removeprefix("raise NotImplementedError(").removesuffix(")"))
    assert message == (
        "Exercise E.dora_forward: write your solution here; see docs/adapters.md and "
        "docs/course.md#your-workspace"
    )


def test_ids_fall_back_to_notebook_and_region_number_across_cells():
    nb = notebook(
        "# BEGIN SOLUTION\na = 1\n# END SOLUTION",
        "# BEGIN SOLUTION C.suggest\nb = 2\n# END SOLUTION\n   ### BEGIN SOLUTION\nc = 3\n"
        "### END SOLUTION",
    )
    assert stub_cells(release_notebook(nb, name="phase3")) == [
        (1, ("phase3.1",)),
        (2, ("C.suggest", "phase3.3")),
    ]


def test_outputs_counts_and_run_metadata_are_cleared():
    nb = notebook("print(1)")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells[1].execution_count = 4
    nb.metadata["papermill"] = {"duration": 1.0}
    nb.metadata["widgets"] = {"state": {}}
    student = release_notebook(nb, name="p")
    assert student.cells[1].outputs == [] and student.cells[1].execution_count is None
    assert "papermill" not in student.metadata and "widgets" not in student.metadata
    assert stub_cells(student) == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION",
         "p:cell 2:line 3: BEGIN SOLUTION inside the region opened at line 2"),
        ("x = 1\n\n# END SOLUTION", "p:cell 2:line 3: END SOLUTION without a BEGIN"),
        ("# BEGIN SOLUTION\nx = 1", "p:cell 2:line 1: BEGIN SOLUTION is never closed"),
        ("# BEGIN SOLUTION\n# END SOLUTION now", "p:cell 2:line 2: unexpected 'now' after END"),
        ("# BEGIN SOLUTION E.a b\n# END SOLUTION", "p:cell 2:line 1: 'E.a b' is not an exercise"),
    ],
)  # fmt: skip
def test_bad_markers_name_notebook_cell_and_line(source, message):
    with pytest.raises(CoursekitError, match="^" + message.replace(".", r"\.")):
        release_notebook(notebook(source), name="p")


def test_an_id_used_twice_is_refused():
    region = "# BEGIN SOLUTION E.x\nx = 1\n# END SOLUTION"
    with pytest.raises(CoursekitError, match=r"^p:cell 3:line 1: exercise E\.x is already used"):
        release_notebook(notebook(region, region), name="p")


def test_markdown_cells_are_left_alone():
    nb = notebook("x = 1", markdown="# BEGIN SOLUTION")
    assert release_notebook(nb, name="p").cells[0].source == "# BEGIN SOLUTION"


LINE = st.sampled_from(["x = 1", "", "# a comment", "    y = x", "print('BEGIN')"])


@settings(deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.lists(LINE, max_size=4), st.booleans()), max_size=6))
def test_released_source_is_the_code_outside_regions_plus_one_stub_each(chunks):
    source, expected = [], []
    for lines, is_region in chunks:
        if is_region:
            source += ["  # BEGIN SOLUTION", *lines, "  # END SOLUTION"]
            expected.append(None)
        else:
            source += lines
            expected += lines
    regions = find_regions("\n".join(source), where="nb:cell 1")
    assert len(regions) == sum(is_region for _, is_region in chunks)
    student = release_notebook(notebook("\n".join(source)), name="nb").cells[1].source
    kept = [line for line in student.split("\n") if "NotImplementedError" not in line]
    assert "\n".join(kept) == "\n".join(line for line in expected if line is not None)
    assert student.count("raise NotImplementedError") == len(regions)


def test_release_writes_every_matching_notebook_or_none(tmp_path, solutions):
    written = release(solutions, tmp_path / "out", pattern="phase[1-4]*.ipynb")
    assert [p.name for p in written] == [
        "phase1_intro.ipynb",
        "phase3_advanced.ipynb",
        "phase3_core.ipynb",
    ]
    assert json.loads(written[2].read_text())["cells"][2]["metadata"]["coursekit"] == {
        "stubs": ["E.double"]
    }
    write(solutions / "phase4_bad.ipynb", notebook("# END SOLUTION"))
    with pytest.raises(CoursekitError, match="phase4_bad:cell 2:line 1"):
        release(solutions, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


def test_release_refuses_to_overwrite_the_sources_or_to_find_nothing(tmp_path, solutions):
    with pytest.raises(CoursekitError, match="overwrite the solutions"):
        release(solutions, solutions / ".")
    with pytest.raises(CoursekitError, match="no notebook matches"):
        release(tmp_path / "empty", tmp_path / "out")


def test_a_broken_notebook_is_one_line_naming_it(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bad.ipynb").write_text("{not json")
    with pytest.raises(CoursekitError, match=r"bad\.ipynb: cannot read the notebook"):
        release(tmp_path / "src", tmp_path / "out")


@pytest.mark.slow
def test_solution_runs_and_student_version_stops_at_the_first_stub(tmp_path, solutions):
    import papermill

    source = solutions / "phase3_core.ipynb"
    papermill.execute_notebook(str(source), str(tmp_path / "solved.ipynb"),
                               kernel_name="python3", progress_bar=False)  # fmt: skip
    (student,) = release(solutions, tmp_path / "student", pattern="phase3_core.ipynb")
    assert assert_stops_at_stub(student, tmp_path) == "E.double"


@pytest.mark.slow
def test_the_helper_catches_an_error_before_the_stub(tmp_path):
    nb = notebook("1 / 0", "# BEGIN SOLUTION E.x\nx = 1\n# END SOLUTION")
    student = write(tmp_path / "p.ipynb", release_notebook(nb, name="p"))
    with pytest.raises(AssertionError, match="stopped at a ZeroDivisionError"):
        assert_stops_at_stub(student, tmp_path)
