"""Every notebook runs under papermill with small parameters (nbval runs the committed ones)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import nbformat
import papermill
import pytest

from coursekit.recipes.phase1_baseline import baseline_spec, run_baseline
from coursekit.record import RECORD_MIME, read_records

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
REQUIRED = {
    "val_loss_start",
    "val_loss_end",
    "tokens_per_second",
    "peak_memory_bytes",
    "wall_seconds",
    "trainable_parameters",
}


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


NOTEBOOK_PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))  # the learner's; not notebooks/instructor/
INSTRUCTOR_PATHS = sorted((NOTEBOOKS / "instructor").glob("*.ipynb"))
EXERCISE_ANSWERS = {
    "phase1_baseline.ipynb": "observations",
    "phase2_analysis.ipynb": "choices",
    "phase4_validation.ipynb": "lessons",
}


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.name)
def test_notebook_shape(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert sum("parameters" in tags(cell) for cell in code) == 1
    assert sum("exercise" in tags(cell) for cell in code) >= 1
    # nbval reads the tag; learners never see a "# NBVAL_..." comment.
    assert not [cell.source for cell in code if "NBVAL_" in cell.source]
    checked = [cell for cell in code if "nbval-check-output" in tags(cell)]
    assert checked and all(cell.get("outputs") for cell in checked)


@pytest.mark.parametrize("path", INSTRUCTOR_PATHS, ids=lambda p: p.name)
def test_instructor_notebook_shape(path):
    """An instructor's notebook is no exercise (none of the learner rules) but is papermill's:
    one parameters cell, and it is committed without outputs (it shows a class's grades)."""
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert sum("parameters" in tags(cell) for cell in code) == 1
    assert not any("exercise" in tags(cell) for cell in code)
    assert not any(cell.get("outputs") for cell in code)


# Phase 1-2 only: Phase 3 records its answers as "phase3.<tier>.answer"
# (tests/test_phase3_notebooks.py)
@pytest.mark.parametrize("path", [NOTEBOOKS / name for name in EXERCISE_ANSWERS], ids=str)
def test_exercise_answers_are_recorded_for_the_grader(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    exercises = [i for i, cell in enumerate(code) if "exercise" in tags(cell)]
    for i in exercises:  # the record sits in the next cell, out of the learner's way
        names = {
            target.id
            for node in ast.walk(ast.parse(code[i].source))
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for name in names:
            recorded = rf'coursekit\.record\("{name}", {name}[.)]'  # the value or its to_dict()
            assert re.search(recorded, code[i + 1].source), name
    answer = EXERCISE_ANSWERS.get(path.name)
    if answer is not None:
        assert answer in read_records(path)  # the committed, executed notebook holds it


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.name)
def test_records_are_silent(path):
    outputs = [
        o for cell in nbformat.read(path, as_version=4).cells for o in cell.get("outputs", [])
    ]
    records = [o for o in outputs if RECORD_MIME in o.get("data", {})]
    assert records and all(o["data"]["text/plain"] == "" for o in records)


def test_phase1_trains_behind_a_progress_bar():
    notebook = nbformat.read(NOTEBOOKS / "phase1_baseline.ipynb", as_version=4)
    (cell,) = [cell for cell in notebook.cells if "run_baseline(" in cell.source]
    streams = "".join(o.get("text", "") for o in cell.outputs if o["output_type"] == "stream")
    assert "ProgressBar(" in cell.source and not re.search(r"step=\d+", streams)
    assert len(cell.outputs) <= 4  # the bar (+ its final line), a warning at most, the curve


def test_phase1_intro_quotes_the_sample_counts_it_uses():
    notebook = nbformat.read(NOTEBOOKS / "phase1_baseline.ipynb", as_version=4)
    intro = " ".join(notebook.cells[0].source.split())
    drawn = re.search(r"draw a seeded (\d+) training and (\d+) validation samples", intro)
    kept = re.search(r"\*\*(\d+) training and (\d+) validation samples\*\*", intro)
    seq_len = re.search(r"`seq_len` = (\d+) tokens", intro)
    assert drawn and kept and seq_len
    defaults = inspect.signature(run_baseline).parameters
    assert int(drawn[1]) == defaults["max_train_examples"].default
    assert int(drawn[2]) == defaults["max_val_examples"].default
    assert int(seq_len[1]) == baseline_spec().train.seq_len
    parameters = next(cell.source for cell in notebook.cells if "parameters" in tags(cell))
    assert f"seq_len = {seq_len[1]}\n" in parameters
    records = read_records(NOTEBOOKS / "phase1_baseline.ipynb")  # run with the defaults
    assert (records["train_examples"], records["val_examples"]) == (int(kept[1]), int(kept[2]))


@pytest.mark.slow
@pytest.mark.heavy
def test_phase1_baseline_runs_under_papermill(tmp_path):
    out = tmp_path / "run"
    papermill.execute_notebook(
        str(NOTEBOOKS / "phase1_baseline.ipynb"),
        str(tmp_path / "executed.ipynb"),
        parameters={"steps": 2, "batch_size": 2, "seq_len": 256, "output_dir": str(out)},
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )
    records = read_records(tmp_path / "executed.ipynb")
    assert set(records) >= REQUIRED
    assert all(isinstance(records[name], int | float) for name in REQUIRED)
    assert (out / "loss_curve.png").is_file() and (out / "metrics.json").is_file()
    assert "observations" in records


def test_phase2_analysis_runs_under_papermill(tmp_path):
    papermill.execute_notebook(
        str(NOTEBOOKS / "phase2_analysis.ipynb"),
        str(tmp_path / "executed.ipynb"),
        parameters={"model": "qwen2.5-coder-7b", "rank": 8, "budget_gb": 16},
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )
    records = read_records(tmp_path / "executed.ipynb")
    # 7B at r=8 on q and v: 28 layers · 8 · ((3584 + 3584) + (3584 + 512)) = 2,523,136.
    assert records["trainable_qv_r8"] == 2_523_136
    assert records["trainable_all-linear_r8"] > records["trainable_attention_r8"]
    assert records["estimate_total_bytes"] > 0
    assert set(records["choices"]) >= {"core", "advanced"}


@pytest.mark.heavy  # ~25 s; CI runs its recipe through tests/recipes/test_phase4_validation.py
def test_phase4_validation_runs_under_papermill(tmp_path):
    """Both claims, before/after and the write-up check, at CI size, recorded for the grader."""
    out = tmp_path / "run"
    small = {"ranks": [4, 8], "seeds": [0, 1], "rank_steps": 2, "steps": 2,
             "max_train_examples": 8, "max_val_examples": 4}  # fmt: skip
    papermill.execute_notebook(
        str(NOTEBOOKS / "phase4_validation.ipynb"),
        str(tmp_path / "executed.ipynb"),
        parameters={"output_dir": str(out), **small},
        cwd=str(NOTEBOOKS),
        kernel_name="python3",
        progress_bar=False,
    )
    records = read_records(tmp_path / "executed.ipynb")
    steps = records["phase4.rank_claim.evidence"]
    assert [(s["rank_from"], s["rank_to"]) for s in steps] == [(4, 8)]
    assert steps[0]["n_from"] == steps[0]["n_to"] == 2
    assert records["phase4.rank_claim.holds"] == (steps[0]["excess"] <= steps[0]["bound"])
    assert len(records["phase4.memory_claim.evidence"]) == 3
    assert records["phase4.changes"] == {"method": "dora"}
    before, after = records["phase4.before"], records["phase4.after"]
    assert after["trainable_parameters"] > before["trainable_parameters"]  # DoRA's magnitudes
    assert records["own_claim"]["evidence"][0]["measured"] == after["val_loss_end"]
    assert not records["phase4.enhancement_md"]["exists"] and records["lessons"]
    assert (out / "key_metrics.png").is_file() and (out / "results.md").is_file()
