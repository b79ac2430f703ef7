"""The Phase 3 Bonus notebook (tiers I–L): its shape, its solution regions, and a papermill
run with the CI parameters whose records say every experiment worked."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import papermill
import pytest

from coursekit.record import read_records

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "phase3_bonus.ipynb"
QUICK = {"steps": 4, "resume_steps": 4, "kill_after": 2, "crate_steps": 2, "bench_steps": 1}
"""The CI parameters: every experiment, at its smallest."""
TIERS = "IJKL"


def code_cells() -> list:
    return [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_every_tier_has_an_exercise_with_a_solution_region_and_a_recorded_answer():
    cells = code_cells()
    exercises = [c.source for c in cells if "exercise" in tags(c)]
    for tier in TIERS:
        assert any(f"# BEGIN SOLUTION phase3.{tier}.answer" in s for s in exercises), tier
        recorded = [c.source for c in cells if f'"phase3.{tier}.answer"' in c.source]
        assert recorded and "exercise" not in tags(
            cells[[c.source for c in cells].index(recorded[0])]
        )
    for exercise in ("I.metrics_callback", "J.resume_state", "K.own_crate", "L.bench"):
        assert any(f"# BEGIN SOLUTION {exercise}" in s for s in exercises), exercise
    checks = "".join(c.source for c in cells)
    assert 'coursekit.check("I.metrics_callback"' in checks
    assert 'coursekit.check("J.resume_state"' in checks


def test_every_region_is_closed_in_its_cell():
    for cell in code_cells():
        lines = [line.strip() for line in cell.source.splitlines()]
        opened = 0
        for line in lines:
            if line.startswith("# BEGIN SOLUTION"):
                assert opened == 0
                opened = 1
            elif line.startswith("# END SOLUTION"):
                assert opened == 1
                opened = 0
        assert opened == 0


def test_the_committed_notebook_holds_what_its_run_measured():
    records = read_records(NOTEBOOK)
    assert records["phase3.I.check_passed"] and records["phase3.J.check_passed"]
    assert records["phase3.I.history_matches_metrics_jsonl"]
    assert records["phase3.J.yours_resumed_equals_uninterrupted"]
    assert records["phase3.J.coursekit_resumed_equals_uninterrupted"]
    assert records["phase3.J.coursekit_exit_status"] == 130
    assert records["phase3.K.own_pairs_verified"] >= 1
    assert all(isinstance(records[f"phase3.{t}.answer"], str) for t in TIERS)


@pytest.mark.heavy
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("rustc") is None, reason="Tier K needs rustc (rustup.rs)")
def test_phase3_bonus_runs_under_papermill(tmp_path):
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(tmp_path / "executed.ipynb"),
        parameters={**QUICK, "output_dir": str(tmp_path / "run")},
        cwd=str(NOTEBOOK.parent),
        kernel_name="python3",
        progress_bar=False,
    )
    records = read_records(tmp_path / "executed.ipynb")
    assert records["phase3.I.check_passed"] and records["phase3.J.check_passed"]
    assert records["phase3.I.history_matches_metrics_jsonl"]
    assert records["phase3.I.dashboard_redraws"] >= 2  # live: redrawn while the steps ran
    assert records["phase3.J.yours_resumed_equals_uninterrupted"]
    assert records["phase3.J.coursekit_resumed_equals_uninterrupted"]
    assert records["phase3.J.coursekit_exit_status"] == 130
    assert records["phase3.K.own_pairs_verified"] == 1 and records["phase3.K.pairs"] == 6
    assert records["phase3.L.lora.coursekit.tokens_per_s"] > 0
    assert records["phase3.L.dora.coursekit.tokens_per_s"] > 0
    assert all(records[f"phase3.{t}.answer"].strip() for t in TIERS)
    assert (tmp_path / "run" / "L" / "bench.json").is_file()


@pytest.mark.slow
def test_the_student_version_stops_at_its_first_stub(tmp_path):
    from coursekit.workspace.release import release_notebook
    from tests.workspace.stops import assert_stops_at_stub

    student = tmp_path / NOTEBOOK.name
    released = release_notebook(nbformat.read(NOTEBOOK, as_version=4), name=NOTEBOOK.name)
    nbformat.write(released, student)
    parameters = {**QUICK, "output_dir": str(tmp_path / "runs")}
    assert assert_stops_at_stub(student, tmp_path, **parameters) == "I.metrics_callback"
