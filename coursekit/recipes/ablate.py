"""``run_ablation``: a grid of fine-tunes over config fields × seeds, behind ``coursekit ablate``.

An :class:`AblationConfig` names a base ``RunSpec``, axes (a field path such as
``adapter.rank`` → its values) and seeds; its cells (:func:`coursekit.experiments.grid.expand`)
are ordinary run folders ``<output>/<setting>,seed=<s>/`` written by ``finetune``, each by
default in its own process (``coursekit train``), so that its peak memory is its own. A
finished cell is kept, an interrupted one resumes (or restarts, without a checkpoint), and a
cell folder holding other settings stops the grid before anything there changes. Optionally
the evaluation funnel (``run_eval``) judges each cell on ``eval_limit`` functions.

Per cell: validation loss, target tokens/s, peak memory, trainable parameters, training
seconds (and the funnel's rates). Per setting, over seeds: mean, sample std and a 95% Student
t interval. Written: ``table.csv`` (per setting), ``cells.csv`` (per run), ``report.md``, the
figures, ``ablation.yaml`` (the grid). The default config is Tier A: ranks 4, 8, 16, 32, 64 ×
seeds 0, 1, 2 of the Phase 1 baseline on nano.

Guide: docs/experiments.md ("Rank ablation (Tier A)").
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml

import coursekit
from coursekit import codec
from coursekit.errors import CoursekitError
from coursekit.experiments import grid
from coursekit.io import atomic_open, write_json
from coursekit.recipes.ablate_report import METRICS, write_outputs
from coursekit.train.callbacks import Callback
from coursekit.train.failures import RunFailedError, TrainingInterrupted, interruptible
from coursekit.train.folder import check_before_loading, check_output, finished_run, prepare_output
from coursekit.train.spec import RunSpec

TIER_A_RANKS: tuple[int, ...] = (4, 8, 16, 32, 64)
"""The ranks of Tier A (docs/course.md)."""
DERIVED: Mapping[str, str] = MappingProxyType({
    "adapter.method": "is set from method; put the axis on method (lora, dora, ...)",
    "adapter.base_quantization": "is set from method; put the axis on method (qlora, ...)",
    "train.seed": "is set by seeds; list the seeds in seeds",
})  # fmt: skip
"""Field paths an axis cannot vary, and why."""
EVAL_MUTANTS = 4
"""Mutants per function in a cell's funnel (as ``coursekit.recipes.evaluate.compare``)."""


def tier_a_base() -> RunSpec:
    """Return Tier A's base run: the Phase 1 baseline on nano, validated only at the end.

    LoRA r = 8, α = 16 on q/v, 40 steps of 4 examples at the constant rate 2e-3 (the
    baseline's settings, :func:`coursekit.recipes.phase1_baseline.baseline_spec`).

    Example:
        >>> base = tier_a_base()
        >>> base.model, base.adapter.rank, base.train.max_steps, base.train.learning_rate
        ('nano', 8, 40, 0.002)
    """
    from coursekit.recipes.phase1_baseline import baseline_spec

    return baseline_spec(steps=40, eval_every=40)


@dataclass(frozen=True, kw_only=True)
class AblationConfig:
    """A grid: a base run, axes of field paths → values, and seeds (default: Tier A).

    Example:
        >>> config = AblationConfig(axes={"adapter.rank": (4, "8")}, seeds=(0,))
        >>> [cell.name for cell in config.cells()], config.spec(config.cells()[1]).adapter.rank
        (['rank=4,seed=0', 'rank=8,seed=0'], 8)
        >>> AblationConfig(axes={"adapter.rnak": (4,)})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: AblationConfig.axes.adapter.rnak is not a field path of RunSpec; known: ...
    """

    base: RunSpec = field(default_factory=tier_a_base)
    """The run every cell starts from (in YAML, a run's ``config.yaml`` layout; keys left out
    take ``RunSpec``'s defaults). Its ``train.seed`` is replaced by each cell's seed."""
    axes: Mapping[str, tuple[Any, ...]] = field(
        default_factory=lambda: {"adapter.rank": TIER_A_RANKS}
    )
    """Field path of ``RunSpec`` → its values (``{"adapter.rank": (4, 8)}``). Values are
    coerced as a YAML file's are and stored as the run sees them (``"1e-3"`` → 0.001)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Each setting runs once per seed (``train.seed``)."""
    eval_limit: int = 0
    """Functions each cell's evaluation funnel judges; 0 runs no funnel (it is slow)."""
    eval_split: Literal["val", "test"] = "val"
    """The split whose verified functions the funnel judges."""
    confidence: float = 0.95
    """Two-sided confidence of the intervals over seeds."""

    def __post_init__(self) -> None:
        """Validate every field, every axis value and every cell's run; freeze ``axes``."""
        codec.check_types(self)
        if not isinstance(self.axes, Mapping) or not all(isinstance(p, str) for p in self.axes):
            raise ValueError(
                f"AblationConfig.axes must map field paths to lists of values (got {self.axes!r})"
            )
        codec.check_rules(self, [
            ("seeds", bool(self.seeds), "must list at least one seed"),
            ("seeds", len(set(self.seeds)) == len(self.seeds), "must list each seed once"),
            ("seeds", all(seed >= 0 for seed in self.seeds), "must be >= 0"),
            ("eval_limit", self.eval_limit >= 0, "must be >= 0 (0: no evaluation funnel)"),
            ("confidence", 0 < self.confidence < 1, "must be in (0, 1)"),
        ])  # fmt: skip
        axes = {path: self._axis(path, values) for path, values in self.axes.items()}
        object.__setattr__(self, "axes", MappingProxyType(axes))
        try:
            cells = self.cells()  # values equal as the run sees them (8 and 8.0) are refused
        except ValueError as error:
            raise ValueError(f"AblationConfig: {error}") from None
        for cell in cells:
            try:
                self.spec(cell)
            except ValueError as error:
                raise ValueError(f"AblationConfig: cell {cell.name} is refused: {error}") from None

    def _axis(self, path: str, values: Any) -> tuple[Any, ...]:
        """Return the axis's values as the run sees them, or raise naming path and value."""
        where = f"AblationConfig.axes.{path}"
        if path in DERIVED:
            raise ValueError(f"{where} {DERIVED[path]}")
        if path not in grid.field_paths(RunSpec):
            raise ValueError(
                f"{where} is not a field path of RunSpec; known: {grid.field_paths(RunSpec)}"
            )
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"{where} must be a non-empty list of values (got {values!r})")
        specs = []
        for value in values:
            try:
                specs.append(grid.with_settings(self.base, {path: value}))
            except ValueError as error:
                raise ValueError(f"{where} value {value!r} is refused: {error}") from None
        return tuple(grid.get_field(spec, path) for spec in specs)

    def cells(self) -> tuple[grid.Cell, ...]:
        """Return the grid's cells, seed by seed (:func:`coursekit.experiments.grid.expand`)."""
        return grid.expand(self.axes, self.seeds)

    def spec(self, cell: grid.Cell) -> RunSpec:
        """Return the ``RunSpec`` of ``cell``: the base with its setting and seed."""
        return grid.with_settings(self.base, {**dict(cell.setting), "train.seed": cell.seed})


def load_ablation(path: str | os.PathLike[str]) -> AblationConfig:
    """Read a grid YAML file (``AblationConfig``'s fields) through :mod:`coursekit.codec`.

    Raises:
        CoursekitError: unreadable YAML or a refused value, named with ``file:line``.

    Example:
        >>> load_ablation("grid.yaml").axes  # doctest: +SKIP
        mappingproxy({'adapter.rank': (4, 8, 16)})
    """
    return codec.from_yaml(AblationConfig, path)


@dataclass(frozen=True, kw_only=True)
class AblationResult:
    """What a grid measured and where it wrote it."""

    cells: tuple[dict[str, Any], ...]
    """One record per cell: ``name``, ``setting``, ``seed``, ``process`` (``own``: trained in
    a process of its own), ``metrics`` (as in its ``result.json``) and ``status``."""
    groups: tuple[grid.Group, ...]
    """One summary over seeds per setting."""
    files: Mapping[str, Path]
    """File name (``table.csv``, ``report.md``, ``val_loss_vs_rank.png`` ...) → its path."""


def run_ablation(
    config: AblationConfig,
    output: str | os.PathLike[str],
    *,
    isolate: bool = True,
    callbacks: Iterable[Callback] = (),
    log: Callable[[str], None] = print,
) -> AblationResult:
    """Run (or continue) every cell of ``config`` under ``output``; write the table and report.

    Args:
        config: the grid.
        output: the grid folder; one run folder per cell inside it.
        isolate: train each cell in its own process (``coursekit train``), so that its peak
            memory (on CPU the process's resident high-water mark) is its own. False trains
            in this process: faster to start, but on CPU each cell's peak then includes the
            cells before it.
        callbacks: passed to every cell's trainer (only with ``isolate=False``).
        log: receives one line per cell.

    Raises:
        ConfigMismatchError: a cell's folder holds a run with other settings.
        TrainingInterrupted: SIGINT/SIGTERM; finished cells are kept, run again to continue.
        RunFailedError: a cell's run failed (named); the cells before it are kept.

    Example:
        >>> run_ablation(AblationConfig(), "runs/tier-a").files["report"]  # doctest: +SKIP
        PosixPath('runs/tier-a/report.md')
    """
    callbacks = tuple(callbacks)
    if isolate and callbacks:
        raise ValueError("run_ablation: callbacks run only in this process; pass isolate=False")
    out, cells = Path(output), config.cells()
    for cell in cells:
        check_before_loading(config.spec(cell))
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "ablation.yaml") as handle:
        handle.write(codec.to_yaml(config))
    records = []
    for index, cell in enumerate(cells, 1):
        record = _run_cell(config, cell, out / cell.name, isolate, callbacks)
        line = ", ".join(f"{k} {v:.4g}" for k, v in record["metrics"].items() if v is not None)
        log(f"ablate [{index}/{len(cells)}] {cell.name}: {record['status']}; {line}")
        records.append(record)
    groups, files = write_outputs(config, out, cells, records)
    return AblationResult(cells=tuple(records), groups=groups, files=MappingProxyType(files))


def _run_cell(
    config: AblationConfig, cell: grid.Cell, folder: Path, isolate: bool, callbacks: tuple
) -> dict[str, Any]:
    """Train (or keep, or resume) one cell, run its funnel if asked; write ``result.json``."""
    spec = config.spec(cell)
    if (folder / "config.yaml").is_file():
        check_output(folder, spec, resume=True)
    else:
        prepare_output(folder, spec, resume=False)
    before = _read_json(folder / "result.json")
    summary = finished_run(folder, spec.train)
    if summary is not None:
        status, process = "finished before, kept", before.get("process", "unknown")
    else:
        tick = time.perf_counter()
        try:
            if isolate:
                summary = _child(folder, spec)
            else:
                from coursekit.recipes.finetune import finetune

                summary = finetune(spec, folder, resume=True, callbacks=callbacks)
        except TrainingInterrupted as stop:
            raise TrainingInterrupted(
                f"the grid stopped in {folder} ({stop}); finished cells are kept: run the same "
                "coursekit ablate command again to continue"
            ) from None
        except RunFailedError as error:
            raise RunFailedError(f"the cell {folder} failed: {error}") from None
        status = f"trained in {time.perf_counter() - tick:.0f} s"
        process = "own" if isolate else "shared"
    metrics = {name: summary.get(name) for name in METRICS if not name.startswith("eval_")}
    if config.eval_limit:
        metrics |= _funnel(config, spec, folder)
    record = {"name": cell.name, "setting": dict(cell.setting), "seed": cell.seed,
              "process": process, "metrics": metrics}  # fmt: skip
    write_json(folder / "result.json", record)
    return {**record, "status": status}


def _child(folder: Path, spec: RunSpec) -> dict[str, Any]:
    """Train the cell by ``coursekit train --output folder --resume`` in a new process.

    The child's output goes to ``train.log``; its exit status becomes the matching error.
    A SIGINT or SIGTERM here lets the child finish its checkpoint (Ctrl-C reaches it by its
    process group; a signal sent to this process alone is passed on as SIGINT).
    """
    root = str(Path(coursekit.__file__).resolve().parents[1])  # the child runs this coursekit
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "coursekit.cli", "train", "--output", str(folder), "--resume"]
    with (folder / "train.log").open("a", encoding="utf-8") as log, interruptible() as guard:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, "PYTHONPATH": path})  # fmt: skip
        while (status := child.poll()) is None:
            try:
                child.wait()
            except KeyboardInterrupt:
                if guard.received != "SIGINT":
                    child.send_signal(signal.SIGINT)
    summary = finished_run(folder, spec.train) if status == 0 else None
    if summary is not None:
        return summary
    lines = (folder / "train.log").read_text(encoding="utf-8", errors="replace").splitlines()
    last = lines[-1] if lines else "no output"
    if status == 130:
        raise TrainingInterrupted(last)
    if status == 2:
        raise CoursekitError(f"{folder}: {last}")
    raise RunFailedError(f"coursekit train exited with {status} ({folder}/train.log): {last}")


def _read_json(path: Path) -> dict[str, Any]:
    """Return the object a JSON file holds, or {} when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _funnel(config: AblationConfig, spec: RunSpec, folder: Path) -> dict[str, float | None]:
    """Run (or reuse) the evaluation funnel of a finished cell; return its rates and score."""
    from coursekit.evaluate.funnel import STAGES
    from coursekit.recipes.evaluate import EvalSpec, run_eval

    full = (folder / "model").is_dir()
    evaluation = EvalSpec(
        model=str(folder / "model") if full else spec.model,
        adapter="" if full else str(folder / "adapter"),
        data=spec.data, split=config.eval_split, limit=config.eval_limit, mutants=EVAL_MUTANTS,
    )  # fmt: skip
    where = folder / f"eval-{config.eval_split}-{config.eval_limit}"
    summary = _read_json(where / "summary.json") or run_eval(evaluation, where)
    rates = {f"eval_{stage}": summary["funnel"][stage]["rate"] for stage in STAGES}
    return rates | {"eval_summary_score": summary["summary_score"]}


def config_from_args(args: argparse.Namespace) -> AblationConfig:
    """Merge Tier A (or ``--config``), ``--base`` and the flags into an ``AblationConfig``.

    ``--axis PATH=V1,V2`` (each value read as YAML; repeated) replaces the axes.
    """
    data = codec.to_dict(load_ablation(args.config) if args.config else AblationConfig())
    if args.base:
        data["base"] = codec.to_dict(codec.from_yaml(RunSpec, args.base))
    for key, value in (("model", args.model), ("data", args.data)):
        data["base"][key] = data["base"][key] if value is None else value
    if args.max_steps is not None:
        data["base"]["train"]["max_steps"] = args.max_steps
    if args.axis:
        data["axes"] = {}
    for text in args.axis or []:
        path, equals, values = text.partition("=")
        if not (equals and path.strip() and values.strip()):
            raise ValueError(f"--axis needs PATH=V1,V2,... (got {text!r}), e.g. adapter.rank=4,8")
        data["axes"][path.strip()] = [yaml.safe_load(value) for value in values.split(",")]
    if args.seeds:
        data["seeds"] = [yaml.safe_load(seed) for seed in args.seeds.split(",")]
    if args.eval_limit is not None:
        data["eval_limit"] = args.eval_limit
    return codec.from_dict(AblationConfig, data)


def _ablate(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    try:
        result = run_ablation(config, args.output, isolate=not args.in_process)
    except TrainingInterrupted as stop:
        print(f"coursekit ablate: {stop}", file=sys.stderr)
        return 130
    except RunFailedError as error:
        print(f"coursekit ablate: error: {error}", file=sys.stderr)
        return 1
    print("\n".join(f"{name}: {path}" for name, path in result.files.items()))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``coursekit ablate``: run or continue a grid of fine-tunes (default: Tier A)."""
    parser = subparsers.add_parser(
        "ablate", help="fine-tune a grid of config fields × seeds (default: Tier A ranks)"
    )
    add = parser.add_argument
    add("--output", type=Path, required=True, help="the grid folder (run again to continue)")
    add("--config", type=Path, help="a grid YAML (AblationConfig's fields; default: Tier A)")
    add("--base", type=Path, help="a run's config.yaml as the base run")
    add("--model", help="the base run's model (nano, tiny, a directory ...)")
    add("--data", help="the base run's split directory")
    add("--max-steps", type=int, help="the base run's optimizer steps")
    add("--axis", action="append", metavar="PATH=V1,V2",
        help="e.g. train.learning_rate=1e-3,2e-3 (repeatable; replaces the axes)")  # fmt: skip
    add("--seeds", help="comma-separated seeds, e.g. 0,1,2")
    add("--eval-limit", type=int, help="run the evaluation funnel on N functions per cell")
    add("--in-process", action="store_true",
        help="train every cell in this process (on CPU their peak memory is shared)")  # fmt: skip
    parser.set_defaults(handler=_ablate)
