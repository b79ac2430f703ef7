"""The ``coursekit`` command: the recipes that compose the package, for a terminal.

Commands:
    ``coursekit doctor [--json]``: the Phase 1.1 prerequisites table (exit 1 on a FAIL).
    ``coursekit baseline [--model M] [--steps N] ... --output DIR``: the Phase 1 baseline
    fine-tune without a notebook; writes metrics.json, history.json and loss_curve.png.
    ``coursekit tiny DIR``: write the random 2-layer Qwen2 test model (with tokenizer).
    ``coursekit tokenizer DIR``: write the offline Qwen2.5 tokenizer.

Bad input (a flag argparse refuses, a config value, a file) prints one line on stderr,
``coursekit <command>: error: <what and the fix>``, and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path

from coursekit.errors import CoursekitError


class CoursekitArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: the message and where help is.

    ``add_subparsers`` makes sub-parsers of the parser's own class, so every ``coursekit``
    sub-command (``coursekit memory estimate`` ...) reports this way.

    Example:
        >>> parser = CoursekitArgumentParser(prog="coursekit demo")
        >>> _ = parser.add_argument("--rank", type=int)
        >>> parser.parse_args(["--rank", "x"])  # doctest: +SKIP
        coursekit demo: error: argument --rank: invalid int value: 'x'; see coursekit demo --help
    """

    def error(self, message: str) -> typing.NoReturn:
        """Print ``<prog>: error: <message>; see <prog> --help`` on stderr and exit 2."""
        self.exit(2, f"{self.prog}: error: {_one_line(message)}; see {self.prog} --help\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Parse as ``ArgumentParser`` does; record the deepest command's name.

        A sub-parser's namespace is copied into its parent's, so the innermost parser that
        ran records its ``prog`` first and its parents keep it.
        """
        parsed, extras = super().parse_known_args(args, namespace)
        if not hasattr(parsed, "_coursekit_prog"):
            parsed._coursekit_prog = self.prog
        return parsed, extras


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _doctor(args: argparse.Namespace) -> int:
    from coursekit.doctor import format_table, run_checks, to_json, worst_status

    checks = run_checks()
    print(to_json(checks) if args.json else format_table(checks))
    return 1 if worst_status(checks) == "FAIL" else 0


def _baseline(args: argparse.Namespace) -> int:
    from coursekit.data.corpus import load_splits
    from coursekit.loading import check_checkpoint, load_tokenizer, resolve_model
    from coursekit.recipes.phase1_baseline import baseline_spec, data_dir, run_baseline

    spec = baseline_spec(
        model=args.model,
        data=args.data,
        rank=args.rank,
        alpha=args.alpha,
        dropout=args.dropout,
        targets=args.targets,
        steps=args.steps,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        lr=args.lr,
        seed=args.seed,
        eval_every=args.eval_every,
    )

    def progress(row: dict[str, float]) -> None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "step")
        print(f"step {int(row['step']):>4}: {shown}", flush=True)

    # run_baseline replaces a previous run in --output before it loads anything: check the
    # data, the tokenizer and the checkpoint first, so that bad input leaves the old run be.
    load_splits(data_dir(spec))
    tokenizer = load_tokenizer(spec.model)
    if Path(resolve_model(spec.model)).is_dir():
        check_checkpoint(resolve_model(spec.model))
    result = run_baseline(
        spec, args.output, generate=args.generate, tokenizer=tokenizer, on_step=progress
    )
    paths = result.save(args.output)
    for name, value in result.metrics.items():
        print(f"{name:>22}: {value:.6g}")
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _tiny(args: argparse.Namespace) -> int:
    from coursekit.tiny import tiny_qwen2

    print(tiny_qwen2(args.out_dir, seed=args.seed))
    return 0


def _tokenizer(args: argparse.Namespace) -> int:
    from coursekit.tokenizer import build_qwen25_tokenizer

    print(build_qwen25_tokenizer(args.out_dir))
    return 0


def _add_baseline(sub: argparse._SubParsersAction) -> None:
    from coursekit.loading import DEFAULT_MODEL

    parser = sub.add_parser("baseline", help="run the Phase 1 baseline LoRA fine-tune")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="nano | tiny | bundled name | hub id | dir"
    )
    parser.add_argument("--data", default="", help="split directory (default: data/corpus)")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=16.0)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--targets", default="qv", choices=["qv", "attention", "mlp", "all-linear"])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=384)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--generate", type=int, default=3)
    parser.add_argument("--output", type=Path, required=True, help="run directory to write")
    parser.set_defaults(handler=_baseline)


# Modules that add their own sub-commands: each has ``register(subparsers)``, whose parsers
# set ``handler`` (a function of the parsed arguments returning the exit code).
COMMAND_MODULES: tuple[str, ...] = (
    "coursekit.corpus.cli",
    "coursekit.train.cli",
    "coursekit.memory.cli",
    "coursekit.nano.cli",
    "coursekit.evaluate.cli",
    "coursekit.recipes.ablate",
    "coursekit.recipes.bench.suite",
    "coursekit.workspace.cli",
    "coursekit.grading.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``coursekit`` command."""
    parser = CoursekitArgumentParser(prog="coursekit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    doctor = sub.add_parser("doctor", help="check the Phase 1 prerequisites")
    doctor.add_argument("--json", action="store_true", help="print JSON instead of a table")
    doctor.set_defaults(handler=_doctor)
    _add_baseline(sub)
    tiny = sub.add_parser("tiny", help="write the random 2-layer Qwen2 smoke-test model")
    tiny.add_argument("out_dir", type=Path)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(handler=_tiny)
    tokenizer = sub.add_parser("tokenizer", help="write the offline Qwen2.5 tokenizer")
    tokenizer.add_argument("out_dir", type=Path)
    tokenizer.set_defaults(handler=_tokenizer)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``coursekit`` command; bad input prints one line on stderr and returns 2.

    Example:
        >>> main(["doctor", "--json"])  # doctest: +SKIP
        0
    """
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    command = getattr(args, "_coursekit_prog", f"coursekit {args.command}")
    try:
        return handler(args)
    except (CoursekitError, ValueError, OSError) as error:
        # OSError: a file the command was pointed at (its message names the path).
        print(f"{command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # commands that can resume (train) say how in their own handler; the rest stop here
        print(f"{command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
