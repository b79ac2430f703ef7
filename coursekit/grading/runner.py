"""Execute one submission's notebooks with papermill, in the sandbox, and judge each one.

The submission is copied into its own work directory (the original is never written), each
``notebooks/phase*.ipynb`` is cleared of outputs and executed by papermill in a separate
process wrapped by :func:`coursekit.evaluate.sandbox.run_sandboxed`: no network, CPU,
memory, process and wall-time limits, ``HOME`` a fresh folder of the work directory, and
under bubblewrap nothing visible but the system, the Python that runs papermill, the
grader's own ``coursekit`` package and the work directory (no other submission, no hidden
check).

A notebook counts as executed only when papermill exits 0, records no exception, and every
code cell of the executed copy has an ``execution_count``. That closes papermill's
``sys.exit(0)`` hole: a cell that raises ``SystemExit`` ends execution without an error and
the cells after it are left unexecuted, so the notebook is reported ``stopped at cell k``.
The executed ``.ipynb`` is read by the grader with :mod:`nbformat` (JSON), never unpickled,
and its code cells must be the cleared input's, in order.

Example:
    >>> NotebookResult(name="a.ipynb", status="executed", executed=4, code_cells=4).ok
    True
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

import coursekit
from coursekit import codec
from coursekit.evaluate import jail
from coursekit.evaluate.sandbox import SandboxLimits, isolation, run_sandboxed
from coursekit.workspace.layout import NOTEBOOK_PATTERN, NOTEBOOKS_DIR

STATUSES = ("executed", "stopped", "error", "timeout", "invalid")
"""A notebook's outcome: ran completely, ended early without an error, raised, ran over its
time, or is not a readable notebook."""


@dataclass(frozen=True, kw_only=True)
class RunLimits:
    """Limits of one submission's notebook execution.

    Example:
        >>> RunLimits(cell_seconds=5).submission_seconds
        600.0
    """

    cell_seconds: float = 120.0
    """papermill's ``--execution-timeout``: one cell may run this long."""
    submission_seconds: float = 600.0
    """Wall time for all the submission's notebooks together (each gets what is left)."""
    memory_bytes: int = 6 << 30
    """``RLIMIT_AS`` of each process (papermill, the kernel): torch maps much address space."""
    max_processes: int = 256
    """``pids.max``: processes and threads together (a kernel runs a dozen threads)."""
    cpu_seconds: int = 1200
    """``RLIMIT_CPU`` of each process."""

    def __post_init__(self) -> None:
        codec.check_types(self)
        codec.check_rules(
            self,
            [
                ("cell_seconds", self.cell_seconds > 0, "must be > 0"),
                ("submission_seconds", self.submission_seconds > 0, "must be > 0"),
                ("memory_bytes", self.memory_bytes >= 1 << 28, "must be >= 256 MiB"),
                ("max_processes", self.max_processes >= 16, "must be >= 16"),
                ("cpu_seconds", self.cpu_seconds >= 1, "must be >= 1"),
            ],
        )


@dataclass(frozen=True, kw_only=True)
class NotebookResult:
    """What happened to one notebook (JSON-serialisable through :func:`dataclasses.asdict`).

    Example:
        >>> NotebookResult(name="a.ipynb", status="stopped", executed=2, code_cells=4).ok
        False
    """

    name: str
    """File name inside ``notebooks/``."""
    status: str
    """One of :data:`STATUSES`."""
    executed: int = 0
    """Code cells with an ``execution_count``."""
    code_cells: int = 0
    """Code cells of the notebook."""
    stopped_at: int | None = None
    """1-based index (among code cells) of the last cell that ran when it ended early."""
    message: str = ""
    """One line for the learner; empty when executed."""
    seconds: float = 0.0
    """Wall time of its papermill process."""

    @property
    def ok(self) -> bool:
        """Whether the notebook ran completely."""
        return self.status == "executed"


def notebooks_of(submission: Path) -> list[Path]:
    """Return the submission's phase notebooks, sorted by name.

    Example:
        >>> notebooks_of(Path("/nonexistent"))
        []
    """
    return sorted((submission / NOTEBOOKS_DIR).glob(NOTEBOOK_PATTERN))


def copy_submission(submission: Path, work: Path) -> Path:
    """Copy ``submission`` to ``work/submission`` (links are copied as links, never followed).

    Example:
        >>> copy_submission(Path(tmp) / "none", Path(tmp) / "w")  # doctest: +SKIP
    """
    target = work / "submission"
    shutil.copytree(submission, target, symlinks=True)
    return target


def cleared(path: Path) -> nbformat.NotebookNode:
    """Read ``path`` as a notebook and clear its outputs and execution counts.

    Raises:
        ValueError: the file is not a valid notebook (the message says why).

    Example:
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1", execution_count=3)])
        >>> _clear(nb).cells[0].execution_count is None
        True
    """
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # nbformat raises JSON, validation and OS errors alike
        raise ValueError(f"{path.name}: not a valid notebook ({_line(error)})") from None
    return _clear(nb)


def _clear(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("papermill", None)
    return nb


def _line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def judge(source: nbformat.NotebookNode, executed_path: Path, name: str) -> NotebookResult:
    """Judge papermill's output ``executed_path`` against the cleared input ``source``.

    Executed only if every code cell has an ``execution_count``, papermill recorded no
    exception, and the code cells are the input's (same count, same sources, same order).

    Example:
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
        >>> judge(nb, Path("/nonexistent.ipynb"), "a.ipynb").status
        'error'
    """
    expected = [c.source for c in source.cells if c.cell_type == "code"]
    try:
        out = nbformat.read(executed_path, as_version=4)
    except Exception as error:  # missing or unreadable output
        return NotebookResult(
            name=name,
            status="error",
            code_cells=len(expected),
            message=f"{name}: papermill wrote no readable output ({_line(error)})",
        )
    cells = [c for c in out.cells if c.cell_type == "code"]
    if [c.source for c in cells] != expected:
        message = f"{name}: the executed notebook's code cells differ from the submitted ones"
        return NotebookResult(
            name=name, status="invalid", code_cells=len(expected), message=message
        )
    counts = [c.get("execution_count") for c in cells]
    ran = sum(count is not None for count in counts)
    failed, error = _error_cell(cells)
    base = {"name": name, "executed": ran, "code_cells": len(cells)}
    if failed is not None:
        message = f"{name}: cell {failed} raised {error}; fix it and run the notebook again"
        return NotebookResult(**base, status="error", stopped_at=failed, message=message)
    if ran < len(cells):
        last = max((i for i, n in enumerate(counts, 1) if n is not None), default=0)
        message = (
            f"{name}: stopped at cell {last} of {len(cells)} without an error (sys.exit or "
            "SystemExit?); the cells after it never ran"
        )
        return NotebookResult(**base, status="stopped", stopped_at=last, message=message)
    if out.metadata.get("papermill", {}).get("exception"):
        return NotebookResult(**base, status="error", message=f"{name}: papermill failed")
    return NotebookResult(**base, status="executed")


def _error_cell(cells: list[Any]) -> tuple[int | None, str]:
    """1-based index of the first code cell with an error output (SystemExit excluded)."""
    for index, cell in enumerate(cells, 1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error" and output.get("ename") != "SystemExit":
                said = f"{output.get('ename')}: {output.get('evalue')}"
                return index, said.splitlines()[0][:160] if said else "an error"
    return None, ""


def readable_paths() -> list[Path]:
    """Return what the sandbox may read: Python, the venv, coursekit and its ``data/``.

    Example:
        >>> all(path.is_absolute() for path in readable_paths())
        True
    """
    paths = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    package = Path(coursekit.__file__).resolve().parent
    paths.add(package)
    if (package.parent / "data").is_dir():  # the bundled seed set of a checkout
        paths.add(package.parent / "data")
    return sorted(paths)


def execute(submission: Path, work: Path, limits: RunLimits | None = None) -> list[NotebookResult]:
    """Copy ``submission`` into ``work`` and execute each phase notebook in the sandbox.

    Args:
        submission: the learner's folder (``notebooks/phase*.ipynb``); never written.
        work: an empty directory, this submission's only (the sandbox's writable place).
        limits: the limits (default :class:`RunLimits`).

    Returns:
        One result per notebook, in name order; a timeout, crash or broken file is a result.

    Example:
        >>> execute(Path("learner"), Path("work/learner"))  # doctest: +SKIP
        [NotebookResult(name='phase1_baseline.ipynb', status='executed', ...)]
    """
    limits = limits or RunLimits()
    copy = copy_submission(submission, work)
    (work / "home").mkdir()
    (work / "executed").mkdir()
    _lend(work)
    deadline = time.monotonic() + limits.submission_seconds
    return [
        _execute_one(path, work, limits, deadline - time.monotonic()) for path in notebooks_of(copy)
    ]


def sandbox_env(work: Path) -> dict[str, str]:
    """The environment of the grader's sandboxed processes: own HOME, CPU, hub offline.

    Example:
        >>> sandbox_env(Path("/w"))["HOME"]
        '/w/home'
    """
    return {
        "HOME": str(work / "home"),
        "PYTHONPYCACHEPREFIX": str(work / "pycache"),  # never a .pyc the submission shipped
        "PYTHONPATH": str(Path(coursekit.__file__).resolve().parent.parent),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }


def _lend(work: Path) -> None:
    """Give the work tree to the sandbox's uid where the command runs as ``nobody``."""
    if not jail.drops_to_nobody(isolation().backend):
        return
    for path in [work, *work.rglob("*")]:
        os.chown(path, jail.SANDBOX_UID, jail.SANDBOX_UID, follow_symlinks=False)


def _execute_one(path: Path, work: Path, limits: RunLimits, left: float) -> NotebookResult:
    name = path.name
    try:
        source = cleared(path)
    except ValueError as error:
        return NotebookResult(name=name, status="invalid", message=str(error))
    if left <= 0:
        message = f"{name}: not run, the submission's {limits.submission_seconds:g} s were spent"
        return NotebookResult(name=name, status="timeout", message=message)
    nbformat.write(source, path)
    output = work / "executed" / name
    command = [
        str(Path(sys.executable)),
        *("-m", "papermill", str(path), str(output), "--cwd", str(path.parent)),
        *("--kernel", "python3", "--execution-timeout", str(int(limits.cell_seconds) or 1)),
        "--no-progress-bar",
    ]
    box = SandboxLimits(
        wall_seconds=left,
        cpu_seconds=limits.cpu_seconds,
        memory_bytes=limits.memory_bytes,
        max_processes=limits.max_processes,
        output_bytes=64 << 20,
    )
    done = run_sandboxed(
        command, directory=work, limits=box, env=sandbox_env(work), readable=readable_paths()
    )
    if done.timed_out:
        result = judge(source, output, name)
        message = f"{name}: ran over its time ({left:.0f} s left of the submission's)"
        return dataclasses.replace(
            result, status="timeout", message=message, seconds=done.wall_seconds
        )
    result = judge(source, output, name)
    if result.ok and done.exit_code != 0:
        message = f"{name}: papermill exited with {done.exit_code}"
        result = dataclasses.replace(result, status="error", message=message)
    if result.status == "error" and "timed out" in done.output.lower():
        message = f"{name}: a cell ran over {limits.cell_seconds:g} s (per-cell limit)"
        result = dataclasses.replace(result, status="timeout", message=message)
    return dataclasses.replace(result, seconds=done.wall_seconds)
