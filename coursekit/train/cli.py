"""``coursekit train`` and ``coursekit lr-find``: the training recipes for a terminal.

The recipes are :func:`coursekit.recipes.finetune.finetune` and
:func:`coursekit.recipes.lr_find.lr_find`; this module turns flags into their ``RunSpec``.

Exit statuses: 0 done (or already finished), 1 the run started and failed (a non-finite
loss or gradient, a full disk; the newest checkpoint is intact and named), 2 bad input
(refused before anything changed), 130 interrupted by SIGINT/SIGTERM (resume with
``--resume``); see :mod:`coursekit.train.failures`.

Settings come, in rising priority, from the defaults, ``--config FILE.yaml`` (the layout of a
run's ``config.yaml``; with ``--resume`` and no ``--config``, the run's own) and the flags.
Everything is validated before the model or data is loaded.

Examples:
    coursekit train --model tiny --method lora --rank 8 --max-steps 40 --output runs/r8
    coursekit train --output runs/r8 --resume
    coursekit lr-find --model tiny --output runs/lr
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from coursekit.adapters import VARIANTS, run_methods
from coursekit.errors import CoursekitWarning
from coursekit.train.callbacks import BaseCallback
from coursekit.train.config import CURRICULA, ON_NONFINITE
from coursekit.train.failures import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    RunFailedError,
    TrainingInterrupted,
)
from coursekit.train.spec import RunSpec, load_spec

# flag destination → (section of the run config, key); None section = top level
_FLAG_KEYS: dict[str, tuple[str | None, str]] = {
    "model": (None, "model"),
    "data": (None, "data"),
    "method": (None, "method"),
    "rank": ("adapter", "rank"),
    "alpha": ("adapter", "alpha"),
    "dropout": ("adapter", "dropout"),
    "targets": ("adapter", "targets"),
    "batch_size": ("train", "micro_batch_size"),
    "grad_accum": ("train", "gradient_accumulation"),
    "lr": ("train", "learning_rate"),
    "max_steps": ("train", "max_steps"),
    "seq_len": ("train", "seq_len"),
    "packing": ("train", "packing"),
    "curriculum": ("train", "curriculum"),
    "seed": ("train", "seed"),
    "save_every": ("train", "save_every"),
    "eval_every": ("train", "eval_every"),
    "warmup_steps": ("train", "warmup_steps"),
    "schedule": ("train", "schedule"),
    "on_nonfinite": ("train", "on_nonfinite"),
}


def _targets(text: str) -> str | list[str]:
    return [t.strip() for t in text.split(",")] if "," in text else text


def _add_common(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--model", help="nano (default) | tiny | a bundled model's name | a hub id | a directory")
    add("--data", help="split directory with train/val/test.jsonl[.gz] (default: data/corpus)")
    add(
        "--method",
        choices=run_methods(),
        help=f"an adapter variant ({' | '.join(VARIANTS)}), q + a variant (NF4 base, e.g. qlora) "
        "or full",
    )
    add("--rank", type=int)
    add("--alpha", type=float)
    add("--dropout", type=float)
    add("--targets", type=_targets, help="qv | attention | mlp | all-linear | q_proj,v_proj,...")
    add("--batch-size", type=int, help="micro-batch size (rows per forward pass)")
    add("--grad-accum", type=int, help="micro-batches per optimizer step")
    add("--lr", type=float, help="peak learning rate")
    add("--max-steps", type=int)
    add("--seq-len", type=int)
    add("--packing", action=argparse.BooleanOptionalAction, default=None)
    add("--curriculum", choices=CURRICULA)
    add("--seed", type=int)
    add("--config", type=Path, help="a run config.yaml to start from")
    add("--output", type=Path, required=True, help="the run folder, e.g. runs/<name>")


def spec_from_args(args: argparse.Namespace) -> RunSpec:
    """Merge defaults, ``--config`` (or the resumed run's config) and flags into a RunSpec."""
    saved = args.output / "config.yaml"
    if args.config is not None:
        base = load_spec(args.config)
    elif getattr(args, "resume", False) and saved.is_file():
        base = load_spec(saved)
    else:
        base = RunSpec()
    data: dict[str, Any] = base.to_dict()
    for dest, (section, key) in _FLAG_KEYS.items():
        value = getattr(args, dest, None)
        if value is not None:
            (data[section] if section else data)[key] = value
    return RunSpec.from_dict(data)


class _LazyBar(BaseCallback):
    """A progress bar drawn from the first report on, so a refused start draws none."""

    def __init__(self, total_steps: int) -> None:
        self.total_steps, self.bar = total_steps, None

    def _bar(self) -> Any:
        if self.bar is None:
            from coursekit.display.progress import ProgressBar

            self.bar = ProgressBar(total_steps=self.total_steps)
        return self.bar

    def on_step(self, row: dict[str, float]) -> None:
        """Advance the bar."""
        self._bar().on_step(row)

    def on_eval(self, row: dict[str, float]) -> None:
        """Show the validation loss."""
        self._bar().on_eval(row)

    def on_end(self, summary: dict[str, Any]) -> None:
        """Close the bar."""
        self.close()

    def close(self) -> None:
        """End the bar's line (also when the run stops early)."""
        if self.bar is not None:
            self.bar.on_end({})


@contextlib.contextmanager
def _one_line_warnings(command: str) -> Iterator[None]:
    """Print coursekit's warnings as ``coursekit CMD: warning: ...``, one line each."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, CoursekitWarning):
            print(f"coursekit {command}: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _train(args: argparse.Namespace) -> int:
    from coursekit.recipes.finetune import finetune

    spec = spec_from_args(args)
    main_process = os.environ.get("RANK", "0") == "0"  # under `accelerate launch`, rank 0
    bar = spec.train.max_steps and not args.resume and main_process and sys.stderr.isatty()
    callbacks = [_LazyBar(spec.train.max_steps)] if bar else []
    try:
        with _one_line_warnings("train"):
            summary = finetune(spec, args.output, resume=args.resume, callbacks=callbacks)
    except TrainingInterrupted as stop:
        return _stopped(callbacks, f"coursekit train: {stop}", EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        line = f"coursekit train: interrupted before training started; {args.output} is as it was"
        return _stopped(callbacks, line, EXIT_INTERRUPTED)
    except RunFailedError as error:
        return _stopped(callbacks, f"coursekit train: error: {error}", EXIT_FAILED)
    if summary.get("already_finished") and main_process:
        print(f"{args.output} already finished at step {summary['steps']}: nothing to do")
    for key in ("steps", "val_loss", "tokens_per_s", "peak_memory_bytes", "output"):
        if main_process:
            print(f"{key:>18}: {summary[key]}")
    return 0


def _stopped(callbacks: list[Any], line: str, status: int) -> int:
    for callback in callbacks:
        callback.close()
    print(line, file=sys.stderr)
    return status


def _lr_find(args: argparse.Namespace) -> int:
    from coursekit.recipes.lr_find import lr_find

    spec = spec_from_args(args)
    try:
        with _one_line_warnings("lr-find"):
            _, suggestions = lr_find(
                spec, args.output, num_steps=args.num_steps, start_lr=args.start_lr,
                end_lr=args.end_lr,
            )  # fmt: skip
    except KeyboardInterrupt:
        print("coursekit lr-find: interrupted; lr_find.json and lr_find.png are as they were",
              file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    for name, lr in suggestions.items():
        print(f"{name:>9}: {lr:.3e}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``lr-find`` to the ``coursekit`` command."""
    train = subparsers.add_parser("train", help="fine-tune (LoRA, DoRA, QLoRA or full)")
    _add_common(train)
    train.add_argument("--save-every", type=int, help="checkpoint every N steps (0 = never)")
    train.add_argument("--eval-every", type=int, help="validate every N steps (0 = at the end)")
    train.add_argument("--warmup-steps", type=int)
    train.add_argument("--schedule", choices=["constant", "linear", "cosine"])
    train.add_argument(
        "--on-nonfinite",
        choices=ON_NONFINITE,
        help="a NaN/inf loss or gradient: stop the run (default) or skip the step",
    )
    train.add_argument("--resume", action="store_true", help="continue the run in --output")
    train.set_defaults(handler=_train)
    lr_find = subparsers.add_parser("lr-find", help="LR range test: suggest a learning rate")
    _add_common(lr_find)
    lr_find.add_argument("--num-steps", type=int, default=100)
    lr_find.add_argument("--start-lr", type=float, default=1e-7)
    lr_find.add_argument("--end-lr", type=float, default=10.0)
    lr_find.set_defaults(handler=_lr_find)
