"""Hidden checks: the reference answers pass, wrong and hostile modules fail, points, masking."""

from __future__ import annotations

import inspect
import math
import os
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from hypothesis import given
from hypothesis import strategies as st

import coursekit
from coursekit.errors import CoursekitError
from coursekit.evaluate import jail
from coursekit.evaluate.sandbox import SandboxLimits, default_hidden, run_sandboxed
from coursekit.exercises import solutions
from coursekit.exercises.registry import EXERCISES
from coursekit.grading.hidden_load import BUILT_IN, hidden_tier
from coursekit.grading.hidden_run import (
    ROW_KEYS,
    hidden_feedback,
    hidden_points,
    hidden_rows,
    run_hidden,
)
from coursekit.grading.rubric import load_rubric
from coursekit.grading.runner import RunLimits, execute, readable_paths
from coursekit.workspace.layout import new_workspace
from coursekit.workspace.tiers import EXERCISE_OF, TIERS
from tests.workspace.conftest import notebook, write

NEEDS_BWRAP = jail.available("bubblewrap")
RUBRIC = load_rubric()
HEAD = """from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from coursekit.adapters.qat import fake_quantize_int4
"""


def _write(copy: Path, letter: str, text: str) -> None:
    package = copy / "enhancements"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / f"{TIERS[letter].module}.py").write_text(text)


MULTI_LORA = """
def multi_lora_forward(x, W0, b, A, B, indices, scale):
    y = x @ W0.T
    if b is not None:
        y = y + b
    hidden = torch.einsum("bsi,bri->bsr", x, A[indices])  # (b, s, r)
    return y + scale * torch.einsum("bsr,bor->bso", hidden, B[indices])
"""
TRAINABLE_COUNT = """
def lora_trainable_count(model_config, rank, targets):
    hidden, heads = model_config.hidden_size, model_config.num_attention_heads
    head_dim = getattr(model_config, "head_dim", None) or hidden // heads
    kv = model_config.num_key_value_heads * head_dim
    inner = model_config.intermediate_size
    shapes = {"q_proj": (hidden, heads * head_dim), "k_proj": (hidden, kv),
              "v_proj": (hidden, kv), "o_proj": (heads * head_dim, hidden),
              "gate_proj": (hidden, inner), "up_proj": (hidden, inner),
              "down_proj": (inner, hidden)}
    return model_config.num_hidden_layers * sum(rank * sum(shapes[t]) for t in targets)
"""
OWN = {"B": TRAINABLE_COUNT, "G": MULTI_LORA}
REFERENCE_TIERS = ("B", *EXERCISE_OF, "G")


def _reference(letter: str) -> str:
    """The module a learner would write: coursekit's reference answers' source, and a print."""
    if letter in OWN:
        return f"{HEAD}\n{OWN[letter]}\nprint('learner output is discarded')\n"
    parts = EXERCISES[EXERCISE_OF[letter]].parts
    source = "\n\n".join(inspect.getsource(getattr(solutions, name)) for name in parts)
    return f"{HEAD}\n\n{source}\nprint('learner output is discarded')\n"


@pytest.fixture
def work(tmp_path) -> Path:
    (tmp_path / "work" / "submission").mkdir(parents=True)
    return tmp_path / "work"


@pytest.mark.slow
def test_reference_answers_pass_every_hidden_check(work):
    letters = REFERENCE_TIERS
    for letter in letters:
        _write(work / "submission", letter, _reference(letter))
    rows = run_hidden(work / "submission", work, letters, seconds=300)
    expected = [i for t in letters for i in hidden_tier(t).ids()]
    assert [row["id"] for row in rows] == expected
    assert all(tuple(row) == ROW_KEYS for row in rows)
    assert [row["message"] for row in rows if not row["passed"]] == []
    assert math.isclose(sum(r["points"] for r in rows if r["tier"] in "BCDEFGH"), 12.0)
    assert math.isclose(sum(r["points"] for r in rows if r["tier"] in "IJ"), 6.0)
    earned, _ = hidden_points(rows, RUBRIC, tiers=letters)
    assert earned == {"hidden-checks": 12.0, "bonus-checks": 6.0}
    assert hidden_feedback(rows).startswith(f"{len(rows)} of {len(rows)} hidden checks passed")


TORCHTUNE_DORA = """
def dora_forward(x, W0, b, A, B, m, scale):
    weight = W0 + scale * B @ A
    norm = weight.norm(dim=1).detach()
    y = x @ weight.T
    if b is not None:
        y = y + b
    return y * (m / norm)  # the bias rescaled too: torchtune's mistake
"""


@pytest.mark.slow
def test_wrong_missing_and_broken_modules_fail_the_right_checks(work):
    copy = work / "submission"
    _write(copy, "E", TORCHTUNE_DORA)
    _write(copy, "F", "def fake_quant(weight):\n    return weight\n")
    _write(copy, "H", "import no_such_module_anywhere\n")  # C: no file at all
    _write(copy, "G", HEAD + MULTI_LORA.replace("[indices]", "[indices * 0]"))  # adapter 0 only
    kv_as_hidden = '"k_proj": (hidden, hidden), "v_proj": (hidden, hidden)'
    _write(
        copy,
        "B",
        TRAINABLE_COUNT.replace(
            '"k_proj": (hidden, kv),\n              "v_proj": (hidden, kv)', kv_as_hidden
        ),
    )
    rows = run_hidden(copy, work, ("B", "C", "E", "F", "G", "H"), seconds=240)
    by_id = {row["id"]: row for row in rows}
    failed_e = {row["name"] for row in rows if row["tier"] == "E" and not row["passed"]}
    rescaled = {"bias untouched", "parity with DoRALinear on random shapes", "gradient w.r.t. m"}
    assert failed_e == rescaled  # ∂y/∂m holds the rescaled bias too
    bias = by_id["E.dora_forward/bias untouched"]
    assert bias["points"] == 0.0 and math.isclose(bias["of"], 12 / 6 / 7)  # 6 tiers, 7 checks
    assert bias["message"].startswith("output with b + 1 differs")
    assert by_id["E.dora_forward/output shape"]["points"] == bias["of"]
    for row in rows:
        if row["tier"] == "C":
            assert row["message"] == (
                "enhancements/c_lr_finder.py: missing; the hidden checks of Tier C import "
                "suggest_lr from it"
            )
        if row["tier"] == "F":
            assert row["message"].startswith("enhancements/f_qat.py has no fake_quant_ste")
        if row["tier"] == "H":
            assert row["message"] == (
                "enhancements/h_curriculum.py does not import (ModuleNotFoundError: No module "
                "named 'no_such_module_anywhere'); nothing was checked"
            )
    assert all(not row["passed"] and row["points"] == 0.0 for row in rows if row["tier"] in "CFH")
    failed_g = {row["name"] for row in rows if row["tier"] == "G" and not row["passed"]}
    assert failed_g == {"each example its own adapter", "b is None",
                        "an unused adapter gets no gradient",
                        "parity with MultiLoRALinear on random shapes"}  # fmt: skip
    failed_b = {row["name"] for row in rows if row["tier"] == "B" and not row["passed"]}
    assert failed_b == {name for name, _ in hidden_tier("B").checks} - {"tiny Qwen2, MLP targets"}
    earned, notes = hidden_points(rows, RUBRIC, tiers=("B", "C", "E", "F", "G", "H"))
    assert earned["hidden-checks"] == round(12 * (1 / 4 + 4 / 7 + 2 / 6) / 6, 2)
    assert "E.dora_forward/bias untouched: output with b + 1 differs" in notes["hidden-checks"]


INSTRUCTOR = """
from coursekit.exercises.result import CheckFailed

ID = "H.instructor"
EXPORTS = ("pacing",)


def _first(pacing):
    if pacing(0, 10, 0.5) != 0.5:
        raise CheckFailed("c(0) must be 0.5")


def _slow(pacing):
    pacing(-1, 10, 0.5)


def _exits(pacing):
    pacing(99, 10, 0.5)


def _hangs(pacing):
    pacing(77, 10, 0.5)


def _last(pacing):
    if pacing(10, 10, 0.5) != 1.0:
        raise CheckFailed("c(T) must be 1")


CHECKS = (("first", _first), ("slow", _slow), ("exits", _exits), ("hangs", _hangs),
          ("last", _last))
"""

HOSTILE_PACING = """
import os
import signal


def pacing(step, total_steps, start_fraction):
    if step == -1:
        while True:  # an endless loop: the check's alarm ends it
            pass
    if step == 99 and os.environ.get("EXIT"):
        os._exit(3)
    if step == 77 and os.environ.get("HANG"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        while True:  # deaf to the alarm: only the run's wall time ends it
            pass
    return min(1.0, start_fraction + step * (1 - start_fraction) / total_steps)
"""


@pytest.fixture
def instructor(tmp_path) -> Path:
    folder = tmp_path / "instructor"
    folder.mkdir()
    (folder / "tier_h.py").write_text(INSTRUCTOR)
    return folder


def _instructor_run(work: Path, instructor: Path, module: str, **kwargs) -> dict[str, dict]:
    _write(work / "submission", "H", module)
    rows = run_hidden(work / "submission", work, ("A", "H"), hidden_dir=instructor, **kwargs)
    return {row["name"]: row for row in rows}


def test_an_instructor_dir_each_check_alone_and_an_endless_loop(work, instructor):
    rows = _instructor_run(work, instructor, HOSTILE_PACING, seconds=60, check_seconds=2)
    assert list(rows) == ["first", "slow", "exits", "hangs", "last"]
    assert [rows[n]["passed"] for n in rows] == [True, False, True, True, True]
    assert rows["slow"]["message"] == "ran over 2 s: your code did not return (an endless loop?)"
    assert rows["slow"]["id"] == "H.instructor/slow" and math.isclose(rows["first"]["of"], 2.4)


def test_submission_checks_the_original_package_not_the_changed_copy(tmp_path, work, instructor):
    original = tmp_path / "ada"
    _write(original, "H", HOSTILE_PACING)
    (original / "enhancements" / "h_curriculum.py").chmod(0o600)  # as some unzips leave it
    _write(
        work / "submission", "H", "def pacing(step, total_steps, start_fraction):\n    return 0\n"
    )
    rows = run_hidden(work / "submission", work, ("H",), hidden_dir=instructor, seconds=60,
                      check_seconds=2, submission=original)  # fmt: skip
    assert [row["passed"] for row in rows] == [True, False, True, True, True]


def test_os_exit_fails_the_running_check_and_those_after_it(work, instructor):
    module = HOSTILE_PACING.replace('os.environ.get("EXIT")', "True")
    rows = _instructor_run(work, instructor, module, seconds=60, check_seconds=2)
    assert [rows[n]["passed"] for n in rows] == [True, False, False, False, False]
    said = "not graded: the hidden-check process ended with exit code 3 (a crash or os._exit?)"
    assert rows["exits"]["message"] == f"{said} in this check"
    assert rows["last"]["message"] == f"{said} before this check ran"


@pytest.mark.slow
def test_a_hang_deaf_to_the_alarm_times_the_run_out(work, instructor):
    module = HOSTILE_PACING.replace('os.environ.get("HANG")', "True")
    rows = _instructor_run(work, instructor, module, seconds=10, check_seconds=2)
    assert [rows[n]["passed"] for n in rows] == [True, False, True, False, False]
    said = "not graded: the hidden-check run timed out after 10 s"
    assert rows["hangs"]["message"] == f"{said} in this check"
    assert rows["last"]["message"] == f"{said} before this check ran"


FORGER = """
import json
import os
import sys

ids = ["first", "slow", "exits", "hangs", "last"]
entry = {{"passed": True, "message": ""}}
results = {{f"H.instructor/{{name}}": dict(entry) for name in ids}}
forged = {{"token": "guessed", "finished": True, "running": None, "results": results}}
{tamper}
with open(sys.argv[2], "w") as handle:
    json.dump(forged, handle)
os._exit(0)
"""
TAMPER = {
    "a guessed token": ("", "the run's token does not match"),
    "an unknown id": (
        "import gc\n"
        "forged['token'] = next(o['token'] for o in gc.get_objects() if isinstance(o, dict) "
        "and set(o) >= {'token', 'copy'})\n"
        "results['H.instructor/bonus'] = dict(entry)",
        "unknown check id 'H.instructor/bonus'",
    ),
    "points in an entry": (
        "import gc\n"
        "forged['token'] = next(o['token'] for o in gc.get_objects() if isinstance(o, dict) "
        "and set(o) >= {'token', 'copy'})\n"
        "results['H.instructor/first']['points'] = 100",
        "a bad entry for 'H.instructor/first'",
    ),
}


@pytest.mark.parametrize("tamper", TAMPER)
def test_a_forged_result_is_not_believed(work, instructor, tamper):
    code, why = TAMPER[tamper]
    rows = _instructor_run(work, instructor, FORGER.format(tamper=code), seconds=60)
    assert all(not row["passed"] and row["points"] == 0.0 for row in rows.values())
    assert rows["last"]["message"] == (f"not graded: the hidden-check result was malformed ({why})")


def test_limit_a_forgery_with_the_token_from_memory_is_believed(work, instructor):
    """The documented limit: code in the checks' process can read the token and forge."""
    code = TAMPER["an unknown id"][0].rsplit("\n", 1)[0]
    rows = _instructor_run(work, instructor, FORGER.format(tamper=code), seconds=60)
    assert all(row["passed"] for row in rows.values())


def test_a_broken_instructor_module_is_one_line_naming_it(tmp_path):
    (tmp_path / "tier_e.py").write_text("ID = 'E.x'\nEXPORTS = ('f',)\nCHECKS = (('a', 1),)\n")
    with pytest.raises(CoursekitError, match=r"tier_e.py: CHECKS\[0\] must be a \(name, function"):
        hidden_tier("E", tmp_path)
    assert hidden_tier("H", tmp_path) is None  # no file: no hidden checks for that tier


@given(
    st.lists(st.sampled_from(REFERENCE_TIERS), min_size=1, unique=True),
    st.data(),
)
def test_points_stay_within_of_and_sum_to_the_rubric(letters, data):
    chosen = [hidden_tier(letter) for letter in letters]
    ids = [check_id for tier in chosen for check_id in tier.ids()]
    passed = data.draw(st.lists(st.booleans(), min_size=len(ids), max_size=len(ids)))
    rows = hidden_rows(chosen, {i: (p, "") for i, p in zip(ids, passed, strict=True)}, RUBRIC)
    assert all(0.0 <= row["points"] <= row["of"] for row in rows)
    earned, _ = hidden_points(rows, RUBRIC, tiers=tuple(letters))
    all_pass = hidden_rows(chosen, {i: (True, "") for i in ids}, RUBRIC)
    best, _ = hidden_points(all_pass, RUBRIC, tiers=tuple(letters))
    for group, levels in (("hidden-checks", "BCDEFGH"), ("bonus-checks", "IJ")):
        full = 12.0 if group == "hidden-checks" else 6.0
        mine = [row for row in all_pass if row["tier"] in levels]
        if mine:
            assert math.isclose(sum(row["points"] for row in mine), full)
            assert best[group] == full
        got = sum(row["points"] for row in rows if row["tier"] in levels)
        assert 0.0 <= earned[group] <= full and math.isclose(earned[group], got, abs_tol=0.006)


def test_tiers_without_hidden_checks():
    earned, notes = hidden_points([], RUBRIC, tiers=("A",))
    assert earned == {"hidden-checks": 12.0, "bonus-checks": 0.0}
    assert notes["hidden-checks"] == "Tier A has no hidden checks: full points, nothing to fail"
    assert notes["bonus-checks"] == "no bonus tier (I-L) chosen"
    earned, notes = hidden_points([], RUBRIC, tiers=("A", "K"))
    assert earned["bonus-checks"] == 0.0
    assert notes["bonus-checks"] == "Tier K has no hidden checks: no bonus points from them"
    assert run_hidden(Path("/nonexistent"), Path("/nonexistent"), ("A", "K", "L"), seconds=1) == []


def test_the_workspace_template_states_the_contract(tmp_path):
    solutions_dir = tmp_path / "solutions"
    write(solutions_dir / "phase1_baseline.ipynb", notebook("x = 1"))
    ws = new_workspace(
        tmp_path / "ws", name="ada", tiers=("A", "E", "G", "J"), notebooks=solutions_dir
    )
    dora = (ws / "enhancements" / "e_dora.py").read_text()
    assert "hidden checks call dora_forward (signature: dora_forward(x, W0, b, A, B, m," in dora
    assert "Tier A has no hidden checks" in (ws / "enhancements/a_rank_ablation.py").read_text()
    assert "call multi_lora_forward" in (ws / "enhancements/g_multi_adapter.py").read_text()
    assert "save_state and restore_state" in (ws / "enhancements/j_resume.py").read_text()
    longest = max(len(line) for path in (ws / "enhancements").glob("*.py") for line in
                  path.read_text().splitlines())  # fmt: skip
    assert longest <= 100  # the workspace's ruff line length


def test_bwrap_masks_only_hidden_paths_a_readable_bind_exposes(tmp_path):
    package = Path(coursekit.__file__).resolve().parent
    args = jail._bwrap_arguments(tmp_path, [package], [BUILT_IN, tmp_path / "elsewhere"])
    assert args[args.index("--tmpfs", args.index(str(package))) + 1] == str(BUILT_IN)
    assert str(tmp_path / "elsewhere") not in args
    assert default_hidden() == [BUILT_IN]


@pytest.mark.skipif(bool(NEEDS_BWRAP), reason=f"bubblewrap needed: {NEEDS_BWRAP}")
def test_sandboxed_runs_cannot_read_the_hidden_checks_unless_shown(tmp_path):
    command = ["sh", "-c", 'cat "$0"/tier_e.py >/dev/null && ls "$0"', str(BUILT_IN)]
    limits = SandboxLimits(wall_seconds=30)
    masked = run_sandboxed(command, directory=tmp_path, limits=limits, readable=readable_paths())
    assert masked.exit_code != 0
    shown = run_sandboxed(command, directory=tmp_path, limits=limits, readable=readable_paths(),
                          hidden=())  # fmt: skip
    assert shown.exit_code == 0 and "tier_e.py" in shown.output


SNOOP = f"""
import os
from pathlib import Path

import coursekit

package = Path(coursekit.__file__).resolve().parent
assert (package / "grading" / "rubric.yaml").read_text()  # the package is readable
hidden = package / "grading" / "hidden"
try:
    names = os.listdir(hidden)
except PermissionError:
    names = []
assert names == [], names
for name in {sorted(p.name for p in BUILT_IN.glob("*.py"))!r}:
    try:
        (hidden / name).read_text()
    except OSError:
        continue
    raise AssertionError(f"read the hidden check {{name}}")
"""


@pytest.mark.slow
@pytest.mark.skipif(bool(NEEDS_BWRAP), reason=f"bubblewrap needed: {NEEDS_BWRAP}")
def test_a_notebook_cannot_read_the_hidden_checks(tmp_path):
    submission = tmp_path / "ada"
    (submission / "notebooks").mkdir(parents=True)
    cell = nbformat.v4.new_code_cell(textwrap.dedent(SNOOP))
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), submission / "notebooks/phase1.ipynb")
    (tmp_path / "w").mkdir()
    [result] = execute(
        submission, tmp_path / "w", RunLimits(cell_seconds=60, submission_seconds=120)
    )
    assert result.status == "executed", result.message
    assert os.listdir(BUILT_IN)  # still there outside the sandbox


def test_a_thread_left_running_does_not_hold_the_run(work, instructor):
    module = (
        "import threading\nimport time\n\nthreading.Thread(target=time.sleep, args=(60,)).start()\n"
    )
    module += HOSTILE_PACING
    start = time.monotonic()
    rows = _instructor_run(work, instructor, module, seconds=30, check_seconds=2)
    assert time.monotonic() - start < 20  # the child did not wait 60 s for the thread
    assert [rows[n]["passed"] for n in rows] == [True, False, True, True, True]


@pytest.mark.parametrize("kind", ["a link", "a fifo"])
def test_a_result_that_is_not_a_regular_file_is_not_read(work, instructor, kind):
    make = (
        "os.symlink('/etc/passwd', sys.argv[2])" if kind == "a link" else "os.mkfifo(sys.argv[2])"
    )
    module = f"import os\nimport sys\n\n{make}\nos._exit(0)\n"
    rows = _instructor_run(work, instructor, module, seconds=30)
    assert all(not row["passed"] for row in rows.values())
    assert rows["first"]["message"].startswith(
        "not graded: the hidden-check process ended with exit code 0 (a crash or os._exit?); "
        "no result came back"
    )
