"""``coursekit bench``'s outputs: ``bench.json`` (everything, atomic) and ``bench.md`` (tables).

``bench.md`` has one table per method: per engine the median and (min–max) range over the
repeats of target tokens/s, seconds per step, peak RSS, validation loss, achieved GFLOP/s and
its fraction of the measured fp32 matmul peak, and the tokens/s ratio to the fastest peer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from coursekit.io import atomic_open, write_json

COLUMNS: tuple[tuple[str, str, str, float], ...] = (
    ("target tok/s", "tokens_per_s", "{:.1f}", 1.0),
    ("s/step", "step_seconds", "{:.3f}", 1.0),
    ("peak RSS MiB", "peak_rss_bytes", "{:.0f}", 2.0**-20),
    ("val loss", "val_loss", "{:.4f}", 1.0),
    ("GFLOP/s", "achieved_flops", "{:.2f}", 1e-9),
    ("% of peak", "flop_fraction", "{:.1f}", 100.0),
)
"""The table's columns: header, summary metric, number format, scale."""


def cell(summary: dict[str, float], number: str, scale: float = 1.0) -> str:
    """Return ``median (min–max)`` with each value scaled and formatted.

    Example:
        >>> cell({"median": 2.0, "min": 1.0, "max": 3.5, "n": 3}, "{:.1f}")
        '2.0 (1.0–3.5)'
    """
    median, low, high = (number.format(summary[k] * scale) for k in ("median", "min", "max"))
    return f"{median} ({low}–{high})"


def method_table(method: dict[str, Any]) -> list[str]:
    """Return the Markdown table of one method's engines (``suite._method_report``'s dict)."""
    peers = {r["peer"] for r in method["ratios"].values()}
    ratio_header = f"tok/s vs {peers.pop()}" if peers else "tok/s vs peer"
    headers = ["engine", *(c[0] for c in COLUMNS), ratio_header]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for engine, summary in method["summary"].items():
        row = [engine, *(cell(summary[key], number, scale) for _, key, number, scale in COLUMNS)]
        ratio = method["ratios"].get(engine)
        row.append(cell(ratio, "{:.2f}") + "×" if ratio else "–")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def format_markdown(report: dict[str, Any]) -> str:
    """Return ``bench.md``: settings, machine, matmul peak, one table per method, skips."""
    c, m, peak = report["config"], report["machine"], report["matmul_peak"]
    lines = [
        "# coursekit bench",
        "",
        f"Model `{c['model']}`, data `{c['data'] or 'seed set'}`: {c['steps']} steps × "
        f"micro-batch {c['batch_size']} × seq_len {c['seq_len']}, rank {c['rank']}, "
        f"lr {c['lr']}, seed {c['seed']}; {c['repeats']} repeats per engine, round-robin.",
        "",
        f"Machine: {m['cpu_model']} ({m['logical_cpus']} logical CPUs), {m['platform']}, "
        f"Python {m['python']}, torch {m['torch']} on {m['torch_threads']} threads; load "
        f"average {_load(m['load_before'])} before, {_load(m['load_after'])} after.",
        "",
        f"fp32 `torch.mm` peak at the model's shapes: {peak['peak_flops'] / 1e9:.2f} GFLOP/s "
        f"({peak['threads']} threads).",
    ]
    for name, method in report["methods"].items():
        lines += ["", f"## {name}", "", *method_table(method)]
    if report["skipped"]:
        pairs = ", ".join(f"{engine} {method}" for method, engine in report["skipped"])
        lines += ["", f"Skipped (the peers run lora, dora and full only): {pairs}."]
    lines += [
        "",
        "Each cell: the median (min–max) over repeats. The ratio's range is min/max … max/min "
        "against the fastest peer. GFLOP/s counts the model's forward + backward FLOPs of "
        "every position processed, padding included (`coursekit.recipes.bench.flops`).",
    ]
    return "\n".join(lines) + "\n"


def _load(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def write_report(report: dict[str, Any], output: str | os.PathLike[str]) -> dict[str, str]:
    """Write ``bench.json`` and ``bench.md`` into ``output`` (created), atomically each.

    Returns:
        File name → path written.
    """
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "bench.json", report)
    with atomic_open(folder / "bench.md") as handle:
        handle.write(format_markdown(report))
    return {"bench.json": str(folder / "bench.json"), "bench.md": str(folder / "bench.md")}
