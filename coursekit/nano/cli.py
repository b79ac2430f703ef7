"""The ``coursekit nano`` commands: ``build`` (reproduce the bundled model), ``instruct``, ``info``.

``coursekit nano build`` runs :func:`coursekit.recipes.nano_build.build_nano` on ``data/corpus``
into ``data/models/qwen2.5-coder-nano`` with the default :class:`NanoConfig`; flags change
the sizes for experiments (``--steps 50 --out /tmp/nano`` gives a quick, weak model).

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

_SIZES = ("steps", "hidden_size", "num_hidden_layers", "vocab_size", "seq_len",
          "micro_batch_size", "seed")  # fmt: skip


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``nano`` command group to the ``coursekit`` parser."""
    from coursekit.data.corpus import default_corpus_dir
    from coursekit.loading import NANO, models_root

    nano = subparsers.add_parser("nano", help="the bundled Qwen2.5-Coder-nano model")
    sub = nano.add_subparsers(dest="nano_command", required=True)
    build = sub.add_parser("build", help="pretrain the nano model from the corpus manifest")
    build.add_argument("--corpus", type=Path, default=default_corpus_dir())
    build.add_argument("--out", type=Path, default=models_root() / NANO)
    build.add_argument("--work", type=Path, default=None, help="default: .<name>.work beside --out")
    build.add_argument("--resume", action="store_true", help="reuse finished stages")
    build.add_argument("--cache", type=Path, default=None, help="Debian crate cache")
    defaults = NanoConfig()
    for name in _SIZES:
        build.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name))
    build.add_argument(
        "--warmup-steps", type=int, default=None, help="default: min(100, steps // 20)"
    )
    build.set_defaults(handler=_build)
    instruct = sub.add_parser(
        "instruct", help="full fine-tune of a pretrained nano on the training pairs (ChatML)"
    )
    instruct.add_argument("--base", default="nano", help="the pretrained model (name or dir)")
    instruct.add_argument("--corpus", type=Path, default=default_corpus_dir())
    instruct.add_argument("--out", type=Path, required=True, help="the model directory to write")
    instruct.add_argument("--work", type=Path, default=None, help="default: .<name>.work")
    instruct.add_argument("--resume", action="store_true", help="continue an interrupted run")
    for name in ("steps", "micro_batch_size", "warmup_steps", "seq_len", "seed"):
        instruct.add_argument(f"--{name.replace('_', '-')}", type=int, default=None)
    instruct.add_argument("--learning-rate", type=float, default=None)
    instruct.set_defaults(handler=_instruct)
    info = sub.add_parser("info", help="print the bundled model's build report")
    info.add_argument("--model", type=Path, default=None)
    info.set_defaults(handler=_info)


def _build(args: argparse.Namespace) -> int:
    from coursekit.recipes.nano_build import build_nano

    warmup = args.warmup_steps if args.warmup_steps is not None else min(100, args.steps // 20)
    sizes = {n: getattr(args, n) for n in _SIZES}
    config = dataclasses.replace(NanoConfig(), warmup_steps=warmup, **sizes)
    report = build_nano(
        args.corpus, args.out, config=config, work_dir=args.work, resume=args.resume,
        cache_dir=args.cache,
    )  # fmt: skip
    e = report["evaluation"]
    print(
        f"perplexity {e['perplexity']:.2f} (unigram {e['perplexity_unigram']:.2f}), "
        f"syntax rate {e['syntax_rate']:.0%}, {report['seconds']['total']} s"
    )
    return 0


def _instruct(args: argparse.Namespace) -> int:
    from coursekit.loading import resolve_model
    from coursekit.recipes.nano_instruct import InstructConfig, instruct_nano

    names = ("steps", "micro_batch_size", "warmup_steps", "seq_len", "seed", "learning_rate")
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    config = dataclasses.replace(InstructConfig(), **given)
    base = resolve_model(args.base)
    instruct_nano(base, args.corpus, args.out, config=config, work_dir=args.work,
                  resume=args.resume)  # fmt: skip
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
    if not isinstance(report, dict) or not isinstance(report.get("evaluation"), dict):
        raise CoursekitError(
            f"{path} has no 'evaluation' section (an unfinished or foreign build); rebuild with "
            "`coursekit nano build`"
        )
    report["evaluation"].pop("completions", None)
    print(json.dumps(report, indent=2))
    return 0
