"""``coursekit memory estimate|measure|validate`` and ``coursekit plan``: the memory recipes.

Commands:
    ``coursekit memory estimate --model M --method lora|dora|qlora|full --rank R --alpha A
    --targets T --batch-size B --seq-len S [--grad-checkpointing] [--json]``: the breakdown
    and total (``total_bytes`` in JSON).
    ``coursekit memory measure`` (same flags, ``--steps``, ``--device``): the measured peak
    (``peak_bytes`` in JSON) of a few real training steps.
    ``coursekit memory validate [--fast] [--json]``: the estimate-vs-measured grid; exit 1 if
    an error exceeds the tolerance.
    ``coursekit plan --model PRESET|DIR --vram GB [--json]``: the best configuration under a
    GPU budget; exit 1 with the reason when nothing fits.

``--model`` is a preset (``qwen2.5-coder-0.5b`` …), ``tiny``, or a directory holding a
``config.json`` (only the config is read, never weights).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from coursekit.adapters import AdapterConfig, count_trainable, run_methods
from coursekit.loading import DEFAULT_MODEL
from coursekit.memory.estimate import ATTENTIONS, GIB, estimate, parameter_count
from coursekit.memory.planner import (
    METHODS,
    DoesNotFit,
    adapter_for,
    model_config_from,
    plan,
)
from coursekit.train.config import OPTIMIZERS, PRECISIONS, TrainConfig


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Add the model/method/rank/alpha/targets/batch/seq flags shared with ``coursekit train``."""
    parser.add_argument("--model", default="qwen2.5-coder-0.5b", help="preset | tiny | dir")
    parser.add_argument("--method", default="lora", choices=run_methods())
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=16.0)
    parser.add_argument("--targets", default="qv", help="qv | attention | mlp | all-linear")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step")
    parser.add_argument("--grad-checkpointing", action="store_true")
    parser.add_argument("--precision", default="bf16", choices=PRECISIONS)
    parser.add_argument("--optimizer", default="adamw", choices=OPTIMIZERS)
    parser.add_argument("--attention", default="sdpa", choices=ATTENTIONS)
    parser.add_argument("--json", action="store_true", help="print JSON")


def configs_from(args: argparse.Namespace) -> tuple[Any, AdapterConfig | None, TrainConfig]:
    """Return (model config, adapter config or None for full, train config) from the flags."""
    targets = args.targets.split(",") if "," in args.targets else args.targets
    adapter = adapter_for(args.method, args.rank, targets, alpha=args.alpha)
    train = TrainConfig(
        micro_batch_size=args.batch_size,
        seq_len=args.seq_len,
        gradient_accumulation=args.grad_accum,
        precision=args.precision,
        optimizer=args.optimizer,
        gradient_checkpointing=args.grad_checkpointing,
    )
    return model_config_from(args.model), adapter, train


def _estimate(args: argparse.Namespace) -> int:
    model, adapter, train = configs_from(args)
    breakdown = estimate(model, adapter, train, attention=args.attention)
    trainable = parameter_count(model) if adapter is None else count_trainable(model, adapter)
    if args.json:
        print(json.dumps({**breakdown.to_dict(), "trainable_parameters": trainable}, indent=2))
        return 0
    for name in (
        "base_weights",
        "adapter_weights",
        "gradients",
        "optimizer_states",
        "activations",
        "logits",
        "workspace",
        "overhead",
    ):
        print(f"{name:>18}: {getattr(breakdown, name) / GIB:9.3f} GiB")
    print(f"{'trainable params':>18}: {trainable:,}")
    print(f"{'peak':>18}: {breakdown.peak_bytes / GIB:9.3f} GiB ({breakdown.peak_phase})")
    print(f"{'total':>18}: {breakdown.total_bytes / GIB:9.3f} GiB ({breakdown.total_bytes:,} B)")
    return 0


def _measure(args: argparse.Namespace) -> int:
    from coursekit.memory.measure import measure

    model, adapter, train = configs_from(args)
    result = measure(
        model, adapter, train, steps=args.steps, attention=args.attention, device=args.device
    )
    if args.json:
        print(json.dumps(vars(result), indent=2))
    else:
        print(
            f"peak {result.peak_bytes / 2**20:.2f} MiB ({result.peak_bytes:,} B) by "
            f"{result.method} on {result.device} over {result.steps} steps"
        )
    return 0


def _validate(args: argparse.Namespace) -> int:
    from coursekit.recipes.memory_validate import (
        FAST_GRID,
        GRID,
        TOLERANCE,
        format_table,
        validate,
        worst_error,
    )

    rows = validate(FAST_GRID if args.fast else GRID)
    worst = worst_error(rows)
    if args.json:
        table = [vars(row) | {"relative_error": row.relative_error} for row in rows]
        print(json.dumps({"rows": table, "worst_error": worst, "tolerance": TOLERANCE}, indent=2))
    else:
        print(format_table(rows))
    return 0 if worst <= TOLERANCE else 1


def _plan(args: argparse.Namespace) -> int:
    if not 0 < args.vram < math.inf:  # also refuses nan
        raise ValueError(
            f"--vram must be a finite number of GB > 0 (got {args.vram}); e.g. --vram 8 "
            "for an 8 GB GPU"
        )
    model = model_config_from(args.model)
    request = TrainConfig(
        micro_batch_size=args.batch_size, seq_len=args.seq_len, precision=args.precision
    )
    try:
        best = plan(args.vram * GIB, model, train_config=request, methods=args.methods.split(","))
    except DoesNotFit as error:
        report = {
            "fits": False,
            "minimum_bytes": error.minimum_bytes,
            "dominant_term": error.dominant_term,
            "message": str(error),
        }
        print(json.dumps(report, indent=2) if args.json else f"{args.model}: {error}")
        return 1
    if args.json:
        print(json.dumps({"fits": True, **best.to_dict()}, indent=2))
    else:
        print(f"{args.model} on {args.vram:g} GB: {best.describe()}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``memory`` (estimate / measure / validate) and ``plan`` to the ``coursekit`` command."""
    memory = subparsers.add_parser("memory", help="estimate, measure or validate training memory")
    sub = memory.add_subparsers(dest="memory_command", required=True)
    est = sub.add_parser("estimate", help="memory breakdown of a configuration")
    add_model_flags(est)
    est.set_defaults(handler=_estimate)
    mea = sub.add_parser("measure", help="measured peak of a few real training steps")
    add_model_flags(mea)
    mea.add_argument("--steps", type=int, default=2)
    mea.add_argument("--device", default="cpu")
    # Measuring builds and trains the model: by default the bundled nano, fp32, 2 × 128 tokens.
    mea.set_defaults(
        handler=_measure, precision="fp32", model=DEFAULT_MODEL, batch_size=2, seq_len=128
    )
    val = sub.add_parser("validate", help="estimate vs measured on the validation grid")
    val.add_argument("--fast", action="store_true", help="three points instead of the grid")
    val.add_argument("--json", action="store_true")
    val.set_defaults(handler=_validate)
    planner = subparsers.add_parser("plan", help="best fine-tune configuration under a budget")
    planner.add_argument("--model", required=True, help="preset | tiny | dir")
    planner.add_argument("--vram", type=float, required=True, help="GPU memory in GB (GiB)")
    planner.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"run methods to consider, comma-separated, of {','.join(run_methods())}",
    )
    planner.add_argument("--batch-size", type=int, default=8, help="largest micro-batch")
    planner.add_argument("--seq-len", type=int, default=512, help="longest sequence")
    planner.add_argument("--precision", default="bf16", choices=PRECISIONS)
    planner.add_argument("--json", action="store_true")
    planner.set_defaults(handler=_plan)
