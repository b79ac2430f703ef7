"""``coursekit bench --gpu``: the prepared one-GPU benchmark (≤ 8 minutes, no downloads).

One invocation on one CUDA GPU:

1. builds a Qwen2.5-Coder-0.5B-*shaped* checkpoint from the preset (``coursekit.presets``)
   with random weights (no hub) and measures the GPU's bf16 ``torch.mm`` peak at the model's
   matmul shapes (``coursekit.recipes.bench.flops.matmul_peak``), beside the datasheet's
   nominal dense bf16 peak when the device name is known (``NOMINAL_BF16_PEAKS``);
2. fine-tunes it with bf16 LoRA r16 on all linear layers at seq_len 1024 with coursekit,
   HF ``Trainer`` + peft and TRL ``SFTTrainer``: the engines of ``coursekit bench``
   (``train_throughput``, ``trl_peer``), each in its own process (``child.run_child``), so
   each ``torch.cuda.max_memory_allocated`` is its own. Per engine: target tokens/s, model
   FLOP/s as a fraction of the measured and the nominal peak (MFU), peak memory;
3. QLoRA: coursekit's NF4 (the ``qlora`` run method) against peft on a bitsandbytes 4-bit
   NF4 model (its CUDA kernels); skipped, with the reason, without bitsandbytes or CUDA;
4. checks the memory estimate on five configurations and fits the CUDA context and the
   fragmentation share the estimate only assumes (``gpu_memory``);
5. writes ``gpu.json`` and ``gpu.md`` atomically (``gpu_report``), machine described.

Without CUDA it prints one line and exits 0 (``SKIPPED``). ``--dry-run`` runs the same code
on the CPU with the tiny model, 2 steps and short sequences: what the CPU tests exercise.

Guide: docs/gpu.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

from coursekit import codec
from coursekit.errors import CoursekitError
from coursekit.recipes.bench.child import PEER_PACKAGES, SUITE_ENGINES, run_child
from coursekit.recipes.bench.suite import derive

SKIPPED = 0
"""Exit status when there is no CUDA device: skipped, not failed (CI has no GPU)."""
ENGINE_MODULE = "coursekit.recipes.bench.child"
"""The child module that runs one engine (``child.child_main``)."""
MEMORY_MODULE = "coursekit.recipes.bench.gpu_memory"
"""The child module that measures one memory point (``gpu_memory.child_main``)."""
QLORA_ENGINES: tuple[str, ...] = ("coursekit", "hf")
"""coursekit's NF4 against peft + bitsandbytes 4-bit (through HF ``Trainer``)."""

NOMINAL_BF16_PEAKS: tuple[tuple[str, float], ...] = (
    ("H200 NVL", 835.5e12), ("H200", 989.5e12), ("H100 NVL", 835.5e12),
    ("H100 PCIe", 756.5e12), ("H100", 989.5e12), ("A100", 312e12), ("L40S", 362.05e12),
    ("L4", 121e12),
)  # fmt: skip
"""(name fragment, FLOP/s): dense bf16 tensor-core peaks of NVIDIA's datasheets (half the
"with sparsity" figure); the first fragment found in the device name wins, so the longer
names come first. An H100 or H200 without NVL/PCIe in its name is the SXM part."""

Precision = Literal["fp32", "bf16"]


@dataclass(frozen=True, kw_only=True)
class GpuBenchConfig:
    """One run of the GPU benchmark (defaults: the prepared run on one GPU)."""

    model: str = "qwen2.5-coder-0.5b"
    """A preset name (a random checkpoint of its shape is built) or ``tiny``."""
    device: str = "cuda"
    """``cuda`` (or ``cuda:N``); ``cpu`` for a dry run."""
    engines: tuple[str, ...] = ("coursekit", "hf", "trl")
    """Engines of ``coursekit bench`` to run the LoRA fine-tune with."""
    steps: int = 30
    """Optimizer steps per engine."""
    batch_size: int = 4
    """Micro-batch rows."""
    seq_len: int = 1024
    """Longest sequence (coursekit and TRL pack rows of this length)."""
    rank: int = 16
    """LoRA rank (alpha = 2 · rank)."""
    targets: str = "all-linear"
    """Target preset of ``coursekit.adapters.TARGET_PRESETS``."""
    precision: Precision = "bf16"
    """bf16 weights and autocast, or fp32."""
    lr: float = 2e-4
    """Constant learning rate."""
    seed: int = 0
    """Seed of the checkpoint and of every run."""
    qlora: bool = True
    """Run the QLoRA comparison (coursekit NF4 vs peft + bitsandbytes)."""
    memory: bool = True
    """Run the memory check on the five configurations (``gpu_memory.MEMORY_POINTS``)."""
    peak_seconds: float = 0.5
    """Seconds per shape of the ``torch.mm`` peak probe."""
    threads: int = 4
    """torch CPU threads of every child (data collation; the math runs on the GPU)."""

    def __post_init__(self) -> None:
        """Validate; errors name the field, the value and the rule."""
        from coursekit.adapters import TARGET_PRESETS
        from coursekit.presets import PRESETS

        codec.check_types(self)
        codec.check_rules(self, [
            ("model", self.model == "tiny" or self.model in PRESETS,
             f"must be 'tiny' or a preset of {list(PRESETS)}"),
            ("device", self.device == "cpu" or self.device.split(":")[0] == "cuda",
             "must be 'cuda', 'cuda:N' or 'cpu'"),
            ("engines", bool(self.engines) and set(self.engines) <= set(SUITE_ENGINES)
             and len(set(self.engines)) == len(self.engines),
             f"must be distinct values of {list(SUITE_ENGINES)}"),
            ("targets", self.targets in TARGET_PRESETS, f"must be one of {list(TARGET_PRESETS)}"),
            ("lr", self.lr > 0, "must be > 0"),
            ("peak_seconds", self.peak_seconds > 0, "must be > 0"),
            *((name, getattr(self, name) >= 1, "must be >= 1")
              for name in ("steps", "batch_size", "seq_len", "rank", "threads")),
        ])  # fmt: skip

    def settings(self, model: str, method: str) -> dict[str, Any]:
        """Return the engine keywords of one run (``train_throughput.run_coursekit``'s)."""
        keys = ("steps", "batch_size", "seq_len", "rank", "lr", "seed", "targets", "precision")
        return {"model": model, "data": "", "method": method, "device": self.device,
                **{k: getattr(self, k) for k in keys}}  # fmt: skip


def dry_run_config(**overrides: Any) -> GpuBenchConfig:
    """Return the CPU dry run: the tiny model, 2 steps, rows of 128 tokens, a short probe.

    Example:
        >>> dry_run_config().device, dry_run_config(steps=3).steps
        ('cpu', 3)
    """
    fields = {"model": "tiny", "device": "cpu", "steps": 2, "batch_size": 2, "seq_len": 128,
              "rank": 4, "peak_seconds": 0.02, "threads": 1}  # fmt: skip
    return GpuBenchConfig(**{**fields, **overrides})


def nominal_peak(device_name: str) -> dict[str, Any] | None:
    """Return the datasheet's dense bf16 peak of a device name, None when unknown.

    Example:
        >>> nominal_peak("NVIDIA H200")["peak_flops"]
        989500000000000.0
        >>> nominal_peak("NVIDIA H100 PCIe")["matched"], nominal_peak("a CPU") is None
        ('H100 PCIe', True)
    """
    for fragment, flops in NOMINAL_BF16_PEAKS:
        if fragment.lower() in device_name.lower():
            return {"matched": fragment, "peak_flops": flops, "source": "NVIDIA datasheet, dense"}
    return None


def qlora_skip_reason(device: str) -> str | None:
    """Return why the bitsandbytes QLoRA peer cannot run here, or None when it can.

    Example:
        >>> qlora_skip_reason("cpu")
        "bitsandbytes' 4-bit kernels need a CUDA device (got cpu)"
    """
    if device == "cpu":
        return f"bitsandbytes' 4-bit kernels need a CUDA device (got {device})"
    if find_spec("bitsandbytes") is None:
        return "the package bitsandbytes is not installed: pip install bitsandbytes"
    return None


def plan_runs(config: GpuBenchConfig) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """Return the (method, engine) runs in order and the skipped ones with their reasons.

    LoRA with every engine, then QLoRA with ``QLORA_ENGINES`` (the peer only where
    ``qlora_skip_reason`` allows).

    Example:
        >>> plan_runs(dry_run_config(engines=("coursekit", "hf")))[0]
        [('lora', 'coursekit'), ('lora', 'hf'), ('qlora', 'coursekit')]
    """
    runs = [("lora", engine) for engine in config.engines]
    skipped = []
    if config.qlora:
        reason = qlora_skip_reason(config.device)
        runs.append(("qlora", "coursekit"))
        if reason is None:
            runs.append(("qlora", "hf"))
        else:
            skipped.append({"method": "qlora", "engine": "hf", "reason": reason})
    return runs, skipped


def random_checkpoint(name: str, directory: str | Path, *, seed: int, precision: str) -> str:
    """Write preset ``name``'s architecture with random weights to ``directory``; its path.

    ``tiny`` is returned as is (``coursekit.loading`` builds it). The weights are saved in
    the run's precision; the engines load the offline Qwen2.5 tokenizer for it.

    Example:
        >>> random_checkpoint("tiny", "unused", seed=0, precision="bf16")
        'tiny'
    """
    import torch
    from transformers import Qwen2ForCausalLM

    from coursekit.presets import preset_config
    from coursekit.recipes.bench.train_throughput import DTYPES

    if name == "tiny":
        return name
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(preset_config(name)).to(DTYPES[precision])
    model.save_pretrained(directory)
    return str(directory)


def mfu(result: dict[str, Any], nominal: dict[str, Any] | None) -> dict[str, Any]:
    """Add the achieved FLOP/s as a fraction of the nominal peak (None when it is unknown).

    Example:
        >>> mfu({"achieved_flops": 5e14}, nominal_peak("NVIDIA H200"))["nominal_fraction"]
        0.5053057099545225
    """
    fraction = None if nominal is None else result["achieved_flops"] / nominal["peak_flops"]
    return {**result, "nominal_fraction": fraction}


def run_gpu_bench(
    config: GpuBenchConfig,
    output: str | Path,
    *,
    runner: Callable[..., dict[str, Any]] = run_child,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark and write ``gpu.json`` and ``gpu.md`` into ``output``; the report.

    Args:
        config: what runs (``dry_run_config()`` on a CPU).
        output: the folder to write into (created); the random checkpoint lives in a
            temporary folder inside it while the runs need it.
        runner: ``runner(job, module=...)`` runs one job and returns its result
            (``child.run_child``: a fresh process).
        log: receives one line per finished step.

    Raises:
        CoursekitError: an engine's package is missing, or a run failed (its stderr's end).

    Example:
        >>> run_gpu_bench(dry_run_config(), "gpu-out")["runs"]["lora"].keys()  # doctest: +SKIP
        dict_keys(['coursekit', 'hf', 'trl'])
    """
    from coursekit.recipes.bench.gpu_memory import check_memory
    from coursekit.recipes.bench.gpu_report import describe_gpu_machine, write_report

    missing = [e for e in config.engines if e in PEER_PACKAGES and find_spec(e) is None]
    if missing:
        raise CoursekitError(
            f"gpu bench: the {', '.join(missing)} engine needs its package: pip install "
            f"{' '.join(PEER_PACKAGES[e] for e in missing)}, or leave it out of --engines"
        )
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    memory = None
    if config.memory:  # first: no CUDA context of this process in the children's "used"
        memory = check_memory(
            config.model, config.device, dry_run=config.device == "cpu",
            runner=lambda job: runner(job, module=MEMORY_MODULE), log=log,
        )  # fmt: skip
    machine = describe_gpu_machine(config.device)
    peak = measure_peak(config, log=log)
    nominal = nominal_peak(machine.get("gpu_name") or "")
    planned, skipped = plan_runs(config)
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix=".model-", dir=folder) as scratch:
        model = random_checkpoint(config.model, scratch, seed=config.seed,
                                  precision=config.precision)  # fmt: skip
        for method, engine in planned:
            job = {**config.settings(model, method), "engine": engine, "threads": config.threads}
            result = mfu(derive(runner(job, module=ENGINE_MODULE), peak["peak_flops"]), nominal)
            runs.setdefault(method, {})[engine] = result
            log(f"gpu bench: {method} {engine}: {result['tokens_per_s']:.0f} target tok/s")
    report = {
        "config": codec.to_dict(config), "machine": machine, "matmul_peak": peak,
        "nominal_peak": nominal, "runs": runs, "skipped": skipped, "memory": memory,
    }  # fmt: skip
    report["files"] = write_report(report, folder)
    return report


def measure_peak(config: GpuBenchConfig, *, log: Callable[[str], None]) -> dict[str, Any]:
    """Measure the ``torch.mm`` peak in the run's precision at the model's shapes.

    The rows are micro-batch × seq_len, the engines' tokens per step; on CUDA the probe's
    cached blocks are released afterwards, so the engines' processes find them free.

    Example:
        >>> measure_peak(dry_run_config(), log=print)["peak_flops"] > 0  # doctest: +SKIP
        True
    """
    import torch

    from coursekit.recipes.bench.flops import matmul_peak
    from coursekit.recipes.bench.gpu_memory import model_config_of
    from coursekit.recipes.bench.train_throughput import DTYPES

    peak = matmul_peak(model_config_of(config.model), config.batch_size * config.seq_len,
                       min_seconds=config.peak_seconds, device=config.device,
                       dtype=DTYPES[config.precision])  # fmt: skip
    if config.device != "cpu":  # pragma: no cover - GPU only
        torch.cuda.empty_cache()
    log(f"gpu bench: {config.precision} torch.mm peak {peak['peak_flops'] / 1e12:.2f} TFLOP/s")
    return {**peak, "precision": config.precision, "device": config.device}


def register_gpu_options(parser: argparse.ArgumentParser) -> None:
    """Add the flags ``coursekit bench --gpu`` has beyond ``coursekit bench``'s own.

    ``coursekit bench`` already has ``--output``, ``--model``, ``--engines``, ``--steps``,
    ``--batch-size``, ``--seq-len``, ``--rank``, ``--lr``, ``--seed``, ``--threads`` and
    ``--peak-seconds``; ``config_from_args`` reads them too.

    Example:
        >>> parser = argparse.ArgumentParser()
        >>> register_gpu_options(parser)
        >>> parser.parse_args(["--gpu", "--no-qlora"]).no_qlora
        True
    """
    add = parser.add_argument
    add("--gpu", action="store_true", help="run the prepared one-GPU benchmark (docs/gpu.md)")
    add("--dry-run", action="store_true", help="--gpu on the CPU: tiny model, 2 steps")
    add("--device", help="cuda, cuda:N or cpu (default cuda; cpu with --dry-run)")
    add("--targets", help="LoRA target preset (default all-linear)")
    add("--precision", choices=("bf16", "fp32"), help="weights and autocast (default bf16)")
    add("--no-qlora", action="store_true", help="skip the QLoRA comparison")
    add("--no-memory", action="store_true", help="skip the memory-estimate check")


def _add_shared_options(parser: argparse.ArgumentParser) -> None:
    """Add the flags ``coursekit bench`` already has (for ``main``'s standalone parser)."""
    add = parser.add_argument
    add("--output", type=Path, required=True, help="folder for gpu.json and gpu.md")
    add("--model", help="preset name or tiny (default qwen2.5-coder-0.5b)")
    add("--engines", help=f"comma-separated, of {','.join(SUITE_ENGINES)} (default: all)")
    for flag, kind in (("--steps", int), ("--batch-size", int), ("--seq-len", int),
                       ("--rank", int), ("--lr", float), ("--seed", int), ("--threads", int),
                       ("--peak-seconds", float)):  # fmt: skip
        add(flag, type=kind, help=f"see GpuBenchConfig.{flag[2:].replace('-', '_')}")


def config_from_args(args: argparse.Namespace) -> GpuBenchConfig:
    """Return the config of the flags (unset flags: defaults; ``--dry-run``: its defaults).

    Example:
        >>> args = parser.parse_args(["--output", "o", "--dry-run"])  # doctest: +SKIP
        >>> config_from_args(args).device  # doctest: +SKIP
        'cpu'
    """
    fields = ("model", "device", "steps", "batch_size", "seq_len", "rank", "lr", "seed",
              "threads", "peak_seconds", "targets", "precision")  # fmt: skip
    given = {k: getattr(args, k) for k in fields if getattr(args, k, None) is not None}
    if getattr(args, "engines", None):
        given["engines"] = tuple(v.strip() for v in args.engines.split(",") if v.strip())
    given.update(qlora=not args.no_qlora, memory=not args.no_memory)
    return dry_run_config(**given) if args.dry_run else GpuBenchConfig(**given)


def run_from_args(args: argparse.Namespace, *, log: Callable[[str], None] | None = None) -> int:
    """Run from parsed flags: skip without CUDA (one line, ``SKIPPED``), else run and print.

    Example:
        >>> run_from_args(parser.parse_args(["--output", "o"]))  # without CUDA  # doctest: +SKIP
        gpu bench: skipped, torch 2.x sees no CUDA device (use --dry-run for the CPU path)
        0
    """
    import torch

    config = config_from_args(args)
    say = log or (lambda line: print(line, file=sys.stderr))
    if config.device != "cpu" and not torch.cuda.is_available():
        say(f"gpu bench: skipped, torch {torch.__version__} sees no CUDA device "
            "(use --dry-run for the CPU path)")  # fmt: skip
        return SKIPPED
    report = run_gpu_bench(config, args.output, log=say)
    print(Path(report["files"]["gpu.md"]).read_text(), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m coursekit.recipes.bench.gpu``: the standalone entry of ``benchmarks/gpu.sh``.

    Example:
        >>> main(["--output", "gpu-out", "--dry-run"])  # doctest: +SKIP
        0
    """
    parser = argparse.ArgumentParser(prog="python -m coursekit.recipes.bench.gpu")
    _add_shared_options(parser)
    register_gpu_options(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except (CoursekitError, ValueError) as error:
        print(f"gpu bench: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover - the script entry
    sys.exit(main())
