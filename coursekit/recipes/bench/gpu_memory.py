"""The GPU memory check of ``coursekit bench --gpu``: estimate vs measured, and the overhead fit.

``coursekit.memory.estimate`` predicts ``peak_bytes`` (what the allocator hands out) and adds
an *assumed* overhead for what the GPU spends beyond it: a CUDA context of 512 MiB and 5% of
the peak for the caching allocator's fragmentation (``coursekit.memory.Overhead``). This
module measures both on five configurations of the benchmark's model, each in a fresh
process (``python -m coursekit.recipes.bench.gpu_memory``), so every context and allocator
pool is its own:

- A = ``torch.cuda.max_memory_allocated`` over two training steps (``coursekit.memory.measure``),
  compared with the estimate's ``peak_bytes``;
- U = device memory in use after the steps, ``total − free`` of ``torch.cuda.mem_get_info``
  (context + every block the caching allocator reserved; it returns none of them unasked);
- then least squares over the points fits U − A = c + f · A: c is the measured context
  (bytes), f the measured fragmentation share (``fit_overhead``).

On a CPU (``--dry-run``) the same children run, A is the allocator trace of ``measure`` and
there is no U: the fit is reported as not run, with the reason.

Guide: docs/gpu.md.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from coursekit import codec
from coursekit.adapters import AdapterConfig
from coursekit.memory.estimate import OVERHEAD, estimate
from coursekit.recipes.bench.train_throughput import result_line
from coursekit.train.config import TrainConfig

MEMORY_POINTS: tuple[tuple[str, AdapterConfig | None, TrainConfig], ...] = (
    ("lora-all-r16-b4-s1024", AdapterConfig(rank=16, alpha=32, targets="all-linear"),
     TrainConfig(micro_batch_size=4, seq_len=1024, precision="bf16")),
    ("lora-qv-r16-b8-s512", AdapterConfig(rank=16, alpha=32, targets="qv"),
     TrainConfig(micro_batch_size=8, seq_len=512, precision="bf16")),
    ("lora-all-r64-b2-s2048-gc", AdapterConfig(rank=64, alpha=128, targets="all-linear"),
     TrainConfig(micro_batch_size=2, seq_len=2048, precision="bf16",
                 gradient_checkpointing=True)),
    ("qlora-all-r16-b4-s1024", AdapterConfig(rank=16, alpha=32, targets="all-linear",
                                             base_quantization="nf4"),
     TrainConfig(micro_batch_size=4, seq_len=1024, precision="bf16")),
    ("full-fp32-b2-s512", None, TrainConfig(micro_batch_size=2, seq_len=512, precision="fp32")),
)  # fmt: skip
"""The five configurations (name, adapter or None for a full fine-tune, training settings).

Their peaks spread from a few GiB to tens of GiB on the 0.5B model, so the fit can tell a
constant context from a share of the peak. The full fine-tune is fp32 because ``measure``
trains bf16 without the fp32 master copy ``estimate`` counts (``coursekit.memory.measure``)."""

DRY_RUN_SEQ_LEN = 16
"""Sequence length every point is cut to in a dry run (the tiny model, on a CPU)."""


def memory_points(*, dry_run: bool) -> list[tuple[str, AdapterConfig | None, TrainConfig]]:
    """Return ``MEMORY_POINTS``; in a dry run each sequence is cut to ``DRY_RUN_SEQ_LEN``.

    Example:
        >>> [(name, train.seq_len) for name, _, train in memory_points(dry_run=True)][0]
        ('lora-all-r16-b4-s1024@s16', 16)
    """
    if not dry_run:
        return list(MEMORY_POINTS)
    cut = {"seq_len": DRY_RUN_SEQ_LEN}
    return [
        (f"{name}@s{DRY_RUN_SEQ_LEN}", adapter, TrainConfig.from_dict({**train.to_dict(), **cut}))
        for name, adapter, train in MEMORY_POINTS
    ]


def memory_job(
    name: str, adapter: AdapterConfig | None, train: TrainConfig, *, model: str, device: str
) -> dict[str, Any]:
    """Return the JSON-ready job of one point for ``child_main``.

    Example:
        >>> memory_job("x", None, TrainConfig(), model="tiny", device="cpu")["adapter"] is None
        True
    """
    return {
        "name": name, "model": model, "device": device, "train": train.to_dict(),
        "adapter": None if adapter is None else codec.to_dict(adapter),
    }  # fmt: skip


def model_config_of(model: str) -> Any:
    """Return the ``Qwen2Config`` of a preset name, ``tiny`` or a checkpoint directory.

    Example:
        >>> model_config_of("qwen2.5-coder-0.5b").hidden_size
        896
    """
    from coursekit.presets import PRESETS, preset_config
    from coursekit.tiny import tiny_qwen2_config

    if model == "tiny":
        return tiny_qwen2_config()
    if model in PRESETS:
        return preset_config(model)
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model)


def measure_point(job: dict[str, Any]) -> dict[str, Any]:
    """Measure one point in this process: allocator peak A, and on CUDA reserved and used.

    Returns:
        ``allocated_bytes``, ``method``, and on CUDA ``reserved_bytes``, ``used_bytes``
        (``total − free`` after the steps) and ``context_probe_bytes`` (in use after the
        first tiny kernel, before any model: the bare context); None for each on a CPU.

    Example:
        >>> job = memory_job(*memory_points(dry_run=True)[0], model="tiny", device="cpu")
        >>> measure_point(job)["used_bytes"] is None  # doctest: +SKIP
        True
    """
    import torch

    from coursekit.memory.measure import measure

    adapter = None if job["adapter"] is None else codec.from_dict(AdapterConfig, job["adapter"])
    train = TrainConfig.from_dict(job["train"])
    cuda = torch.device(job["device"]).type == "cuda"
    probe = None
    if cuda:  # pragma: no cover - GPU only
        torch.zeros(1, device=job["device"])
        free, total = torch.cuda.mem_get_info(job["device"])
        probe = total - free
    measured = measure(model_config_of(job["model"]), adapter, train, device=job["device"])
    result = {"allocated_bytes": measured.peak_bytes, "method": measured.method,
              "reserved_bytes": None, "used_bytes": None, "context_probe_bytes": probe}  # fmt: skip
    if cuda:  # pragma: no cover - GPU only
        free, total = torch.cuda.mem_get_info(job["device"])
        result.update(reserved_bytes=int(torch.cuda.max_memory_reserved(job["device"])),
                      used_bytes=int(total - free))  # fmt: skip
    return result


def fit_overhead(allocated: Sequence[float], used: Sequence[float]) -> dict[str, Any]:
    """Fit U − A = c + f · A by least squares: context c (bytes) and fragmentation share f.

    Args:
        allocated: A per point (``max_memory_allocated``).
        used: U per point (device memory in use: context + reserved).

    Returns:
        ``context_bytes`` (c), ``fragmentation`` (f), ``residual_bytes`` (measured − fitted
        U − A per point) and ``points``.

    Raises:
        ValueError: fewer than two points, unequal lengths, or all A equal (f is then not
            identifiable).

    Example:
        >>> fit = fit_overhead([1e9, 3e9], [1.6e9, 3.7e9])
        >>> round(fit["context_bytes"]), round(fit["fragmentation"], 3)
        (550000000, 0.05)
    """
    a, u = np.asarray(allocated, dtype=float), np.asarray(used, dtype=float)
    if a.shape != u.shape or a.size < 2:
        raise ValueError(
            f"fit_overhead needs >= 2 points and as many used as allocated values "
            f"(got {a.size} and {u.size})"
        )
    if np.ptp(a) == 0:
        raise ValueError("fit_overhead needs points with different allocated peaks (all equal)")
    design = np.stack([np.ones_like(a), a], axis=1)  # (n, 2): [1, A]
    (c, f), *_ = np.linalg.lstsq(design, u - a, rcond=None)
    return {
        "context_bytes": float(c),
        "fragmentation": float(f),
        "residual_bytes": [float(r) for r in (u - a) - design @ np.array([c, f])],
        "points": int(a.size),
    }


def point_row(
    name: str, adapter: AdapterConfig | None, train: TrainConfig, model_config: Any,
    measured: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """Return one point's row: estimate and measurement side by side, relative errors.

    ``peak_error`` is (estimate − A) / A; ``total_error`` is (estimate with the assumed
    overhead − U) / U (None without U).

    Example:
        >>> row = point_row(name, adapter, train, config, measure_point(job))  # doctest: +SKIP
    """
    predicted = estimate(model_config, adapter, train)
    allocated, used = measured["allocated_bytes"], measured["used_bytes"]
    return {
        "name": name,
        "estimate_peak_bytes": predicted.peak_bytes,
        "estimate_total_bytes": predicted.total_bytes,
        "peak_phase": predicted.peak_phase,
        **measured,
        "peak_error": (predicted.peak_bytes - allocated) / allocated,
        "total_error": None if used is None else (predicted.total_bytes - used) / used,
    }


def check_memory(
    model: str,
    device: str,
    *,
    dry_run: bool,
    runner: Callable[[dict[str, Any]], dict[str, Any]],
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure every point (``runner`` runs one job, e.g. in a child process) and fit.

    Returns:
        ``rows`` (``point_row`` each), ``assumed`` (the documented overhead), ``fit``
        (``fit_overhead``'s dict plus ``total_error`` per point with the fitted constants) or
        None, ``fit_note`` saying why there is no fit, and ``context_probe_bytes``: the
        median over the children of the memory in use after one tiny kernel (None on a CPU).

    Example:
        >>> check_memory("tiny", "cpu", dry_run=True, runner=measure_point)["fit"]  # doctest: +SKIP
    """
    model_config = model_config_of(model)
    rows = []
    for name, adapter, train in memory_points(dry_run=dry_run):
        measured = runner(memory_job(name, adapter, train, model=model, device=device))
        rows.append(point_row(name, adapter, train, model_config, measured))
        log(f"gpu bench: memory {name}: estimate {rows[-1]['estimate_peak_bytes'] / 2**30:.2f} "
            f"GiB, measured {measured['allocated_bytes'] / 2**30:.2f} GiB")  # fmt: skip
    assumed = {"context_bytes": OVERHEAD.context_bytes, "fragmentation": OVERHEAD.fragmentation}
    probes = [row["context_probe_bytes"] for row in rows if row["context_probe_bytes"] is not None]
    probe = int(np.median(probes)) if probes else None
    if any(row["used_bytes"] is None for row in rows):
        note = "not run: device memory in use is only observable on CUDA"
        return {"rows": rows, "assumed": assumed, "fit": None, "fit_note": note,
                "context_probe_bytes": probe}  # fmt: skip
    fit = fit_overhead([r["allocated_bytes"] for r in rows], [r["used_bytes"] for r in rows])
    fit["total_error"] = [
        (r["estimate_peak_bytes"] * (1 + fit["fragmentation"]) + fit["context_bytes"]
         - r["used_bytes"]) / r["used_bytes"]
        for r in rows
    ]  # fmt: skip
    return {"rows": rows, "assumed": assumed, "fit": fit, "fit_note": "least squares",
            "context_probe_bytes": probe}  # fmt: skip


def child_main(argv: Sequence[str]) -> None:
    """The child process: measure the point of the JSON job in ``argv[0]``, print its result.

    Example:
        >>> child_main([json.dumps(job)])  # doctest: +SKIP
        RESULT {"allocated_bytes": ...}
    """
    print(result_line(measure_point(json.loads(argv[0]))), flush=True)


if __name__ == "__main__":  # pragma: no cover - the child process of the memory check
    child_main(sys.argv[1:])
