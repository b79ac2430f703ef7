"""The run manifest: what a training run read, wrote and ran on, as SHA-256 digests.

Every run folder gets ``manifest.json`` at the end of the run (written by
:func:`coursekit.train.run.train_run`, atomically, after ``adapter/`` and ``summary.json``):

- ``spec``: the run's settings (``config.yaml``'s ``RunSpec`` with the loop settings the
  trainer used), through :mod:`coursekit.codec`; ``seed`` repeated at the top;
- ``code``: coursekit's version, and the git commit and dirty flag of its checkout (null,
  with the reason, when coursekit is not in a git checkout);
- ``data``: the directory and the SHA-256 of each split file the run read, in
  ``train, val, test`` order, and one digest over them;
- ``examples``: the training sample ids in the order the trainer received them and a SHA-256
  over their encoded tokens (so the grader can rebuild exactly these examples);
- ``files``: the SHA-256 of ``config.yaml``, ``metrics.jsonl``, ``summary.json`` and every
  file of ``adapter/`` (or ``model/``), and one short digest per line of ``metrics.jsonl``
  (so an edited line is named);
- ``environment``: torch's version, the device, the threads and the processes.

Digests are evidence of *what* was there, not a signature: whoever can edit the files can
recompute them. :mod:`coursekit.grading.evidence` therefore also re-runs the first steps.

Guide: docs/grading.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import coursekit
from coursekit import codec
from coursekit.errors import CoursekitError
from coursekit.io import write_json

MANIFEST = "manifest.json"
"""The manifest's file name inside a run folder."""
FORMAT = 1
"""Bump when the manifest's layout changes."""
HASHED_FILES = ("config.yaml", "metrics.jsonl", "summary.json")
"""Run files hashed besides the trained ``adapter/`` (or ``model/``)."""
OUTPUT_DIRS = ("adapter", "model")
"""Where a run saves what it trained: adapters, or the whole model of a full fine-tune."""
LINE_DIGEST = 16
"""Hex digits kept of each ``metrics.jsonl`` line's SHA-256 (64 bits)."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex SHA-256 of a file's bytes, read in 1 MiB chunks.

    Example:
        >>> sha256_file(__file__) == sha256_file(__file__)
        True
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def line_digests(path: str | os.PathLike[str]) -> list[str]:
    """Return the first :data:`LINE_DIGEST` hex digits of each line's SHA-256, in order.

    Example:
        >>> len(line_digests(__file__)) > 100
        True
    """
    lines = Path(path).read_bytes().splitlines()
    return [hashlib.sha256(line).hexdigest()[:LINE_DIGEST] for line in lines]


def data_digest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return ``{"dir", "files": {name: sha256}, "sha256"}`` for a corpus directory (or a file).

    A directory's files are its split files ``train``, ``val``, ``test`` (``.jsonl`` or
    ``.jsonl.gz``) in that order, the ones ``load_splits`` reads; ``sha256`` is the SHA-256 of
    the lines ``<name> <sha256>`` (each ending in a newline) in that order, so renaming or
    reordering changes it.

    Raises:
        CoursekitError: ``path`` does not exist, or a directory has no split file.

    Example:
        >>> from coursekit.data.corpus import seed_dir
        >>> sorted(data_digest(seed_dir())["files"])
        ['test.jsonl', 'train.jsonl', 'val.jsonl']
    """
    from coursekit.data.corpus import SPLITS

    root = Path(path)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        candidates = (root / f"{split}{ext}" for split in SPLITS for ext in (".jsonl", ".jsonl.gz"))
        files = [p for p in candidates if p.is_file()]
    else:
        files = []
    if not files:
        raise CoursekitError(f"{root}: no data to digest (no train/val/test.jsonl[.gz] there)")
    hashes = {p.name: sha256_file(p) for p in files}
    joined = "".join(f"{name} {sha}\n" for name, sha in hashes.items())
    return {
        "dir": str(root.resolve()),
        "files": hashes,
        "sha256": hashlib.sha256(joined.encode()).hexdigest(),
    }


def examples_digest(examples: Sequence[Any]) -> str:
    """Return the SHA-256 over the encoded examples, in order: ids, input ids and labels.

    Example:
        >>> from coursekit.data.prompts import EncodedExample
        >>> a = EncodedExample(sample_id="a", input_ids=(1, 2), labels=(-100, 2))
        >>> examples_digest([a]) == examples_digest([]), len(examples_digest([a]))
        (False, 64)
    """
    digest = hashlib.sha256()
    for example in examples:
        row = [example.sample_id, list(example.input_ids), list(example.labels)]
        digest.update(json.dumps(row, separators=(",", ":")).encode() + b"\n")
    return digest.hexdigest()


def code_revision() -> dict[str, Any]:
    """Return coursekit's version and its checkout's git commit (null with a reason if none).

    ``git_dirty`` is True when tracked files of the checkout differ from that commit (the
    code that ran is then not exactly the commit's).

    Example:
        >>> sorted(code_revision())
        ['git_dirty', 'git_reason', 'git_sha', 'version']
    """
    where = Path(coursekit.__file__).resolve().parent
    found = {"version": coursekit.__version__, "git_sha": None, "git_dirty": None}
    try:
        sha = _git(where, "rev-parse", "HEAD")
        status = _git(where, "status", "--porcelain", "--untracked-files=no")
    except FileNotFoundError:
        return {**found, "git_reason": "git is not installed"}
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return {**found, "git_reason": f"{where} is not in a git checkout (an installed package)"}
    return {**found, "git_sha": sha, "git_dirty": bool(status), "git_reason": None}


def _git(where: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(where), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.strip()


def output_files(run_dir: str | os.PathLike[str]) -> list[str]:
    """Return the run's hashed files (relative, sorted): ``HASHED_FILES`` and ``adapter/``'s."""
    out = Path(run_dir)
    names = [name for name in HASHED_FILES if (out / name).is_file()]
    for folder in OUTPUT_DIRS:
        if (out / folder).is_dir():
            found = (p for p in (out / folder).rglob("*") if p.is_file())
            names += sorted(p.relative_to(out).as_posix() for p in found)
    return names


def _spec(out: Path, config: Any) -> tuple[dict[str, Any] | None, str | None]:
    from coursekit.train.spec import load_spec

    try:
        spec = dataclasses.replace(load_spec(out / "config.yaml"), train=config)
    except (CoursekitError, ValueError) as error:
        return None, str(error)
    return codec.to_dict(spec), None


def _data(spec: dict[str, Any] | None) -> dict[str, Any]:
    from coursekit.data.corpus import default_corpus_dir

    if spec is None:
        return {"error": "no config.yaml, so the data the run read is unknown"}
    try:
        return data_digest(spec["data"] or default_corpus_dir())
    except CoursekitError as error:
        return {"error": str(error)}


def build_manifest(
    run_dir: str | os.PathLike[str],
    config: Any,
    *,
    train: Sequence[Any],
    device: str,
    processes: int = 1,
) -> dict[str, Any]:
    """Return the manifest of the finished run in ``run_dir`` (see the module docstring).

    Args:
        run_dir: the run folder, holding ``config.yaml``, ``metrics.jsonl``, ``summary.json``
            and ``adapter/`` (or ``model/``).
        config: the ``TrainConfig`` the trainer ran with.
        train: the encoded training examples, in the order the trainer received them.
        device: the device trained on (``"cpu"``, ``"cuda:0"``).
        processes: how many processes trained together (DDP).
    """
    out = Path(run_dir)
    spec, spec_error = _spec(out, config)
    files = output_files(out)
    metrics = out / "metrics.jsonl"
    return {
        "format": FORMAT,
        "spec": spec,
        "spec_error": spec_error,
        "seed": config.seed,
        "code": code_revision(),
        "data": _data(spec),
        "examples": {
            "train_ids": [example.sample_id for example in train],
            "train_sha256": examples_digest(train),
        },
        "files": {name: sha256_file(out / name) for name in files},
        "metrics_lines": line_digests(metrics) if metrics.is_file() else [],
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(device),
            "threads": torch.get_num_threads(),
            "processes": processes,
        },
    }


def write_manifest(run_dir: str | os.PathLike[str], config: Any, **details: Any) -> Path:
    """Write :func:`build_manifest`'s result to ``run_dir/manifest.json`` atomically.

    Example:
        >>> write_manifest("runs/demo", config, train=train, device="cpu")  # doctest: +SKIP
        PosixPath('runs/demo/manifest.json')
    """
    return write_json(Path(run_dir) / MANIFEST, build_manifest(run_dir, config, **details))


def read_manifest(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the manifest of the run in ``run_dir``.

    Raises:
        CoursekitError: one line naming the folder when it is missing, or the file when it
            is missing, unreadable or not a manifest.

    Example:
        >>> read_manifest("runs/demo")["seed"]  # doctest: +SKIP
        0
    """
    out = Path(run_dir)
    path = out / MANIFEST
    if not out.is_dir():
        raise CoursekitError(f"{out}: no such run folder; pass the folder a training run wrote")
    if not path.is_file():
        raise CoursekitError(
            f"{path}: missing; the run was not written by this coursekit's trainer (or the "
            "file was deleted), so its numbers cannot be verified: train the run again"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise CoursekitError(f"{path}: not readable JSON ({error}); train the run again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CoursekitError(
            f"{path}: not a manifest of format {FORMAT}; train the run again with this coursekit"
        )
    return manifest
