"""Falsification: |estimate − measured| / measured ≤ 15% on the validation grid."""

from __future__ import annotations

import pytest
import torch

from coursekit.recipes.memory_validate import (
    FAST_GRID,
    GRID,
    TOLERANCE,
    ValidationRow,
    format_table,
    validate,
    worst_error,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_grid_covers_methods_checkpointing_and_attention():
    assert len(GRID) >= 8
    methods = {"full" if p.adapter is None else p.adapter.method for p in GRID}
    assert methods == {"full", "lora", "dora"}
    assert any(p.adapter is not None and p.adapter.base_quantization == "nf4" for p in GRID)
    assert {p.train.gradient_checkpointing for p in GRID} == {False, True}
    assert {p.attention for p in GRID} == {"sdpa", "eager"}
    assert len({p.adapter.rank for p in GRID if p.adapter is not None}) >= 3
    assert len({(p.train.micro_batch_size, p.train.seq_len) for p in GRID}) >= 4


def test_fast_grid_within_tolerance():
    rows = validate(FAST_GRID)
    assert worst_error(rows) <= TOLERANCE, format_table(rows)


@pytest.mark.slow
def test_full_grid_within_tolerance():
    rows = validate(GRID)
    assert len(rows) == len(GRID)
    assert worst_error(rows) <= TOLERANCE, format_table(rows)


def test_table_reports_the_worst_error():
    rows = [
        ValidationRow(name="a", estimated_bytes=110, measured_bytes=100, peak_phase="head"),
        ValidationRow(name="b", estimated_bytes=70, measured_bytes=100, peak_phase="head"),
    ]
    assert worst_error(rows) == pytest.approx(0.3)
    table = format_table(rows)
    assert "+10.0%" in table and "-30.0%" in table
    assert table.splitlines()[-1].startswith("worst |error| 30.0%") and "FAIL" in table
