"""Evidence from run folders: the final loss of each run, by rank, for the rank verdict.

A finished run (``coursekit train``, ``coursekit.train.run.train_run``) writes
``runs/<name>/summary.json`` with the last validation loss as ``val_loss``. An ablation over
ranks and seeds gives one folder per (rank, seed); :func:`losses_from_runs` reads them into
the mapping :func:`coursekit.experiments.falsify.rank_does_not_decrease_quality` takes.

Guide: docs/experiments.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from coursekit.experiments.verdict import EvidenceError, finite


def losses_from_runs(
    runs: Mapping[int, Sequence[str | os.PathLike[str]]], *, key: str = "val_loss"
) -> dict[int, list[float]]:
    """Read each run folder's ``summary.json`` ``key``: rank → one loss per run (seed).

    The input of :func:`rank_does_not_decrease_quality` from finished run folders
    (``runs/<name>/summary.json``, written by ``coursekit train`` at the end of a run).

    Raises:
        EvidenceError: a summary that is missing or unreadable (an unfinished run), or
            without a finite ``key`` (a run trained without a validation split).

    Args:
        runs: rank → its run folders, one per seed (a single folder is one seed).
        key: the ``summary.json`` entry to read (``val_loss``: the last validation loss).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as run:
        ...     _ = (Path(run) / "summary.json").write_text('{"steps": 100, "val_loss": 2.31}')
        ...     losses_from_runs({4: [run], 8: run})
        {4: [2.31], 8: [2.31]}
    """
    if not isinstance(runs, Mapping):
        raise EvidenceError(
            f"losses_from_runs needs a mapping of rank → run folders (got {runs!r})"
        )
    losses: dict[int, list[float]] = {}
    for rank, folders in runs.items():
        paths = [folders] if isinstance(folders, str | os.PathLike) else folders
        losses[rank] = [_summary_loss(Path(folder) / "summary.json", key) for folder in paths]
    return losses


def _summary_loss(path: Path, key: str) -> float:
    """Return ``summary.json``'s ``key`` as a float, or raise naming the file and the fix."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise EvidenceError(
            f"{path}: cannot read the run's summary ({error.strerror or error}); "
            "finish (or resume) the run first"
        ) from None
    except ValueError as error:
        raise EvidenceError(f"{path}: not valid JSON ({error}); rerun or resume the run") from None
    value = summary.get(key) if isinstance(summary, dict) else None
    if value is None:
        raise EvidenceError(
            f"{path} has no {key!r}; train with a validation split so the summary records it"
        )
    return float(finite(value, f"{path}: {key}"))
