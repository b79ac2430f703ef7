r"""Exercises authored once, released twice: solution notebooks → student notebooks.

A source notebook carries its solutions inside regions of code cells, between nbgrader's
markers::

    def dora_forward(x, weight, bias, lora_a, lora_b, magnitude, scale):
        # BEGIN SOLUTION E.dora_forward
        combined = weight + scale * lora_b @ lora_a
        ...
        # END SOLUTION

The marker may name the exercise (``E.dora_forward``: the tier letter, a dot, a name; any
id of letters, digits, ``_``, ``.`` and ``-``). Without an id the region is called
``<notebook stem>.<n>``, n counting the notebook's regions from 1. The solution version runs
as it is (the markers are comments); :func:`release_notebook` writes the student version:
each region, markers included, becomes one line at the BEGIN marker's indentation::

    raise NotImplementedError("Exercise E.dora_forward: write your solution here; ...")

Outputs and execution counts are cleared, and every cell that holds a stub gets the ids in
``metadata["coursekit"]["stubs"]`` (read by :func:`stub_cells`), so a test can check that the
student version stops at the first stub and nowhere before it. A BEGIN inside a region, an
END outside one, a region left open at the cell's end, or text after ``END SOLUTION`` is an
error naming ``notebook:cell N:line M`` (both counted from 1).

Guide: docs/course.md ("Your workspace"). Used by ``coursekit workspace new`` and
``coursekit workspace release``.

Example:
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "def f(x):\n    # BEGIN SOLUTION E.f\n    return 2 * x\n    # END SOLUTION")])
    >>> student = release_notebook(nb, name="demo")
    >>> print(student.cells[0].source)  # doctest: +ELLIPSIS
    def f(x):
        raise NotImplementedError("Exercise E.f: write your solution here; see ...")
    >>> stub_cells(student)
    [(0, ('E.f',))]
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit.errors import CoursekitError
from coursekit.io import atomic_open
from coursekit.workspace.tiers import TIERS

MARKER = re.compile(r"^(?P<indent>[ \t]*)#+[ \t]*(?P<kind>BEGIN|END) SOLUTION\b(?P<rest>.*)$")
"""A solution marker line: ``# BEGIN SOLUTION [id]`` or ``# END SOLUTION`` (``###`` too)."""
EXERCISE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
"""What an exercise id may look like (``E.dora_forward``)."""
METADATA_KEY = "coursekit"
"""The cell-metadata key under which a released cell lists its stubs."""
COURSE_DOC = "docs/course.md#your-workspace"
"""Where every stub points, besides its tier's guide."""


@dataclass(frozen=True, kw_only=True)
class Region:
    """One solution region of a code cell: lines ``begin``…``end`` (0-based, inclusive)."""

    exercise: str
    """The exercise id, from the marker or ``<notebook>.<n>``."""
    begin: int
    """Index of the BEGIN marker's line in the cell's source."""
    end: int
    """Index of the END marker's line."""
    indent: str
    """The BEGIN marker's indentation, which the stub keeps."""


def stub_line(exercise: str, indent: str = "") -> str:
    """Return the line that replaces a solution region: a friendly ``NotImplementedError``.

    The message names the exercise, its tier's guide (for ids ``<tier letter>.<name>``) and
    the course's workspace section.

    Example:
        >>> print(stub_line("phase3.2", "    "))  # doctest: +NORMALIZE_WHITESPACE
            raise NotImplementedError("Exercise phase3.2: write your solution here; see
            docs/course.md#your-workspace")
    """
    letter, dot, _ = exercise.partition(".")
    tier = TIERS.get(letter) if dot else None
    docs = f"{tier.guide} and {COURSE_DOC}" if tier else COURSE_DOC
    message = f"Exercise {exercise}: write your solution here; see {docs}"
    return f"{indent}raise NotImplementedError({json.dumps(message)})"


def find_regions(source: str, *, where: str, first_index: int = 1) -> list[Region]:
    r"""Return the solution regions of one cell's ``source``, checking the markers balance.

    Args:
        source: the cell's code.
        where: ``"<notebook>:cell <N>"``, the prefix of error messages; its part before the
            first ``:`` names fallback ids (``<notebook>.<n>``).
        first_index: n of the cell's first region without an id.

    Raises:
        CoursekitError: a nested BEGIN, an END without BEGIN, a region still open at the end
            of the cell, or a malformed marker; the message says ``where:line M``.

    Example:
        >>> find_regions("# BEGIN SOLUTION\nx = 1\n# END SOLUTION", where="nb:cell 1")
        [Region(exercise='nb.1', begin=0, end=2, indent='')]
    """
    regions: list[Region] = []
    open_at: tuple[int, str, str] | None = None  # (line index, id, indent)
    for index, line in enumerate(source.split("\n")):
        match = MARKER.match(line)
        if match is None:
            continue
        kind, rest = match["kind"], match["rest"].strip()
        at = f"{where}:line {index + 1}"
        if kind == "BEGIN":
            if open_at is not None:
                raise CoursekitError(
                    f"{at}: BEGIN SOLUTION inside the region opened at line {open_at[0] + 1}; "
                    "close that one with '# END SOLUTION' first (regions do not nest)"
                )
            default = f"{where.split(':')[0]}.{first_index + len(regions)}"
            open_at = (index, _exercise_id(rest, at) or default, match["indent"])
        elif open_at is None:
            raise CoursekitError(f"{at}: END SOLUTION without a BEGIN SOLUTION before it")
        elif rest:
            raise CoursekitError(f"{at}: unexpected {rest!r} after END SOLUTION; remove it")
        else:
            regions.append(Region(exercise=open_at[1], begin=open_at[0], end=index,
                                  indent=open_at[2]))  # fmt: skip
            open_at = None
    if open_at is not None:
        raise CoursekitError(
            f"{where}:line {open_at[0] + 1}: BEGIN SOLUTION is never closed in this cell; "
            "add '# END SOLUTION' (a region cannot span cells)"
        )
    return regions


def _exercise_id(rest: str, at: str) -> str:
    """Return the id after ``BEGIN SOLUTION`` (``""`` if none), refusing anything else."""
    if rest and not EXERCISE_ID.match(rest):
        raise CoursekitError(
            f"{at}: {rest!r} is not an exercise id; write one word such as E.dora_forward"
        )
    return rest


def release_notebook(notebook: Any, *, name: str) -> Any:
    """Return the student version of a solution notebook (the input is left unchanged).

    Args:
        notebook: an ``nbformat`` notebook (version 4).
        name: the notebook's name in messages and fallback ids (its file stem).

    Returns:
        A copy with each solution region replaced by :func:`stub_line`, outputs and
        execution counts cleared, papermill's and widget state's metadata dropped, and
        ``metadata["coursekit"]["stubs"]`` on each cell that holds stubs.

    Raises:
        CoursekitError: unbalanced or malformed markers (``name:cell N:line M``); ids used
            twice in the notebook.

    Example:
        >>> import nbformat
        >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# END SOLUTION")])
        >>> release_notebook(nb, name="demo")
        Traceback (most recent call last):
        coursekit.errors.CoursekitError: demo:cell 1:line 1: END SOLUTION without a BEGIN ...
    """
    student = copy.deepcopy(notebook)
    for key in ("papermill", "widgets"):
        student.metadata.pop(key, None)
    seen: dict[str, int] = {}
    count = 0
    for number, cell in enumerate(student.cells, start=1):
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        cell.metadata.pop("execution", None)
        cell.metadata.pop(METADATA_KEY, None)
        regions = find_regions(cell.source, where=f"{name}:cell {number}", first_index=count + 1)
        count += len(regions)
        for region in regions:
            if region.exercise in seen:
                raise CoursekitError(
                    f"{name}:cell {number}:line {region.begin + 1}: exercise "
                    f"{region.exercise} is already used in cell {seen[region.exercise]}; "
                    "give each region its own id"
                )
            seen[region.exercise] = number
        if regions:
            cell.source = _stub_source(cell.source, regions)
            cell.metadata[METADATA_KEY] = {"stubs": [r.exercise for r in regions]}
    return student


def _stub_source(source: str, regions: list[Region]) -> str:
    """Replace each region's lines of ``source`` by its stub line."""
    lines = source.split("\n")
    for region in reversed(regions):
        lines[region.begin : region.end + 1] = [stub_line(region.exercise, region.indent)]
    return "\n".join(lines)


def stub_cells(notebook: Any) -> list[tuple[int, tuple[str, ...]]]:
    """Return ``(cell index, exercise ids)`` of every cell of a released notebook with stubs.

    Indices count all cells from 0, in order; a notebook with no exercise gives ``[]``.

    Example:
        >>> import nbformat
        >>> cell = nbformat.v4.new_code_cell("x = 1")
        >>> stub_cells(nbformat.v4.new_notebook(cells=[cell]))
        []
    """
    found = []
    for index, cell in enumerate(notebook.cells):
        stubs = cell.get("metadata", {}).get(METADATA_KEY, {}).get("stubs", [])
        if cell.cell_type == "code" and stubs:
            found.append((index, tuple(stubs)))
    return found


def release(
    source_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    pattern: str = "*.ipynb",
) -> list[Path]:
    """Write the student version of every notebook in ``source_dir`` matching ``pattern``.

    Every notebook is checked before any is written, so bad markers leave ``out_dir`` as it
    was; each file is written atomically. Subdirectories are not searched.

    Args:
        source_dir: the solution notebooks.
        out_dir: where the student versions go (created if missing; not ``source_dir``).
        pattern: a glob of notebook names, e.g. ``"phase[1-4]*.ipynb"``.

    Returns:
        The written paths, sorted by name.

    Raises:
        CoursekitError: ``out_dir`` is ``source_dir``, no notebook matches, a notebook cannot
            be read, or its markers are wrong.

    Example:
        >>> release("notebooks", tmp_path / "student")  # doctest: +SKIP
        [PosixPath('.../student/phase1_baseline.ipynb'), ...]
    """
    import nbformat

    source, out = Path(source_dir), Path(out_dir)
    if out.resolve() == source.resolve():
        raise CoursekitError(
            f"{out}: the output directory is the source directory; releasing there would "
            "overwrite the solutions, choose another OUT_DIR"
        )
    paths = sorted(source.glob(pattern))
    if not paths:
        raise CoursekitError(f"{source}: no notebook matches {pattern!r}; check SRC_DIR")
    released = [(path.name, release_notebook(_read(path), name=path.stem)) for path in paths]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, notebook in released:
        with atomic_open(out / filename) as handle:
            nbformat.write(notebook, handle)
        written.append(out / filename)
    return written


def _read(path: Path) -> Any:
    """Read a notebook, turning a broken file into one line naming it."""
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError, nbformat.reader.NotJSONError) as error:
        reason = " ".join(str(error).split())[:200]
        raise CoursekitError(f"{path}: cannot read the notebook ({reason})") from None
