"""The throughput benchmark's logic: both engines for one step on tiny, results, the table."""

from __future__ import annotations

import pytest

from coursekit.data.corpus import seed_dir
from coursekit.recipes.bench.train_throughput import (
    format_report,
    measure_engine,
    parse_result,
    result_line,
)

ONE_STEP = {"model": "tiny", "data": str(seed_dir()), "steps": 1, "batch_size": 1,
            "seq_len": 256, "rank": 2, "lr": 1e-3, "seed": 0}  # fmt: skip


@pytest.mark.parametrize("engine", ["coursekit", "hf"])
def test_an_engine_reports_tokens_seconds_memory_and_loss(engine, tiny_dir):
    result = measure_engine(engine, **ONE_STEP)
    assert result["target_tokens"] > 0 and result["train_seconds"] > 0
    assert result["tokens_per_s"] == result["target_tokens"] / result["train_seconds"]
    assert result["peak_rss_bytes"] > 0 and result["wall_seconds"] >= result["train_seconds"]
    assert 0 < result["val_loss"] < 20


def test_result_round_trips_through_the_child_stdout():
    result = {"tokens_per_s": 10.0, "val_loss": 1.5}
    stdout = "noise\n" + result_line({"old": 1}) + "\n" + result_line(result) + "\nmore\n"
    assert parse_result(stdout) == result
    assert parse_result("no result here\n") is None


def test_table_and_speedup():
    row = {"target_tokens": 1000, "train_seconds": 2.0, "peak_rss_bytes": 2**30,
           "val_loss": 1.23456}  # fmt: skip
    results = {"hf": {**row, "tokens_per_s": 500.0}, "coursekit": {**row, "tokens_per_s": 1500.0}}
    lines = format_report(results).splitlines()
    assert lines[0].split()[:3] == ["engine", "target", "tok/s"]
    assert lines[1].split() == ["hf", "500.0", "1000", "2.0", "1024", "1.2346"]
    assert lines[-1] == "coursekit / HF target tokens/s: 3.00x"
