from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

from coursekit import __version__
from coursekit.errors import CoursekitError
from coursekit.workspace.gates import ruff_check_gate, ruff_format_gate
from coursekit.workspace.layout import WorkspaceConfig, load_config, new_workspace
from coursekit.workspace.release import stub_cells
from tests.workspace.conftest import notebook, write


def test_new_writes_the_submission_layout(fresh):
    files = sorted(str(p.relative_to(fresh)) for p in fresh.rglob("*") if p.is_file())
    assert files == [
        ".gitignore",
        "ENHANCEMENT.md",
        "Makefile",
        "enhancements/__init__.py",
        "enhancements/a_rank_ablation.py",
        "enhancements/e_dora.py",
        "notebooks/phase1_intro.ipynb",
        "notebooks/phase3_advanced.ipynb",
        "notebooks/phase3_core.ipynb",
        "pyproject.toml",
        "ruff.toml",
        "tests/test_a_rank_ablation.py",
        "tests/test_e_dora.py",
        "workspace.yaml",
    ]
    assert load_config(fresh) == WorkspaceConfig(
        name="ada", tiers=("A", "E"), coursekit_version=__version__
    )


def test_notebooks_are_student_versions(fresh):
    core = nbformat.read(fresh / "notebooks" / "phase3_core.ipynb", as_version=4)
    assert stub_cells(core) == [(2, ("E.double",))]
    assert "2 * x" not in core.cells[2].source


def test_stub_modules_say_what_to_build_and_where_to_read(fresh):
    text = (fresh / "enhancements" / "e_dora.py").read_text()
    assert text.startswith('"""Tier E (Advanced): DoRA')
    assert "docs/adapters.md" in text and "coursekit/adapters/dora.py" in text
    assert "tests/test_e_dora.py" in text
    assert "pytest.skip(" in (fresh / "tests" / "test_e_dora.py").read_text()
    assert "workspace check ." in (fresh / "Makefile").read_text()
    assert "\n\t$(COURSEKIT) workspace check .\n" in (fresh / "Makefile").read_text()


def test_a_fresh_workspace_is_lint_clean_and_formatted(fresh):
    assert ruff_check_gate(fresh).passed, ruff_check_gate(fresh).details
    assert ruff_format_gate(fresh).passed


def test_starter_tests_are_skipped_not_passed(fresh):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbval"],
        cwd=fresh, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "2 skipped" in done.stdout and "passed" not in done.stdout


@pytest.mark.parametrize("content", ["file", "dir"])
def test_new_never_overwrites(tmp_path, solutions, content):
    target = tmp_path / "ws"
    if content == "file":
        target.write_text("notes")
    else:
        (target / "old").mkdir(parents=True)
    with pytest.raises(CoursekitError, match="already exists and is not empty"):
        new_workspace(target, name="ada", notebooks=solutions)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["solutions", "ws"]


def test_an_empty_directory_is_used(tmp_path, solutions):
    (tmp_path / "ws").mkdir()
    assert (new_workspace(tmp_path / "ws", name="ada", notebooks=solutions) / "Makefile").is_file()


@pytest.mark.parametrize(
    ("name", "tiers", "message"),
    [
        ("Ada", ("A", "E"), "WorkspaceConfig.name must be 1-64 lowercase letters"),
        ("ada smith", ("A", "E"), "WorkspaceConfig.name must be"),
        ("a" * 65, ("A", "E"), "WorkspaceConfig.name must be"),
        ("ada", ("A",), "WorkspaceConfig.tiers must include an Advanced tier"),
        ("ada", ("A", "E", "Q"), "WorkspaceConfig.tiers must be letters A-L"),
    ],
)
def test_bad_names_and_tiers_are_refused_before_anything_is_written(
    tmp_path, solutions, name, tiers, message
):
    with pytest.raises(ValueError, match=message):
        new_workspace(tmp_path / "ws", name=name, tiers=tiers, notebooks=solutions)
    assert not (tmp_path / "ws").exists()


def test_bad_markers_leave_no_half_written_workspace(tmp_path, solutions):
    write(solutions / "phase2_bad.ipynb", notebook("# BEGIN SOLUTION"))
    with pytest.raises(CoursekitError, match="phase2_bad:cell 2:line 1"):
        new_workspace(tmp_path / "ws", name="ada", notebooks=solutions)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["solutions"]


def test_a_bad_workspace_yaml_names_file_line_and_field(fresh):
    (fresh / "workspace.yaml").write_text("name: ada\ntiers: [A, B]\ncoursekit_version: '1'\n")
    with pytest.raises(CoursekitError, match=r"workspace\.yaml:2: .*Advanced tier"):
        load_config(fresh)


def test_the_course_notebooks_are_released(tmp_path):
    root = new_workspace(tmp_path / "ws", name="bo", tiers=("B", "F", "J"))
    names = sorted(p.name for p in (root / "notebooks").glob("*.ipynb"))
    assert {"phase1_baseline.ipynb", "phase2_analysis.ipynb"} <= set(names)
    assert all(name.startswith(("phase1", "phase2", "phase3", "phase4")) for name in names)
    phase1 = nbformat.read(root / "notebooks" / "phase1_baseline.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in phase1.cells if c.cell_type == "code")
    assert (root / "enhancements" / "j_resume.py").is_file()


def test_a_missing_notebooks_folder_says_how_to_point_at_one(tmp_path):
    with pytest.raises(CoursekitError, match="no notebooks folder there; pass --notebooks DIR"):
        new_workspace(tmp_path / "ws", name="ada", notebooks=tmp_path / "nowhere")
    assert not (tmp_path / "ws").exists()
