"""The outputs of an ablation: ``cells.csv``, ``table.csv``, figures and ``report.md``.

Split from :mod:`coursekit.recipes.ablate`, which runs the grid; this module only writes what
it measured: per setting, the mean ± sample std and the Student t interval over seeds
(:func:`coursekit.experiments.grid.aggregate`), and, when rank is the only axis, the verdict
of "a higher rank does not decrease quality" (:mod:`coursekit.experiments.rank`).

Guide: docs/experiments.md ("Rank ablation (Tier A)").
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from coursekit.experiments import grid, rank_does_not_decrease_quality
from coursekit.io import atomic_open

if TYPE_CHECKING:
    from coursekit.recipes.ablate import AblationConfig

METRICS: Mapping[str, tuple[str, float, str]] = MappingProxyType({
    "val_loss": ("val loss", 1.0, ".4f"),
    "tokens_per_s": ("tokens/s", 1.0, ",.0f"),
    "peak_memory_bytes": ("peak memory (MiB)", 2.0**-20, ",.1f"),
    "trainable_parameters": ("trainable parameters", 1.0, ",.0f"),
    "train_seconds": ("train seconds", 1.0, ".1f"),
    "eval_compiles_and_runs": ("compiles and runs", 1.0, ".3f"),
    "eval_passes": ("passes", 1.0, ".3f"),
    "eval_summary_score": ("summary score", 1.0, ".3f"),
})  # fmt: skip
"""Metrics of the report (column title, scale, format); ``table.csv`` has every metric."""


def write_outputs(
    config: AblationConfig, out: Path, cells: Sequence[grid.Cell], records: Sequence[dict]
) -> tuple[tuple[grid.Group, ...], dict[str, Path]]:
    """Write ``cells.csv``, ``table.csv``, the figures and ``report.md``.

    Returns:
        The groups over seeds and the files written (name → path).
    """
    from coursekit.display import plots

    metrics = [(cell, r["metrics"]) for cell, r in zip(cells, records, strict=True)]
    groups = grid.group_by_setting(metrics, confidence=config.confidence)
    files = {name: out / name for name in ("ablation.yaml", "cells.csv", "table.csv", "report.md")}
    _write_csv(files["cells.csv"], [
        {"cell": r["name"], **{p: grid.slug(v) if isinstance(v, tuple) else v
                               for p, v in r["setting"].items()},
         "seed": r["seed"], "process": r["process"], **r["metrics"]} for r in records
    ])  # fmt: skip
    names = list(dict.fromkeys(name for r in records for name in r["metrics"]))
    _write_csv(files["table.csv"], grid.table_rows(groups, names))
    axis = "adapter.rank" if "adapter.rank" in config.axes else next(iter(config.axes), None)
    for name, figure in plots.ablation_figures(groups, axis, config.confidence).items():
        files[name] = _save(figure, out / name)
    with atomic_open(files["report.md"]) as handle:
        handle.write(_report(config, groups, records, files))
    return tuple(groups), files


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    with atomic_open(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)


def _save(figure: Any, path: Path) -> Path:
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    return path


def _entry(summary: grid.Aggregate | None, scale: float, spec: str) -> str:
    """``mean ± std [low, high]`` in ``spec``'s format; the mean alone without a spread."""
    if summary is None:
        return "—"
    if not summary.std:
        return format(summary.mean * scale, spec)
    mean, std, low, high = (format(v * scale, spec) for v in
                            (summary.mean, summary.std, summary.low, summary.high))  # fmt: skip
    return f"{mean} ± {std} [{low}, {high}]"


def _report(
    config: AblationConfig,
    groups: Sequence[grid.Group],
    records: Sequence[dict[str, Any]],
    files: Mapping[str, Path],
) -> str:
    """Return ``report.md``: the grid, the table over seeds, notes, figures and the verdict."""
    shown = [m for m in METRICS if any(g.metrics.get(m) for g in groups)]
    axes = " × ".join(f"{p} ∈ {{{', '.join(map(str, v))}}}" for p, v in config.axes.items())
    shared = sum(r["process"] != "own" for r in records)
    lines = [
        f"# Ablation: {axes or 'the base run'} × seeds {list(config.seeds)}", "",
        f"{len(records)} runs ({len(groups)} settings × {len(config.seeds)} seeds) of the base "
        f"run in `ablation.yaml` (model `{config.base.model}`, method `{config.base.method}`), "
        "each an ordinary run folder named by its setting and seed.", "",
        "| setting | seeds | " + " | ".join(METRICS[m][0] for m in shown) + " |",
        "|---|---|" + "---|" * len(shown),
        *(f"| {g.label} | {len(g.seeds)} | "
          + " | ".join(_entry(g.metrics.get(m), *METRICS[m][1:]) for m in shown) + " |"
          for g in groups),
        "", f"Each entry: mean ± sample standard deviation [{config.confidence:.0%} Student t "
        "interval of the mean] over the seeds; the mean alone when the seeds agree or there is "
        "one. Every number: `table.csv` (per setting) and `cells.csv` (per run).", "",
        "Peak memory is each run's own process high-water mark: on CPU its resident set "
        "(`ru_maxrss`: interpreter, libraries and data included, not only tensors), on CUDA "
        "`max_memory_allocated`." + (
            f" {shared} of {len(records)} runs trained in one shared process (`--in-process`): "
            "on CPU each one's peak includes the runs before it, so compare memory only "
            "between runs trained in their own process." if shared else ""), "",
        *(f"![{name}]({name})" for name in files if name.endswith(".png")),
    ]  # fmt: skip
    return "\n".join(lines + _verdict(config, records)) + "\n"


def _verdict(config: AblationConfig, records: Sequence[dict[str, Any]]) -> list[str]:
    """The rank claim's verdict, when rank is the only axis and every run has a val loss."""
    losses: dict[int, list[float]] = {}
    for r in records:
        losses.setdefault(r["setting"].get("adapter.rank"), []).append(r["metrics"]["val_loss"])
    if list(config.axes) != ["adapter.rank"] or len(losses) < 2:
        return []
    if any(loss is None for values in losses.values() for loss in values):
        return []
    verdict = rank_does_not_decrease_quality(losses)
    return ["", "## A higher rank does not decrease quality", "", verdict.to_markdown()]
