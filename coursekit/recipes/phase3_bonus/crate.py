"""Tier K: a learner's own Rust code through ``coursekit corpus build``.

:func:`crate_with_module` copies a crate (by default the sample crate shipped in
``data/sample-crate/``, MIT, written for this course) and adds the learner's module
``src/<name>.rs`` with ``pub mod <name>;`` in ``lib.rs``. :func:`build_crate_corpus` runs

    coursekit corpus build CRATE --out DIR --val-verified 0 --test-verified 0
        --val-fraction 0 --test-fraction 0

in a child process: every (function, tests) pair goes to train, and each pair whose tests
compile and pass under rustc in the sandbox is ``verified``. :func:`with_validation` adds a
validation split (the seed set's) so that a fine-tune on the crate reports a val loss.

Guide: docs/corpus.md ("Tier K"). Used in notebooks/phase3_bonus.ipynb.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from coursekit.data.corpus import load_splits, seed_dir
from coursekit.errors import CoursekitError
from coursekit.loading import repo_root
from coursekit.recipes.phase3_bonus.spec import child_env

MODULE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
"""A Rust module name the learner's file may take."""


def sample_crate() -> Path:
    """Return ``data/sample-crate`` at the repository root (found from this file).

    Example:
        >>> (sample_crate() / "Cargo.toml").is_file()
        True
    """
    return repo_root() / "data" / "sample-crate"


def crate_with_module(
    destination: str | os.PathLike[str],
    rust: str,
    *,
    name: str = "mine",
    source: Path | None = None,
) -> Path:
    r"""Copy ``source`` (the sample crate) to ``destination`` and add ``src/<name>.rs``.

    Args:
        destination: the new crate folder (must not exist).
        rust: the module's Rust source: functions and a ``#[cfg(test)] mod tests``.
        name: the module name (``pub mod <name>;`` is appended to ``src/lib.rs``).
        source: the crate to copy; default :func:`sample_crate`.

    Raises:
        CoursekitError: a bad module name, a module that exists already, or an existing
            ``destination``.

    Example:
        >>> import tempfile
        >>> crate = crate_with_module(Path(tempfile.mkdtemp()) / "c", "pub fn one() -> u8 { 1 }")
        >>> (crate / "src" / "mine.rs").read_text()
        'pub fn one() -> u8 { 1 }\n'
    """
    if not MODULE_NAME.match(name):
        raise CoursekitError(f"module name {name!r} is not a Rust module name: use snake_case")
    destination = Path(destination)
    if destination.exists():
        raise CoursekitError(f"{destination} exists: choose a new folder for the crate copy")
    shutil.copytree(source or sample_crate(), destination)
    module = destination / "src" / f"{name}.rs"
    if module.exists():
        raise CoursekitError(f"{module} exists in the crate: choose another module name")
    # stripped: a file that starts with blank lines is extracted one byte late (the
    # tree-sitter root starts at the first token; see coursekit.data.rust_syntax.item_source)
    module.write_text(rust.strip() + "\n", encoding="utf-8")
    with (destination / "src" / "lib.rs").open("a", encoding="utf-8") as lib:
        lib.write(f"\npub mod {name};\n")
    return destination


def build_command(crate: Path, out: Path, cache: Path | None = None) -> list[str]:
    """Return the ``coursekit corpus build`` command that puts every pair of ``crate`` in train.

    Example:
        >>> " ".join(build_command(Path("c"), Path("o"))[4:7])
        'build c --out'
    """
    command = [sys.executable, "-m", "coursekit.cli", "corpus", "build", str(crate)]
    command += ["--out", str(out), "--val-verified", "0", "--test-verified", "0"]
    command += ["--val-fraction", "0", "--test-fraction", "0"]
    return command + (["--cache", str(cache)] if cache else [])


def build_crate_corpus(
    crate: str | os.PathLike[str], out: str | os.PathLike[str], *, cache: Path | None = None
) -> list[dict[str, Any]]:
    """Run ``coursekit corpus build`` on ``crate`` into ``out``; return one row per pair.

    Each row: ``id``, ``verified`` (its tests compiled and passed under rustc in the
    sandbox), ``lines``, ``cyclomatic`` and ``tests`` (from the pair's features).

    Raises:
        CoursekitError: the build failed (the message ends with its last stderr line).
    """
    done = subprocess.run(
        build_command(Path(crate), Path(out), cache), env=child_env(), capture_output=True,
        text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CoursekitError(f"coursekit corpus build failed ({done.returncode}): {last}")
    return [
        {
            "id": sample.id,
            "verified": sample.verified,
            "lines": sample.features.get("lines"),
            "cyclomatic": sample.features.get("cyclomatic"),
            "tests": sample.features.get("tests"),
        }
        for sample in load_splits(out)["train"]
    ]


def with_validation(corpus: str | os.PathLike[str], validation: Path | None = None) -> Path:
    """Replace ``corpus``'s (empty) validation split by ``validation``'s (the seed set's).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = shutil.copy(seed_dir() / "train.jsonl", folder / "train.jsonl")
        >>> (folder / "test.jsonl").write_text("")
        0
        >>> len(load_splits(with_validation(folder))["val"]) > 0
        True
    """
    corpus = Path(corpus)
    source = (validation or seed_dir()) / "val.jsonl"
    for old in (corpus / "val.jsonl", corpus / "val.jsonl.gz"):
        old.unlink(missing_ok=True)
    shutil.copy(source, corpus / "val.jsonl")
    return corpus


def finetune_on_corpora(
    corpora: dict[str, Path], output: str | os.PathLike[str], *, spec: Any
) -> list[dict[str, Any]]:
    """Fine-tune ``spec`` on each corpus (validated on the seed set's val split); one row each.

    Args:
        corpora: label → a corpus folder from :func:`build_crate_corpus`.
        output: one run folder per label is made in it (``train-<label>``).
        spec: the run's settings (``bonus_spec``); its ``data`` is replaced per corpus.

    Returns:
        Rows of ``corpus``, ``train pairs``, ``val loss before`` (step 0) and ``val loss after``.
    """
    from dataclasses import replace

    from coursekit.recipes.finetune import finetune
    from coursekit.train.callbacks import read_metrics

    rows = []
    for label, corpus in corpora.items():
        run = Path(output) / f"train-{re.sub(r'[^A-Za-z0-9_.-]+', '-', label)}"
        summary = finetune(replace(spec, data=str(with_validation(corpus))), run)
        evaluations = [
            r["val_loss"] for r in read_metrics(run / "metrics.jsonl") if "val_loss" in r
        ]
        rows.append(
            {
                "corpus": label,
                "train pairs": len(load_splits(corpus)["train"]),
                "val loss before": evaluations[0],
                "val loss after": summary["val_loss"],
            }
        )
    return rows
