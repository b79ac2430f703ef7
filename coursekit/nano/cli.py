"""The ``coursekit nano`` commands: ``build``, ``instruct``, ``sweep`` and ``info``.

``coursekit nano build`` reproduces the bundled models: it pretrains
(:func:`coursekit.recipes.nano_build.build_nano` on ``data/corpus``, the default
:class:`NanoConfig`) into ``data/models/qwen2.5-coder-nano-base``, then runs the instruct stage
(:func:`coursekit.recipes.nano_instruct.instruct_nano`) into ``data/models/qwen2.5-coder-nano``,
the default model. Flags change the sizes for experiments (``--steps 50 --out /tmp/nano
--no-instruct`` gives a quick, weak model); ``sweep`` compares shapes at one CPU budget.

Example:
    >>> from coursekit.cli import main
    >>> main(["nano", "build", "--steps", "20", "--out", "/tmp/nano"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from coursekit.nano.config import NanoConfig

_SIZES = ("steps", "hidden_size", "num_hidden_layers", "num_attention_heads",
          "intermediate_size", "vocab_size", "seq_len", "micro_batch_size",
          "max_position_embeddings", "seed")  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``nano`` command group to the ``coursekit`` parser."""
    from coursekit.data.corpus import default_corpus_dir
    from coursekit.loading import NANO, NANO_BASE, models_root

    nano = subparsers.add_parser("nano", help="the bundled Qwen2.5-Coder-nano model")
    sub = nano.add_subparsers(dest="nano_command", required=True)
    build = sub.add_parser(
        "build", help="pretrain nano (→ nano-base), then its instruct stage (→ nano)"
    )
    build.add_argument("--corpus", type=Path, default=default_corpus_dir())
    build.add_argument("--out", type=Path, default=models_root() / NANO_BASE)
    build.add_argument(
        "--instruct-out", type=Path, default=None,
        help=f"default: data/models/{NANO} for the default --out, else <out>-instruct",
    )  # fmt: skip
    build.add_argument("--no-instruct", action="store_true", help="pretrain only")
    build.add_argument("--instruct-steps", type=int, default=None, help="default: 600")
    build.add_argument("--work", type=Path, default=None, help="default: .<name>.work beside --out")
    build.add_argument("--resume", action="store_true", help="reuse finished stages")
    build.add_argument("--cache", type=Path, default=None, help="Debian crate cache")
    defaults = NanoConfig()
    for name in _SIZES:
        build.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    build.add_argument(
        "--warmup-steps", type=int, default=None, help="default: min(100, steps // 20)"
    )
    build.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    build.add_argument("--precision", choices=["fp32", "bf16"], default=defaults.precision)
    build.set_defaults(handler=_build)
    sweep = sub.add_parser("sweep", help="short pretraining runs at one CPU budget (bits/byte)")
    sweep.add_argument("--text", type=Path, required=True, help="folder with the build's texts")
    sweep.add_argument("--out", type=Path, required=True, help="one folder per variant")
    sweep.add_argument("--corpus", type=Path, default=default_corpus_dir())
    sweep.add_argument("--budget", type=float, default=150.0, help="pretraining seconds each")
    sweep.add_argument("--fraction", type=float, default=1.0, help="sample of the documents")
    sweep.set_defaults(handler=_sweep)
    instruct = sub.add_parser(
        "instruct", help="full fine-tune of a pretrained nano on the training pairs (ChatML)"
    )
    instruct.add_argument("--base", default="nano-base", help="the pretrained model (name or dir)")
    instruct.add_argument("--corpus", type=Path, default=default_corpus_dir())
    instruct.add_argument("--out", type=Path, required=True, help="the model directory to write")
    instruct.add_argument("--work", type=Path, default=None, help="default: .<name>.work")
    instruct.add_argument("--resume", action="store_true", help="continue an interrupted run")
    for name in ("steps", "micro_batch_size", "warmup_steps", "seq_len", "seed"):
        instruct.add_argument(f"--{name.replace('_', '-')}", type=int, default=None)
    instruct.add_argument("--learning-rate", type=float, default=None)
    instruct.add_argument("--precision", choices=["fp32", "bf16"], default=None)
    instruct.set_defaults(handler=_instruct)
    compare = sub.add_parser("compare", help="held-out bits per byte of models on one text")
    compare.add_argument("models", nargs="+", help="model names or directories")
    compare.add_argument("--text", type=Path, required=True, help="a build's heldout.rs")
    compare.add_argument("--rows", type=int, default=256)
    compare.add_argument("--seq-len", type=int, default=512)
    compare.set_defaults(handler=_compare)
    info = sub.add_parser("info", help="print the bundled model's build report")
    info.add_argument("--model", type=Path, default=None)
    info.set_defaults(handler=_info)


def _build(args: argparse.Namespace) -> int:
    from coursekit.recipes.nano_build import build_nano
    from coursekit.recipes.nano_instruct import InstructConfig, instruct_nano

    warmup = args.warmup_steps if args.warmup_steps is not None else min(100, args.steps // 20)
    sizes = {n: getattr(args, n) for n in _SIZES}
    config = dataclasses.replace(
        NanoConfig(), warmup_steps=warmup, learning_rate=args.learning_rate,
        precision=args.precision, **sizes,
    )  # fmt: skip
    report = build_nano(
        args.corpus, args.out, config=config, work_dir=args.work, resume=args.resume,
        cache_dir=args.cache,
    )  # fmt: skip
    e = report["evaluation"]
    print(
        f"perplexity {e['perplexity']:.2f} (unigram {e['perplexity_unigram']:.2f}), "
        f"syntax rate {e['syntax_rate']:.0%}, {report['seconds']['total']} s"
    )
    if args.no_instruct:
        return 0
    stage = InstructConfig(precision=args.precision)
    if args.instruct_steps is not None:
        warm = min(stage.warmup_steps, args.instruct_steps // 10)
        stage = dataclasses.replace(stage, steps=args.instruct_steps, warmup_steps=warm)
    out = args.instruct_out or _instruct_out(args.out)
    work = out.with_name(f".{out.name}.work")
    resume = args.resume and (work / "config.yaml").is_file()
    tuned = instruct_nano(args.out, args.corpus, out, config=stage, resume=resume)
    total = report["seconds"]["total"] + tuned["seconds"]
    print(f"nano build: both stages in {total:.0f} s ({total / 60:.1f} min)")
    return 0


def _instruct_out(base_out: Path) -> Path:
    """Return where the instruct stage writes: the bundled ``nano`` for the bundled base."""
    from coursekit.loading import NANO, NANO_BASE, models_root

    if base_out.resolve() == (models_root() / NANO_BASE).resolve():
        return models_root() / NANO
    return base_out.with_name(f"{base_out.name}-instruct")


def _need_file(path: Path, flag: str, expected: str) -> None:
    """Raise a one-line error unless ``path`` is a file (``flag`` takes ``expected``)."""
    from coursekit.errors import CoursekitError

    if not path.is_file():
        raise CoursekitError(
            f"{flag}: {path} is not a file; pass {expected} (written by `coursekit nano build`)"
        )


def _sweep(args: argparse.Namespace) -> int:
    from coursekit.io import atomic_open
    from coursekit.recipes.nano_sweep import run_sweep, sample_documents

    text = args.text
    for name in ("pretrain.rs", "heldout.rs"):
        _need_file(text / name, "--text", "a folder holding a build's pretrain.rs and heldout.rs")
    if args.fraction < 1.0:
        text = args.out / "text"
        text.mkdir(parents=True, exist_ok=True)
        if not (text / "heldout.rs").is_file():
            sample_documents(args.text / "pretrain.rs", text / "pretrain.rs", args.fraction, 0)
            with atomic_open(text / "heldout.rs", "wb") as copy:
                copy.write((args.text / "heldout.rs").read_bytes())
    run_sweep(args.corpus, text, args.out, budget_seconds=args.budget)
    print((args.out / "table.md").read_text(encoding="utf-8"))
    return 0


def _instruct(args: argparse.Namespace) -> int:
    from coursekit.loading import resolve_model
    from coursekit.recipes.nano_instruct import InstructConfig, instruct_nano

    names = ("steps", "micro_batch_size", "warmup_steps", "seq_len", "seed", "learning_rate",
             "precision")  # fmt: skip
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    config = dataclasses.replace(InstructConfig(), **given)
    base = resolve_model(args.base)
    instruct_nano(base, args.corpus, args.out, config=config, work_dir=args.work,
                  resume=args.resume)  # fmt: skip
    return 0


def _compare(args: argparse.Namespace) -> int:
    from coursekit.corpus.pretrain_text import read_documents
    from coursekit.loading import resolve_model
    from coursekit.nano.evaluate import heldout_bits_per_byte

    _need_file(args.text, "--text", "a build's heldout.rs")
    documents = list(read_documents(args.text))
    print(f"{len(documents)} documents of {args.text}; {args.rows} rows of {args.seq_len} tokens")
    for name in args.models:
        row = heldout_bits_per_byte(
            resolve_model(name), documents, seq_len=args.seq_len, count=args.rows, seed=0
        )
        print(f"{name}: perplexity {row['perplexity']:.2f}, {row['bits_per_byte']:.4f} bits/byte "
              f"({row['targets']:,} targets, {row['bytes']:,} bytes)")  # fmt: skip
    return 0


def _info(args: argparse.Namespace) -> int:
    from coursekit.errors import CoursekitError
    from coursekit.loading import resolve_model

    directory = args.model or Path(resolve_model("nano"))
    path = directory / "build.json"
    if not path.is_file():
        raise CoursekitError(f"{path} does not exist; build the model with `coursekit nano build`")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CoursekitError(
            f"{path} is not valid JSON ({error}); rebuild with `coursekit nano build`"
        ) from None
    if isinstance(report, dict) and report.get("stage") == "instruct":
        report.pop("pretrained_crates", None)
        print(json.dumps(report, indent=2))
        return 0
    if not isinstance(report, dict) or not isinstance(report.get("evaluation"), dict):
        raise CoursekitError(
            f"{path} has no 'evaluation' section (an unfinished or foreign build); rebuild with "
            "`coursekit nano build`"
        )
    report["evaluation"].pop("completions", None)
    print(json.dumps(report, indent=2))
    return 0
