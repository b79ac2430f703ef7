"""``coursekit bench``: engines × methods × repeats at one budget, each run in its own process.

Every engine fine-tunes the same model on the same split with the same settings
(``BenchConfig``: steps, micro-batch, sequence length, rank, lr, seed); what each engine does
and why the losses differ is in ``coursekit.recipes.bench.train_throughput`` (coursekit packs
rows, HF ``Trainer`` pads) and ``trl_peer`` (TRL ``SFTTrainer``, padding-free packing). Each
(method, engine, repeat) is a child process (``python -m coursekit.recipes.bench.suite``), so
its peak RSS is its own; the repeats run round-robin, the engine order rotated each round, so
a burst of load from elsewhere hits every engine alike.

Per (method, engine): target tokens/s, seconds per step, peak RSS, validation loss and the
achieved model FLOP/s as a fraction of the fp32 ``torch.mm`` peak measured at the model's
shapes in the same invocation (``flops.py``), each as the median and range over repeats.
Ratios: each engine's median tokens/s over the fastest peer's (a peer: any engine but
coursekit), with the range min/max … max/min over repeats, so one noisy run cannot decide
it. Written: ``bench.json`` and ``bench.md`` (``suite_report.py``), with the machine (CPU
model, threads, load average before and after).

Guide: docs/benchmarks.md ("coursekit bench").
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from coursekit import codec
from coursekit.errors import CoursekitError
from coursekit.recipes.bench.child import PEER_PACKAGES, SUITE_ENGINES, run_child
from coursekit.recipes.bench.coursekit_engine import BENCH_METHODS
from coursekit.recipes.bench.train_throughput import PEER_METHODS

BASELINE = "coursekit"
"""The engine the peers are compared with; every other engine is a peer."""
METRICS: tuple[str, ...] = (
    "tokens_per_s", "tokens_per_s_per_adapter", "step_seconds", "steps", "samples",
    "peak_rss_bytes", "val_loss", "achieved_flops", "flop_fraction",
)  # fmt: skip
"""The per-run numbers summarized over repeats."""


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    """One benchmark invocation: what runs, at which budget, how often."""

    model: str = "tiny"
    """Model name or directory (``tiny``, ``nano``, a preset, a path)."""
    data: str = ""
    """Split directory; empty means the bundled seed set."""
    engines: tuple[str, ...] = ("coursekit", "hf", "trl")
    """Engines of ``SUITE_ENGINES`` to run."""
    methods: tuple[str, ...] = ("lora",)
    """Run methods (``coursekit.adapters.run_methods()``, and ``qat``, ``multi`` for coursekit);
    peers run ``PEER_METHODS`` only."""
    steps: int | None = 12
    """The steps budget: optimizer steps per run; None under the samples budget."""
    samples: int | None = None
    """The samples budget: every engine trains once on the same N samples (``budget.py``)."""
    val_samples: int | None = None
    """Validate on this many samples of the shuffled validation split (None: all of it)."""
    batch_size: int = 4
    """Micro-batch size in rows."""
    seq_len: int = 384
    """Longest sequence in tokens."""
    rank: int = 8
    """LoRA/DoRA rank (alpha = 2 · rank, q/v targets)."""
    lr: float = 2e-3
    """Constant learning rate."""
    seed: int = 0
    """Seed of every run and of the budget's shuffle."""
    adapters: int = 4
    """N, the adapters of the ``multi`` method's joint run."""
    repeats: int = 3
    """Runs per (method, engine); medians and ranges are taken over them."""
    threads: int = 2
    """torch intra-op threads of every child and of the matmul peak probe."""
    peak_seconds: float = 0.25
    """Seconds per shape of the ``torch.mm`` peak probe."""
    profile: bool = False
    """Also profile ``profile_steps`` coursekit steps per method (``profile.py``), untimed."""
    profile_steps: int = 3
    """Steps profiled per method (after one warm-up step)."""

    def __post_init__(self) -> None:
        """Validate every field; errors name the field, the value and the rule."""
        from coursekit.adapters import run_methods

        codec.check_types(self)
        _check_choices("engines", self.engines, tuple(SUITE_ENGINES))
        _check_choices("methods", self.methods, (*run_methods(), *BENCH_METHODS))
        if (self.steps is None) == (self.samples is None):
            raise ValueError(
                f"BenchConfig needs exactly one of steps and samples (got steps={self.steps}, "
                f"samples={self.samples}): set one, the other None"
            )
        counts = ("steps", "samples", "val_samples", "batch_size", "seq_len", "rank",
                  "adapters", "repeats", "threads", "profile_steps")  # fmt: skip
        at_least_one = [(n, getattr(self, n) is None or getattr(self, n) >= 1, "must be >= 1")
                        for n in counts]  # fmt: skip
        positive = [(n, getattr(self, n) > 0, "must be > 0") for n in ("lr", "peak_seconds")]
        codec.check_rules(self, at_least_one + positive)

    def settings(self, method: str) -> dict[str, Any]:
        """Return the run functions' keywords for ``method``."""
        keys = ("model", "data", "steps", "samples", "val_samples", "batch_size", "seq_len",
                "rank", "lr", "seed", "adapters")  # fmt: skip
        return {**{k: getattr(self, k) for k in keys}, "method": method}


def _check_choices(name: str, values: tuple[str, ...], allowed: Sequence[str]) -> None:
    """Raise unless ``values`` is a non-empty tuple of distinct members of ``allowed``."""
    if not values:
        raise ValueError(f"BenchConfig.{name} must be a non-empty tuple (got {values!r})")
    unknown = [v for v in values if v not in allowed]
    if unknown or len(set(values)) != len(values):
        raise ValueError(
            f"BenchConfig.{name} must be distinct values of {list(allowed)} (got {list(values)})"
        )


def jobs(config: BenchConfig) -> tuple[list[tuple[int, str, str]], list[tuple[str, str]]]:
    """Return the (repeat, method, engine) runs in round-robin order, and skipped pairs.

    Round r runs every method's engines once, the engine order rotated by r. A peer with a
    method outside ``PEER_METHODS`` is skipped (listed once as (method, engine)).

    Example:
        >>> jobs(BenchConfig(engines=("coursekit", "hf"), repeats=2))[0]
        [(0, 'lora', 'coursekit'), (0, 'lora', 'hf'), (1, 'lora', 'hf'), (1, 'lora', 'coursekit')]
    """
    runs, skipped = [], []
    for method in config.methods:
        for engine in config.engines:
            if engine != BASELINE and method not in PEER_METHODS:
                skipped.append((method, engine))
    for r in range(config.repeats):
        for method in config.methods:
            engines = [e for e in config.engines if (method, e) not in skipped]
            shift = r % len(engines) if engines else 0
            runs += [(r, method, e) for e in engines[shift:] + engines[:shift]]
    return runs, skipped


def summarize(values: Iterable[float]) -> dict[str, float]:
    """Return the median, min, max and count of ``values``.

    Example:
        >>> summarize([3.0, 1.0, 2.0])
        {'median': 2.0, 'min': 1.0, 'max': 3.0, 'n': 3}
    """
    values = list(values)
    if not values:
        raise ValueError("summarize needs at least one value")
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}  # fmt: skip


def derive(result: dict[str, Any], peak_flops: float) -> dict[str, Any]:
    """Add seconds per step, tokens/s per adapter, achieved FLOP/s and its peak fraction.

    Example:
        >>> run = {"train_seconds": 2.0, "steps": 4, "model_flops": 8e9, "tokens_per_s": 6.0}
        >>> derive({**run, "adapters": 3}, peak_flops=1e10)["tokens_per_s_per_adapter"]
        2.0
    """
    achieved = result["model_flops"] / result["train_seconds"]
    return {**result, "step_seconds": result["train_seconds"] / result["steps"],
            "tokens_per_s_per_adapter": result["tokens_per_s"] / result.get("adapters", 1),
            "achieved_flops": achieved, "flop_fraction": achieved / peak_flops}  # fmt: skip


def ratios(runs: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """Return each engine's tokens/s over the fastest peer's: median ratio and its range.

    The fastest peer has the highest median; the range is min(engine)/max(peer) …
    max(engine)/min(peer) over the repeats. Empty when no peer ran.

    Args:
        runs: engine → its tokens/s, one per repeat.

    Example:
        >>> ratios({"coursekit": [4.0, 6.0], "hf": [2.0, 2.0], "trl": [1.0, 1.0]})["coursekit"]
        {'peer': 'hf', 'median': 2.5, 'min': 2.0, 'max': 3.0}
    """
    peers = {e: v for e, v in runs.items() if e != BASELINE and v}
    if not peers:
        return {}
    peer = max(peers, key=lambda e: statistics.median(peers[e]))
    base = peers[peer]
    return {
        engine: {
            "peer": peer,
            "median": statistics.median(values) / statistics.median(base),
            "min": min(values) / max(base),
            "max": max(values) / min(base),
        }
        for engine, values in runs.items()
        if values
    }


def describe_machine() -> dict[str, Any]:
    """Return the CPU model (``/proc/cpuinfo``), logical CPUs, platform, Python and torch."""
    import torch

    model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        model = names[0] if names else model
    return {"cpu_model": model, "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__}  # fmt: skip


def run_bench(
    config: BenchConfig,
    output: str | os.PathLike[str],
    *,
    runner: Callable[[dict[str, Any]], dict[str, Any]] = run_child,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the suite and write ``bench.json`` and ``bench.md`` into ``output``; return the report.

    Args:
        config: engines, methods, budget and repeats.
        output: the folder to write into (created).
        runner: runs one job dict and returns its result (``run_child``: a fresh process).
        log: receives one line per finished run.

    Raises:
        CoursekitError: an engine's package is missing, or a run failed (its stderr's end).

    Example:
        >>> run_bench(BenchConfig(repeats=1, steps=1), "bench-out")  # doctest: +SKIP
    """
    import torch
    from transformers import AutoConfig

    from coursekit.loading import resolve_model
    from coursekit.recipes.bench.flops import matmul_peak
    from coursekit.recipes.bench.suite_report import write_report

    missing = [e for e in config.engines if e in PEER_PACKAGES and not find_spec(e)]
    if missing:
        raise CoursekitError(
            f"bench: the {', '.join(missing)} engine needs its package: pip install "
            f"{' '.join(PEER_PACKAGES[e] for e in missing)}, or leave it out of --engines"
        )
    load_before = os.getloadavg()
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        model_config = AutoConfig.from_pretrained(resolve_model(config.model))  # no weights
        peak = matmul_peak(model_config, config.batch_size * config.seq_len,
                           min_seconds=config.peak_seconds)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    planned, skipped = jobs(config)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r, method, engine in planned:
        job = {**config.settings(method), "engine": engine, "threads": config.threads}
        started = time.perf_counter()
        result = derive(runner(job), peak["peak_flops"])
        runs.setdefault(method, {}).setdefault(engine, []).append(result)
        seconds = time.perf_counter() - started
        log(f"bench: {method} {engine} repeat {r + 1}/{config.repeats}: "
            f"{result['tokens_per_s']:.1f} target tok/s ({seconds:.0f} s)")  # fmt: skip
    profiles = {}
    for method in config.methods if config.profile else ():
        job = {**config.settings(method), "engine": BASELINE, "threads": config.threads,
               "profile_steps": config.profile_steps}  # fmt: skip
        profiles[method] = runner(job)
        log(f"bench: {method} {BASELINE} profiled ({config.profile_steps} steps)")
    machine = describe_machine()
    machine.update(torch_threads=config.threads, load_before=list(load_before),
                   load_after=list(os.getloadavg()))  # fmt: skip
    settings = asdict(config)
    settings.update(engines=list(config.engines), methods=list(config.methods))
    report = {
        "config": settings,
        "machine": machine,
        "matmul_peak": peak,
        "skipped": [list(pair) for pair in skipped],
        "methods": {m: _method_report(by_engine, profiles.get(m)) for m, by_engine in runs.items()},
    }
    report["files"] = write_report(report, output)
    return report


def _method_report(
    by_engine: dict[str, list[dict[str, Any]]], profile: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Return one method's runs, per-engine summaries, ratios, samples fed and profile."""
    summaries = {
        engine: {m: summarize(r[m] for r in results) for m in METRICS}
        for engine, results in by_engine.items()
    }
    speeds = {e: [r["tokens_per_s"] for r in results] for e, results in by_engine.items()}
    report = {"runs": by_engine, "summary": summaries, "ratios": ratios(speeds),
              "fed": fed_samples(by_engine)}  # fmt: skip
    return report if profile is None else {**report, "profile": profile}


def fed_samples(by_engine: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Return the samples each engine was fed and whether all engines saw one set of them.

    Per engine: the samples, distinct samples and digest of each repeat (one entry when the
    repeats agree); ``same_set`` compares the digests of every engine and repeat.

    Example:
        >>> run = {"samples": 4, "distinct_samples": 4, "samples_digest": "ab"}
        >>> fed_samples({"coursekit": [run, run], "hf": [run]})["same_set"]
        True
    """
    keys = ("samples", "distinct_samples", "samples_digest")
    engines = {}
    for engine, results in by_engine.items():
        seen = [{k: r[k] for k in keys} for r in results]
        engines[engine] = [dict(t) for t in dict.fromkeys(tuple(x.items()) for x in seen)]
    digests = {row["samples_digest"] for rows in engines.values() for row in rows}
    return {"engines": engines, "same_set": len(digests) == 1}


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """Return the ``BenchConfig`` of ``coursekit bench``'s flags (unset flags: defaults)."""
    fields = ("model", "data", "steps", "samples", "val_samples", "batch_size", "seq_len",
              "rank", "lr", "seed", "adapters", "repeats", "threads", "peak_seconds",
              "profile_steps")  # fmt: skip
    given = {k: getattr(args, k) for k in fields if getattr(args, k) is not None}
    if "samples" in given and "steps" not in given:
        given["steps"] = None  # the samples budget replaces the default steps budget
    if args.profile or "profile_steps" in given:
        given["profile"] = True
    for name in ("engines", "methods"):
        if getattr(args, name):
            given[name] = tuple(v.strip() for v in getattr(args, name).split(",") if v.strip())
    return BenchConfig(**given)


CPU_ONLY_FLAGS = ("methods", "samples", "val_samples", "repeats", "adapters", "profile",
                  "profile_steps")  # fmt: skip
"""``coursekit bench`` flags the ``--gpu`` run does not use (refused rather than ignored)."""


def _bench(args: argparse.Namespace) -> int:
    if args.gpu:  # the prepared one-GPU run (docs/gpu.md); imported here: it imports this
        from coursekit.recipes.bench.gpu import run_from_args

        unused = [f"--{name.replace('_', '-')}" for name in CPU_ONLY_FLAGS if getattr(args, name)]
        if unused:
            raise CoursekitError(
                f"coursekit bench --gpu: {', '.join(unused)} only apply to the CPU suite; "
                "the GPU run has its own fixed plan (docs/gpu.md): drop them"
            )

        return run_from_args(args)
    config = config_from_args(args)
    report = run_bench(config, args.output, log=lambda line: print(line, file=sys.stderr))
    print(Path(report["files"]["bench.md"]).read_text(), end="")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``coursekit bench``: engines × methods × repeats, written to bench.json/bench.md."""
    parser = subparsers.add_parser(
        "bench", help="time coursekit against HF Trainer and TRL at one budget (bench.md)"
    )
    add = parser.add_argument
    add("--output", type=Path, required=True, help="folder for bench.json and bench.md")
    add("--model", help="model name or directory (default tiny)")
    add("--data", help="split directory (default: the seed set)")
    add("--engines", help=f"comma-separated, of {','.join(SUITE_ENGINES)} (default: all)")
    add("--methods", help="comma-separated, e.g. lora,dora,qlora,qat,multi,full (default lora)")
    add("--steps", type=int, help="the steps budget: optimizer steps per run (default 12)")
    add(
        "--samples",
        type=int,
        help="the samples budget: every engine trains once on the same N samples",
    )
    add("--val-samples", type=int, help="validate on N samples of the val split (default all)")
    add("--batch-size", type=int, help="micro-batch rows (default 4)")
    add("--seq-len", type=int, help="longest sequence in tokens (default 384)")
    add("--rank", type=int, help="LoRA rank (default 8)")
    add("--lr", type=float, help="constant learning rate (default 2e-3)")
    add("--seed", type=int, help="seed of every run (default 0)")
    add("--adapters", type=int, help="adapters of the multi method's joint run (default 4)")
    add("--repeats", type=int, help="runs per engine and method (default 3)")
    add("--threads", type=int, help="torch threads per run and for the peak probe (default 2)")
    add("--peak-seconds", type=float, help="seconds per shape of the matmul probe (0.25)")
    add(
        "--profile",
        action="store_true",
        help="also profile coursekit's steps per method: where the step time goes",
    )
    add("--profile-steps", type=int, help="steps profiled per method (default 3)")
    from coursekit.recipes.bench.gpu import register_gpu_options  # it imports this module

    register_gpu_options(parser)
    parser.set_defaults(handler=_bench)
