"""``coursekit bench``'s outputs: ``bench.json`` (everything, atomic) and ``bench.md`` (tables).

``bench.md`` states the budget and has one table per method: per engine the median and
(min–max) range over the repeats of target tokens/s, steps, samples fed, seconds per step,
peak RSS, validation loss, achieved GFLOP/s and its fraction of the measured fp32 matmul
peak, and the tokens/s ratio to the fastest peer; then whether every engine was fed the same
samples (their digests), the per-adapter tokens/s of a joint multi-adapter run, and with
``--profile`` where coursekit's step time goes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from coursekit.io import atomic_open, write_json

COLUMNS: tuple[tuple[str, str, str, float], ...] = (
    ("target tok/s", "tokens_per_s", "{:.1f}", 1.0),
    ("steps", "steps", "{:.0f}", 1.0),
    ("samples fed", "samples", "{:.0f}", 1.0),
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
    for engine, summary in method["summary"].items():
        per_adapter = summary.get("tokens_per_s_per_adapter")
        if per_adapter and per_adapter["median"] != summary["tokens_per_s"]["median"]:
            lines += ["", f"{engine}: target tok/s counts every adapter of the joint run; per "
                      f"adapter {cell(per_adapter, '{:.1f}')}."]  # fmt: skip
    return lines + fed_line(method.get("fed"))


def fed_line(fed: dict[str, Any] | None) -> list[str]:
    """Return the line saying whether every engine was fed the same samples (digests).

    Example:
        >>> row = {"samples": 4, "distinct_samples": 4, "samples_digest": "ab12"}
        >>> fed_line({"engines": {"hf": [row]}, "same_set": True})
        ['', 'Samples fed: the same 4 distinct samples for every engine and repeat (digest ab12).']
    """
    if not fed:
        return []
    rows = [(e, r) for e, runs in fed["engines"].items() for r in runs]
    if fed["same_set"]:
        counts = "/".join(map(str, sorted({r["distinct_samples"] for _, r in rows})))
        digest = rows[0][1]["samples_digest"]
        return ["", f"Samples fed: the same {counts} distinct samples for every engine and "
                f"repeat (digest {digest})."]  # fmt: skip
    parts = [f"{e} {r['distinct_samples']} distinct ({r['samples_digest']})" for e, r in rows]
    return ["", "Samples fed differ between engines or repeats (under the steps budget each "
            "engine draws its own): " + ", ".join(parts) + "."]  # fmt: skip


PROFILE_NAMES: dict[str, str] = {
    "attention": "attention (RoPE, scaled dot-product, softmax)",
    "lm_head": "LM head + loss",
    "adapter_matmuls": "adapter matmuls (x·Aᵀ, h·Bᵀ)",
    "adapter_other": "adapter layers, other (scale, add, norms, NF4/QAT quantization)",
    "base_matmuls": "frozen base matmuls (q, k, v, o)",
    "mlp": "MLP (gate, up, down, SiLU)",
    "optimizer": "optimizer step + gradient clipping",
    "other": "other (embedding, norms, residuals, collation, autograd, Python)",
}
"""Row names of the profile table (``coursekit.recipes.bench.profile.GROUPS``)."""


def profile_table(profile: dict[str, Any]) -> list[str]:
    """Return the Markdown table of one method's profile: seconds per step and % per group."""
    lines = [
        f"Where coursekit's step goes (torch.profiler, {profile['steps']} steps after a warm-up, "
        f"{profile['step_seconds']:.3f} s per profiled step):",
        "",
        "| group | s/step | % of step |",
        "|---|---|---|",
    ]
    for group, numbers in profile["groups"].items():
        lines.append(f"| {PROFILE_NAMES.get(group, group)} | {numbers['seconds']:.4f} | "
                     f"{100 * numbers['fraction']:.1f} |")  # fmt: skip
    return lines


def format_markdown(report: dict[str, Any]) -> str:
    """Return ``bench.md``: settings, machine, matmul peak, one table per method, skips."""
    c, m, peak = report["config"], report["machine"], report["matmul_peak"]
    lines = [
        "# coursekit bench",
        "",
        f"Model `{c['model']}`, data `{c['data'] or 'seed set'}`: {budget_text(c)}; "
        f"micro-batch {c['batch_size']} rows × seq_len {c['seq_len']}, rank {c['rank']}, "
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
        if "profile" in method:
            lines += ["", *profile_table(method["profile"])]
    if report["skipped"]:
        pairs = ", ".join(f"{engine} {method}" for method, engine in report["skipped"])
        lines += ["", f"Skipped (the peers run lora, dora and full only): {pairs}."]
    if c.get("samples") is not None:
        lines += ["", "Equal samples: every engine trains once on the same samples, so each takes "
                  "the steps its batching needs (packing engines fewer, larger ones); compare "
                  "the validation losses at that budget."]  # fmt: skip
    lines += [
        "",
        "Each cell: the median (min–max) over repeats. The ratio's range is min/max … max/min "
        "against the fastest peer. GFLOP/s counts the model's forward + backward FLOPs of "
        "every position processed, padding included (`coursekit.recipes.bench.flops`).",
    ]
    return "\n".join(lines) + "\n"


def budget_text(config: dict[str, Any]) -> str:
    """Return the budget in words.

    Example:
        >>> budget_text({"steps": None, "samples": 160, "val_samples": 64})
        'one pass over the same 160 training samples per engine, validated on 64'
        >>> budget_text({"steps": 12, "samples": None, "val_samples": None})
        '12 optimizer steps per engine, validated on the whole val split'
    """
    validated = config.get("val_samples") or "the whole val split"
    if config.get("samples") is not None:
        return (f"one pass over the same {config['samples']} training samples per engine, "
                f"validated on {validated}")  # fmt: skip
    return f"{config['steps']} optimizer steps per engine, validated on {validated}"


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
