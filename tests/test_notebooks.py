"""Every notebook runs under papermill with small parameters (nbval runs the committed ones)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill
import pytest

from coursekit.record import read_records

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


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_shape(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert sum("parameters" in tags(cell) for cell in code) == 1
    assert sum("exercise" in tags(cell) for cell in code) >= 1
    assert all(cell.get("outputs") for cell in code if "NBVAL_CHECK_OUTPUT" in cell.source)


@pytest.mark.slow
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
