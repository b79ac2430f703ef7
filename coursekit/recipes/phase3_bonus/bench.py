"""Tier L: ``coursekit bench`` with tiny parameters, read back into a table.

:func:`run_bench` runs the documented command (docs/benchmarks.md) in a child process, so
every engine and method is measured in its own process as the suite does, and returns its
``bench.json``; :func:`bench_rows` flattens it into one row per method and engine with the
medians and (min–max) ranges over repeats.

Guide: docs/benchmarks.md. Used in notebooks/phase3_bonus.ipynb.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coursekit.errors import CoursekitError
from coursekit.recipes.phase3_bonus.spec import child_env


def bench_command(
    output: Path,
    *,
    model: str,
    engines: Sequence[str],
    methods: Sequence[str],
    steps: int,
    batch_size: int = 2,
    seq_len: int = 256,
    repeats: int = 1,
    threads: int = 1,
) -> list[str]:
    """Return the ``coursekit bench`` command line.

    Example:
        >>> bench_command(Path("b"), model="nano", engines=["coursekit"], methods=["lora"],
        ...               steps=2)[3:7]
        ['bench', '--output', 'b', '--model']
    """
    return [
        sys.executable, "-m", "coursekit.cli", "bench", "--output", str(output),
        "--model", model, "--engines", ",".join(engines), "--methods", ",".join(methods),
        "--steps", str(steps), "--batch-size", str(batch_size), "--seq-len", str(seq_len),
        "--repeats", str(repeats), "--threads", str(threads),
    ]  # fmt: skip


def run_bench(output: str | os.PathLike[str], **settings: Any) -> dict[str, Any]:
    """Run ``coursekit bench`` (``bench_command``'s settings) and return its ``bench.json``.

    Raises:
        CoursekitError: the command failed (the message ends with its last stderr line).
    """
    output = Path(output)
    done = subprocess.run(
        bench_command(output, **settings), env=child_env(), capture_output=True, text=True,
        timeout=1800, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CoursekitError(f"coursekit bench failed ({done.returncode}): {last}")
    return json.loads((output / "bench.json").read_text(encoding="utf-8"))


def bench_rows(bench: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (method, engine): median target tokens/s, s/step, peak RSS, val loss.

    Example:
        >>> run = {"tokens_per_s": 100.0, "step_seconds": 0.5, "peak_rss_bytes": 2**20,
        ...        "val_loss": 2.0}
        >>> bench_rows({"methods": {"lora": {"runs": {"coursekit": [run]}}}})[0]["tokens/s"]
        100.0
    """
    rows = []
    for method, result in bench["methods"].items():
        for engine, runs in result["runs"].items():
            row: dict[str, Any] = {"method": method, "engine": engine, "repeats": len(runs)}
            for key, label, scale in (
                ("tokens_per_s", "tokens/s", 1),
                ("step_seconds", "s/step", 1),
                ("peak_rss_bytes", "peak RSS MiB", 2**20),
                ("val_loss", "val loss", 1),
            ):
                values = sorted(run[key] / scale for run in runs)
                row[label] = values[len(values) // 2]
            rows.append(row)
    return rows
