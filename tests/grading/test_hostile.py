"""Hostile submissions graded in one batch: each becomes a row, the batch and the host survive.

One class of hostile learners is graded once (``grade_class``, 2 workers, a 10 s cell limit
and 60 s per submission); each test then asserts one learner's row. Every hostile learner
has a ``workspace.yaml`` (a submission without one is not scored, and its row keeps only a
reason), so its notebooks' results are in the row. An attack that must fail is written so
that its notebook *executes* only when every attempt raised ``OSError`` inside the sandbox;
the host side (coursekit's files, the grades folder, the other submissions, a listening
socket, leftover processes) is checked from outside.
"""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from pathlib import Path

import nbformat
import pytest

import coursekit
from coursekit.evaluate import jail
from coursekit.evaluate.sandbox import isolation
from coursekit.grading.batch import RESULT, grade_class
from coursekit.grading.runner import RunLimits
from coursekit.record import RECORD_MIME
from coursekit.workspace.layout import new_workspace
from tests.evaluate.layers import alive, require
from tests.grading.test_fixture_class import make
from tests.workspace.conftest import notebook, write

NEEDS_BWRAP = jail.available("bubblewrap")
LIMITS = RunLimits(cell_seconds=10, submission_seconds=60)
PACKAGE = Path(coursekit.__file__).resolve().parent
SLEEP = f"{uuid.uuid4().int % 100_000 + 1000}.{uuid.uuid4().int % 1000:03d}"
"""The fork bomb's ``sleep`` argument, unique on this machine."""

pytestmark = [
    pytest.mark.heavy,  # ~1.5 min; CI keeps test_runner.py's hostile notebooks, the fixture class
    pytest.mark.skipif(bool(NEEDS_BWRAP), reason=f"needs bubblewrap ({NEEDS_BWRAP})"),
]

ATTEMPTS = """import errno
import os
import shutil
from pathlib import Path

import coursekit

package = Path(coursekit.__file__).parent
attacks = {{
{attacks}
}}
errors = {{}}  # attack -> the errno it raised, None when it worked
for name, attack in attacks.items():
    try:
        attack()
        errors[name] = None
    except OSError as error:
        errors[name] = errno.errorcode.get(error.errno, str(error.errno))"""
UNSEEN = 'assert set(errors.values()) == {"ENOENT"}, errors'
"""The last cell of an attack on paths the sandbox must not show: each one "does not exist"
(a permission error would only mean the host's file modes stopped it)."""
READ_ONLY = (
    'assert {errors.pop(k) for k in ("unlink_coursekit", "edit_score")} <= {"EROFS", "EACCES"}\n'
    + UNSEEN
)
"""coursekit's package is visible but read-only; everything else must be unseen."""
MASKED = 'assert errors.pop("hidden") in {"ENOENT", "EACCES"}, errors\n' + UNSEEN
"""coursekit's hidden checks lie under an empty tmpfs of mode 000 that bubblewrap mounts over
their folder (EACCES: nothing to list or read); every other path must not exist."""
WORKSPACES = {"quirks", "edited-metrics"}
"""The hostile learners submitted as whole workspaces (scored); the others are notebooks only."""


def attempts(**attacks: str) -> str:
    """A cell trying each ``name=expression``; ``errors`` maps each to the errno it raised."""
    lines = "\n".join(f'    "{name}": lambda: {code},' for name, code in attacks.items())
    return ATTEMPTS.format(attacks=lines)


def digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (bytecode caches left out), by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def learner(
    root: Path, name: str, *notebooks: tuple[str, nbformat.NotebookNode | str], workspace=True
) -> Path:
    """A submission ``root/name`` whose phase notebooks are exactly ``notebooks``.

    With ``workspace`` it is a whole workspace (scored); without, only ``notebooks/``: the row
    then has a reason (no workspace.yaml) but still the notebooks' results, which is all the
    attacks on the sandbox need, and grading skips the learner's test suite (~15 s each).
    """
    folder = root / name
    if workspace:
        source = root.parent / "source"
        if not source.exists():
            write(source / "phase1_baseline.ipynb", notebook("x = 1"))
        new_workspace(folder, name=name, tiers=("C", "E"), notebooks=source)
        for old in (folder / "notebooks").glob("*.ipynb"):
            old.unlink()
    for file_name, content in notebooks:
        path = folder / "notebooks" / file_name
        if isinstance(content, str):
            path.write_text(content)
        else:
            write(path, content)
    return folder


def forged_outputs() -> nbformat.NotebookNode:
    """A notebook submitted with outputs and execution counts claiming success; it exits."""
    nb = notebook(
        "a = 1",
        "import sys\n\nsys.exit(0)",
        'import coursekit\ncoursekit.record("val_loss_end", 0.01)',
    )
    claim = {"name": "val_loss_end", "value": 0.01}
    for count, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), 1):
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("display_data", data={
            RECORD_MIME: claim, "text/plain": "all checks passed"})]  # fmt: skip
    nb.metadata["papermill"] = {"exception": None, "duration": 1.0}
    return nb


def duplicated() -> str:
    """A notebook whose last code cell is a verbatim copy of the one before (same cell id)."""
    data = json.loads(nbformat.writes(notebook("x = 1", "x += 1", "assert x == 3")))
    data["cells"].insert(3, data["cells"][2])
    return json.dumps(data)


@pytest.fixture(scope="session")
def listener():
    """A host socket on loopback that the network learner tries to reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    yield server
    server.close()


@pytest.fixture(scope="session")
def hostile(tmp_path_factory, listener) -> dict:
    """The hostile class graded once: {"rows", "out", "class", and digests before/after}."""
    base = tmp_path_factory.mktemp("hostile")
    root, out = base / "class", base / "grades"
    out.mkdir()
    other = root / "edited-metrics"
    port = listener.getsockname()[1]
    learner(
        root,
        "hang",
        ("phase1_hang.ipynb", notebook("x = 1", "import time\n\ntime.sleep(600)", "y = 2")),
        workspace=False,
    )
    learner(
        root,
        "exits",
        ("phase1_exits.ipynb", notebook("a = 1", "import sys\n\nsys.exit(0)", "b = 2", "c = 3")),
        workspace=False,
    )
    vandal = attempts(
        unlink_coursekit='os.remove(package / "__init__.py")',
        edit_score='open(package / "grading" / "score.py", "a").write("raise SystemExit")',
        remove_grades=f'shutil.rmtree("{out}")',
        write_grades=f'open("{out}/grades.csv", "w").write("name\\n")',
        edit_other=f'open("{other}/workspace.yaml", "w").write("name: x")',
        remove_other=f'shutil.rmtree("{other}/runs")',
        edit_own_original=f'open("{root}/vandal/ENHANCEMENT.md", "w").write("")',
    )
    learner(root, "vandal", ("phase1_vandal.ipynb", notebook(vandal, READ_ONLY)), workspace=False)
    peek = attempts(
        hidden='os.listdir(package / "grading" / "hidden")',
        other=f'open("{other}/ENHANCEMENT.md").read()',
        classmates=f'os.listdir("{root}")',
        grades=f'os.listdir("{out}")',
    )
    learner(root, "peeker", ("phase1_peeker.ipynb", notebook(peek, MASKED)), workspace=False)
    if isolation().holds("processes") and isolation().holds("cleanup"):  # else: skipped
        bomb = "import subprocess\n\nfor _ in range(100_000):\n"
        bomb += f'    subprocess.Popen(["sleep", "{SLEEP}"])'
        learner(
            root,
            "forkbomb",
            ("phase1_bomb.ipynb", notebook("x = 1", bomb, "y = 2")),
            workspace=False,
        )
    connect = f'import socket\n\nsocket.create_connection(("127.0.0.1", {port}), timeout=5)'
    learner(
        root,
        "network",
        ("phase1_network.ipynb", notebook("x = 1", connect, "y = 2")),
        workspace=False,
    )
    learner(root, "forged-outputs", ("phase1_forged.ipynb", forged_outputs()), workspace=False)
    quirks = [
        ("phase1_no_parameters.ipynb", notebook("x = 1", "print(x)")),
        ("phase2_duplicated.ipynb", duplicated()),
        ("phase3_not_json.ipynb", '{"cells": [ this is not JSON'),
    ]
    learner(root, "quirks", *quirks)
    edited = learner(root, "edited-metrics", ("phase1_baseline.ipynb", notebook("x = 1")))
    make.train(edited / make.BASELINE, seed=5)
    make.forge(edited / make.BASELINE)
    before = {"package": digest(PACKAGE), "class": digest(root)}
    # no hidden checks (an instructor's empty folder): they are tested in test_hidden.py, and
    # skipping their torch child saves ~18 s per learner here; the notebooks still cannot see
    # coursekit's own hidden checks (the peeker)
    nothing = Path(out).parent / "no-hidden-checks"
    nothing.mkdir(exist_ok=True)
    rows = grade_class(root, out, workers=2, limits=LIMITS, hidden_dir=nothing)
    after = {"package": digest(PACKAGE), "class": digest(root)}
    return {"rows": {r["name"]: r for r in rows}, "out": out, "class": root,
            "before": before, "after": after}  # fmt: skip


def only_notebook(row: dict) -> dict:
    [result] = row["notebooks"]
    return result


def test_every_hostile_learner_is_a_scored_row_and_grades_csv_has_them_all(hostile):
    rows, out = hostile["rows"], hostile["out"]
    assert sorted(rows) == sorted(p.name for p in hostile["class"].iterdir())
    for name, row in rows.items():
        if name in WORKSPACES:
            assert row["reason"] == "", (name, row["reason"])
        else:  # notebooks only: a reason, and still what each notebook did
            assert "workspace.yaml: not found" in row["reason"], row["reason"]
            assert row["notebooks"], name
        assert (out / name / RESULT).exists()
    lines = (out / "grades.csv").read_text().splitlines()
    assert len(lines) == 1 + len(rows)


def test_a_hanging_cell_is_stopped_by_the_cell_limit(hostile):
    result = only_notebook(hostile["rows"]["hang"])
    assert result["status"] == "timeout"
    assert result["message"] == "phase1_hang.ipynb: a cell ran over 10 s (per-cell limit)"


def test_sys_exit_is_stopped_not_executed(hostile):
    result = only_notebook(hostile["rows"]["exits"])
    assert result["status"] == "stopped"
    assert result["message"].startswith("phase1_exits.ipynb: stopped at cell 2 of 4 without")


def test_vandalism_fails_inside_and_leaves_the_host_intact(hostile):
    result = only_notebook(hostile["rows"]["vandal"])
    assert result["status"] == "executed", result["message"]  # every attempt failed as it must
    assert hostile["after"]["package"] == hostile["before"]["package"]
    assert hostile["after"]["class"] == hostile["before"]["class"]
    assert hostile["rows"]["edited-metrics"]["reason"] == ""
    assert (hostile["out"] / "edited-metrics" / RESULT).exists()


def test_hidden_checks_other_submissions_and_grades_are_unreadable(hostile):
    result = only_notebook(hostile["rows"]["peeker"])
    assert result["status"] == "executed", result["message"]  # hidden: EACCES; others: ENOENT


def test_a_fork_bomb_is_bounded_and_leaves_nothing_behind(hostile):
    require("processes", "cleanup")  # skips naming why (fails where CI requires the sandbox)
    row = hostile["rows"]["forkbomb"]
    result = only_notebook(row)
    assert result["status"] == "error", result  # pids.max reached: fork() fails with EAGAIN
    assert result["message"].startswith("phase1_bomb.ipynb: cell 2 raised BlockingIOError")
    assert not alive(f"sleep {SLEEP}")


def test_a_network_connection_fails_and_never_reaches_the_host(hostile, listener):
    result = only_notebook(hostile["rows"]["network"])
    assert result["status"] == "error"
    assert result["message"].startswith(
        "phase1_network.ipynb: cell 2 raised ConnectionRefusedError"
    )
    with pytest.raises(TimeoutError):
        listener.accept()


def test_stored_outputs_are_cleared_and_never_trusted(hostile):
    result = only_notebook(hostile["rows"]["forged-outputs"])
    assert result["status"] == "stopped"
    assert result["message"].startswith("phase1_forged.ipynb: stopped at cell 2 of 3")


def test_an_edited_loss_fails_the_evidence_naming_line_and_step(hostile):
    checks = {c["id"]: c for c in hostile["rows"]["edited-metrics"]["checks"]}
    assert checks["baseline-evidence"]["points"] == 0.0
    assert "line 3 (step 2) was edited after the run" in checks["baseline-evidence"]["message"]


def test_a_missing_parameters_cell_does_not_matter_to_the_grader(hostile):
    results = {r["name"]: r for r in hostile["rows"]["quirks"]["notebooks"]}
    assert results["phase1_no_parameters.ipynb"]["status"] == "executed"


def test_duplicated_cells_run_in_order(hostile):
    results = {r["name"]: r for r in hostile["rows"]["quirks"]["notebooks"]}
    assert results["phase2_duplicated.ipynb"]["status"] == "executed"  # its assert saw x == 3


def test_a_notebook_that_is_not_json_is_invalid(hostile):
    results = {r["name"]: r for r in hostile["rows"]["quirks"]["notebooks"]}
    assert results["phase3_not_json.ipynb"]["status"] == "invalid"
    assert results["phase3_not_json.ipynb"]["message"].startswith(
        "phase3_not_json.ipynb: not a valid notebook ("
    )
    checks = {c["id"]: c["points"] for c in hostile["rows"]["quirks"]["checks"]}
    assert checks["notebooks-executed"] == 2.0  # 2 of 4 phases ran: phase3 invalid, no phase4
