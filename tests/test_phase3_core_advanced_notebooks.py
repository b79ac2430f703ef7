"""The Phase 3 notebooks (solution versions) run under papermill with CI parameters."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill
import pytest

from coursekit.record import read_records

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SMALL = {"steps": 2, "train_examples": 8, "val_examples": 2, "seq_len": 256}


def _run(name: str, tmp_path: Path, parameters: dict) -> dict:
    executed = tmp_path / f"executed-{name}"
    papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(executed),
        parameters={**parameters, "output_dir": str(tmp_path / "runs")},
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )
    return read_records(executed)


@pytest.mark.parametrize("name", ["phase3_core.ipynb", "phase3_advanced.ipynb"])
def test_every_tier_has_an_exercise_a_solution_region_and_a_recorded_answer(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    sources = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    tiers = "ABCD" if "core" in name else "EFGH"
    for tier in tiers:
        assert f"# BEGIN SOLUTION {tier}.answer" in sources
        assert f'coursekit.record("phase3.{tier}.answer", answer_{tier.lower()})' in sources
    exercises = [c for c in notebook.cells if "exercise" in c.metadata.get("tags", [])]
    assert all("# BEGIN SOLUTION" in cell.source for cell in exercises)


@pytest.mark.heavy
@pytest.mark.slow
def test_phase3_core_runs_under_papermill(tmp_path):
    records = _run("phase3_core.ipynb", tmp_path, {**SMALL, "ranks": [4, 8], "lr_steps": 8})
    assert {f"phase3.{tier}.answer" for tier in "ABCD"} <= set(records)
    assert records["phase3.C.check_passed"] and records["phase3.D.check_passed"]
    assert records["phase3.D.trap_fails"]
    # token-normalised accumulation equals the full batch up to float rounding (measured
    # ~4e-7); the mean of means on uneven micro-batches is off by ~15% (measured 0.15, 0.32)
    assert records["phase3.D.error_yours"] < 1e-5 < 1e-2 < records["phase3.D.error_mean_of_means"]
    assert records["phase3.D.error_trainer"] < 1e-5
    assert records["phase3.B.val_loss_end_yours"] == records["phase3.B.val_loss_end_mlp_preset"]
    assert records["phase3.B.trainable_yours"] > records["phase3.B.trainable_qv"]


@pytest.mark.heavy  # ~25 s; CI runs tiers E-H through tests/recipes/test_phase3*.py
def test_phase3_advanced_runs_under_papermill(tmp_path):
    records = _run("phase3_advanced.ipynb", tmp_path, {**SMALL, "tiny_steps": 10})
    assert {f"phase3.{tier}.answer" for tier in "EFGH"} <= set(records)
    assert all(records[f"phase3.{tier}.check_passed"] for tier in "EFH")
    assert records["phase3.E.gap_to_reference"] < 1e-4  # the solution is the reference's math
    assert records["phase3.F.after_int4_qat_yours"] == pytest.approx(
        records["phase3.F.after_int4_qat_coursekit"], abs=1e-5
    )
    assert records["phase3.G.gap"] < 1e-4  # joint == alone (measured 5e-7 .. 8e-6)
    assert records["phase3.H.val_loss_end_yours"] == records["phase3.H.val_loss_end_linear"]
    assert records["phase3.H.difficulty_seen_yours"] < records["phase3.H.difficulty_seen_none"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "first"),
    [("phase3_core.ipynb", "A.grid"), ("phase3_advanced.ipynb", "E.dora_forward")],
)
def test_the_student_version_stops_at_its_first_stub(tmp_path, name, first):
    from coursekit.workspace.release import release_notebook
    from tests.workspace.stops import assert_stops_at_stub

    student = tmp_path / name
    released = release_notebook(nbformat.read(NOTEBOOKS / name, as_version=4), name=name)
    nbformat.write(released, student)
    parameters = {**SMALL, "output_dir": str(tmp_path / "runs")}
    assert assert_stops_at_stub(student, tmp_path, **parameters) == first
