"""The ``coursekit corpus`` commands: fetch, build, stats, validate, pretrain-text.

``fetch --debian CRATE...`` downloads and unpacks Debian crate packages into the cache;
``build SRC... --out DIR [--manifest FILE]`` builds a corpus directory;
``stats DIR [--json]`` summarises one; ``validate FILE`` checks one corpus file;
``pretrain-text DIR --out FILE`` writes the raw training-split source for the nano model.

Example:
    >>> from coursekit.cli import main
    >>> main(["corpus", "validate", "data/seed/val.jsonl"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from coursekit.data.corpus import load_corpus


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``corpus`` command group to the ``coursekit`` parser.

    Example:
        >>> register(argparse.ArgumentParser().add_subparsers())  # doctest: +SKIP
    """
    corpus = subparsers.add_parser("corpus", help="build and inspect the Rust test corpus")
    sub = corpus.add_subparsers(dest="corpus_command", required=True)
    fetch = sub.add_parser("fetch", help="download Debian crate packages into the cache")
    fetch.add_argument("--debian", nargs="+", default=[], metavar="CRATE")
    fetch.add_argument(
        "--new-from-suite",
        default="",
        metavar="SUITE",
        help="also every Rust crate of this Debian suite (e.g. trixie) the machine's lacks",
    )
    fetch.add_argument("--cache", type=Path, default=None, help="cache directory")
    fetch.set_defaults(handler=_fetch)
    build = sub.add_parser("build", help="build a corpus directory from crate sources")
    build.add_argument("sources", nargs="*", type=Path, metavar="SRC")
    build.add_argument("--out", type=Path, required=True)
    build.add_argument("--manifest", type=Path, default=None, help="crates to fetch and use")
    build.add_argument("--cache", type=Path, default=None, help="Debian cache directory")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--val-fraction", type=float, default=0.15)
    build.add_argument("--test-fraction", type=float, default=0.15)
    build.add_argument("--val-verified", type=int, default=150, help="verified samples in val")
    build.add_argument("--test-verified", type=int, default=250, help="verified samples in test")
    build.add_argument(
        "--train-only",
        type=Path,
        default=None,
        metavar="FILE",
        help="crates kept in train: a model's build.json (its pretrained_crates) or one per line",
    )
    build.add_argument("--verify", default="all", help="all | none")
    build.add_argument("--jobs", type=int, default=0, help="0 = the core count")
    build.add_argument("--no-tokens", action="store_true", help="skip Qwen2.5 token counts")
    build.add_argument("--datasheet", action="store_true", help="also write README.md + plots")
    build.set_defaults(handler=_build)
    stats = sub.add_parser("stats", help="summarise a corpus directory")
    stats.add_argument("directory", type=Path)
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(handler=_stats)
    validate = sub.add_parser("validate", help="check every record of a corpus file")
    validate.add_argument("file", type=Path)
    validate.set_defaults(handler=_validate)
    text = sub.add_parser("pretrain-text", help="raw Rust source of the training crates")
    text.add_argument("directory", type=Path, help="corpus directory (with manifest.txt)")
    text.add_argument("--out", type=Path, required=True)
    text.add_argument(
        "--heldout",
        action="store_true",
        help="the validation and test crates' source instead, without files also in training",
    )
    text.add_argument("--cache", type=Path, default=None)
    text.set_defaults(handler=_pretrain_text)
    manifest = sub.add_parser(
        "pretrain-manifest", help="pin every permissive Rust crate Debian ships (nano's text)"
    )
    manifest.add_argument("--out", type=Path, default=Path("data/corpus/pretrain-manifest.txt"))
    manifest.add_argument("--suite", default="trixie", help="newer suite for the crates missing")
    manifest.add_argument("--cache", type=Path, default=None)
    manifest.set_defaults(handler=_pretrain_manifest)


def _fetch(args: argparse.Namespace) -> int:
    from coursekit.corpus.debian_suite import new_rust_packages
    from coursekit.corpus.sources import default_cache_dir, fetch_debian

    wanted = list(args.debian)
    if args.new_from_suite:
        cache = args.cache or default_cache_dir()
        suite = args.new_from_suite
        wanted += [f"{p}@{suite}" for p in new_rust_packages(cache, suite)]
    if not wanted:
        raise ValueError("corpus fetch needs --debian CRATE... or --new-from-suite SUITE")
    skipped: list[str] | None = [] if args.new_from_suite else None
    for root in fetch_debian(wanted, cache_dir=args.cache, skipped=skipped):
        print(root)
    for message in skipped or []:
        print(f"skipped: {message}", file=sys.stderr)
    return 0


def _build(args: argparse.Namespace) -> int:
    from coursekit.corpus.build import BuildConfig, build_corpus
    from coursekit.corpus.manifest import read_crate_list, read_manifest
    from coursekit.corpus.sources import crates_for_manifest, default_cache_dir, discover_crates

    config = BuildConfig(
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        val_verified=args.val_verified,
        test_verified=args.test_verified,
        train_only=read_crate_list(args.train_only) if args.train_only else (),
        verify=args.verify,
        jobs=args.jobs,
        tokens=not args.no_tokens,
    )
    if not args.sources and args.manifest is None:
        raise ValueError("corpus build needs SRC directories or --manifest FILE; give one")
    crates = discover_crates(args.sources) if args.sources else []
    if args.manifest is not None:
        crates += crates_for_manifest(read_manifest(args.manifest), cache_dir=args.cache)
    cache = (args.cache or default_cache_dir()) / "verified.jsonl"
    print(f"corpus build: verification results are kept in {cache}; an interrupted build "
          "run again resumes from them", file=sys.stderr)  # fmt: skip
    report = build_corpus(crates, args.out, config, verify_cache=cache)
    if args.datasheet:
        from coursekit.corpus.datasheet import write_datasheet

        write_datasheet(args.out)
    print(json.dumps(report, indent=2))
    return 0


def _stats(args: argparse.Namespace) -> int:
    from coursekit.corpus.stats import corpus_stats

    stats = corpus_stats(args.directory)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    for split, row in stats["splits"].items():
        print(
            f"{split:6} {row['samples']:6} samples {row['crates']:5} crates "
            f"{row['verified']:5} verified"
        )
    print(f"crates {stats['crates']}, shared between splits: {len(stats['shared_crates'])}")
    for name, row in stats["targets"].items():
        print(f"{name}: {row['measured']} (target {row['target']}, met: {row['met']})")
    return 0


def _validate(args: argparse.Namespace) -> int:
    samples = load_corpus(args.file)
    print(f"{args.file}: {len(samples)} records OK ({sum(s.verified for s in samples)} verified)")
    return 0


def _pretrain_text(args: argparse.Namespace) -> int:
    from coursekit.corpus.pretrain_text import write_heldout_text, write_pretrain_text

    write = write_heldout_text if args.heldout else write_pretrain_text
    report = write(args.directory, args.out, cache_dir=args.cache)
    print(json.dumps(report, indent=2))
    return 0


def _pretrain_manifest(args: argparse.Namespace) -> int:
    from coursekit.corpus.pretrain_manifest import build_pretrain_manifest

    report = build_pretrain_manifest(
        args.out,
        suite=args.suite,
        cache_dir=args.cache,
        log=lambda line: print(line, file=sys.stderr),
    )
    print(json.dumps(report, indent=2))
    return 0
