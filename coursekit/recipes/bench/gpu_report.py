"""``coursekit bench --gpu``'s outputs: the machine, ``gpu.json`` (everything) and ``gpu.md``.

``gpu.md`` has the settings and the machine, the measured and nominal bf16 peaks, one table
per method (LoRA, QLoRA) with target tokens/s, seconds per step, TFLOP/s, MFU against both
peaks, peak GPU memory and validation loss, and the memory check: estimate vs
``max_memory_allocated`` per configuration, and the assumed vs fitted overhead constants.
Both files are written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from coursekit.io import atomic_open, write_json
from coursekit.recipes.bench.suite import describe_machine

MIB = 2**20
GIB = 2**30


def describe_gpu_machine(device: str) -> dict[str, Any]:
    """Return ``suite.describe_machine()`` plus the GPU, CUDA and bitsandbytes versions.

    The GPU fields are None on a CPU.

    Example:
        >>> describe_gpu_machine("cpu")["gpu_name"] is None
        True
    """
    import torch

    machine = {**describe_machine(), "gpu_name": None, "gpu_memory_bytes": None,
               "gpu_capability": None, "gpu_multiprocessors": None,
               "cuda": torch.version.cuda, "cudnn": None}  # fmt: skip
    try:
        import bitsandbytes

        machine["bitsandbytes"] = bitsandbytes.__version__
    except ImportError:
        machine["bitsandbytes"] = None
    if device != "cpu":  # pragma: no cover - GPU only
        properties = torch.cuda.get_device_properties(device)
        machine.update(
            gpu_name=properties.name, gpu_memory_bytes=properties.total_memory,
            gpu_capability=f"{properties.major}.{properties.minor}",
            gpu_multiprocessors=properties.multi_processor_count,
            cudnn=torch.backends.cudnn.version(),
        )  # fmt: skip
    return machine


def _number(value: float | None, number: str, scale: float = 1.0) -> str:
    """Return ``value`` scaled and formatted, or – for None.

    Example:
        >>> _number(0.5, "{:.0f}%", 100), _number(None, "{:.1f}")
        ('50%', '–')
    """
    return "–" if value is None else number.format(value * scale)


RUN_COLUMNS: tuple[tuple[str, str, str, float], ...] = (
    ("target tok/s", "tokens_per_s", "{:.0f}", 1.0),
    ("s/step", "step_seconds", "{:.3f}", 1.0),
    ("TFLOP/s", "achieved_flops", "{:.1f}", 1e-12),
    ("MFU measured", "flop_fraction", "{:.1%}", 1.0),
    ("MFU nominal", "nominal_fraction", "{:.1%}", 1.0),
    ("peak GPU MiB", "peak_cuda_bytes", "{:.0f}", 1 / MIB),
    ("peak RSS MiB", "peak_rss_bytes", "{:.0f}", 1 / MIB),
    ("val loss", "val_loss", "{:.4f}", 1.0),
)
"""The engine tables' columns: header, result key, number format, scale."""


def run_table(by_engine: dict[str, dict[str, Any]]) -> list[str]:
    """Return the Markdown table of one method's engines (one run each).

    Example:
        >>> run_table({"coursekit": {"tokens_per_s": 1234.0}})[2][:24]
        '| coursekit | 1234 | – |'
    """
    headers = ["engine", *(c[0] for c in RUN_COLUMNS)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for engine, result in by_engine.items():
        cells = [_number(result.get(key), fmt, scale) for _, key, fmt, scale in RUN_COLUMNS]
        lines.append("| " + " | ".join([engine, *cells]) + " |")
    return lines


def memory_lines(memory: dict[str, Any]) -> list[str]:
    """Return the memory check's table and the assumed vs fitted overhead.

    Example:
        >>> memory_lines(report["memory"])[0]  # doctest: +SKIP
        '| configuration | estimate GiB | ...'
    """
    lines = [
        "| configuration | estimate GiB | allocated GiB | error | used GiB | estimate+overhead "
        "vs used |",
        "|---|---|---|---|---|---|",
    ]
    for row in memory["rows"]:
        lines.append(
            f"| {row['name']} | {row['estimate_peak_bytes'] / GIB:.2f} | "
            f"{row['allocated_bytes'] / GIB:.2f} | {row['peak_error']:+.1%} | "
            f"{_number(row['used_bytes'], '{:.2f}', 1 / GIB)} | "
            f"{_number(row['total_error'], '{:+.1%}')} |"
        )
    assumed, fit = memory["assumed"], memory["fit"]
    lines += ["", f"Assumed overhead: context {assumed['context_bytes'] / MIB:.0f} MiB, "
              f"fragmentation {assumed['fragmentation']:.1%}."]  # fmt: skip
    if memory["context_probe_bytes"] is not None:
        lines.append(f"Bare context (in use after one tiny kernel, median over the children): "
                     f"{memory['context_probe_bytes'] / MIB:.0f} MiB.")  # fmt: skip
    if fit is None:
        lines.append(f"Fitted overhead: {memory['fit_note']}.")
    else:
        residual = max(abs(r) for r in fit["residual_bytes"]) / MIB
        errors = ", ".join(f"{e:+.1%}" for e in fit["total_error"])
        lines.append(
            f"Fitted overhead (least squares of used − allocated = c + f · allocated over "
            f"{fit['points']} points): context {fit['context_bytes'] / MIB:.0f} MiB, "
            f"fragmentation {fit['fragmentation']:.1%}; largest residual {residual:.0f} MiB; "
            f"estimate + fitted overhead vs used: {errors}."
        )
    return lines


def format_markdown(report: dict[str, Any]) -> str:
    """Return ``gpu.md``: settings, machine, peaks, the engine tables, skips, memory.

    Example:
        >>> format_markdown(report).splitlines()[0]  # doctest: +SKIP
        '# coursekit bench --gpu'
    """
    c, m, peak, nominal = (report[k] for k in ("config", "machine", "matmul_peak",
                                               "nominal_peak"))  # fmt: skip
    gpu = m["gpu_name"] or "no GPU (dry run)"
    lines = [
        "# coursekit bench --gpu",
        "",
        f"Model `{c['model']}` (random weights) on `{c['device']}`: {c['precision']} LoRA "
        f"r{c['rank']} ({c['targets']}), {c['steps']} steps × micro-batch {c['batch_size']} × "
        f"seq_len {c['seq_len']}, lr {c['lr']}, seed {c['seed']}; seed set; one run per engine.",
        "",
        f"Machine: {gpu}, {_number(m['gpu_memory_bytes'], '{:.0f} GiB', 1 / GIB)}; CUDA "
        f"{m['cuda']}; {m['cpu_model']} ({m['logical_cpus']} logical CPUs); Python "
        f"{m['python']}, torch {m['torch']}, bitsandbytes {m['bitsandbytes']}.",
        "",
        f"{c['precision']} `torch.mm` peak at the model's shapes: "
        f"{peak['peak_flops'] / 1e12:.2f} TFLOP/s measured; nominal "
        + (f"{nominal['peak_flops'] / 1e12:.1f} TFLOP/s ({nominal['matched']}, "
           f"{nominal['source']})." if nominal else "unknown for this device."),
    ]  # fmt: skip
    for method, by_engine in report["runs"].items():
        lines += ["", f"## {method}", "", *run_table(by_engine)]
    for skip in report["skipped"]:
        lines += ["", f"Skipped: {skip['method']} {skip['engine']}: {skip['reason']}."]
    if report["memory"] is not None:
        lines += ["", "## Memory estimate vs measured", "", *memory_lines(report["memory"])]
    lines += [
        "",
        "MFU: the model's forward + backward FLOPs of every position processed, padding "
        "included (`coursekit.recipes.bench.flops`), per training second, over the measured "
        "or the nominal peak. Peak GPU memory is `torch.cuda.max_memory_allocated` of the "
        "engine's own process.",
    ]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], output: str | os.PathLike[str]) -> dict[str, str]:
    """Write ``gpu.json`` and ``gpu.md`` into ``output`` (created), atomically each.

    Returns:
        File name → path written.

    Example:
        >>> write_report(report, "gpu-out")["gpu.md"]  # doctest: +SKIP
        'gpu-out/gpu.md'
    """
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "gpu.json", report)
    with atomic_open(folder / "gpu.md") as handle:
        handle.write(format_markdown(report))
    return {"gpu.json": str(folder / "gpu.json"), "gpu.md": str(folder / "gpu.md")}
