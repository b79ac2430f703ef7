"""coursekit.grading.shard and merge: shards partition a class; merged outputs are the union."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from coursekit.cli import main
from coursekit.errors import CoursekitError
from coursekit.evaluate import jail
from coursekit.grading.batch import RESULT, grade_class, write_outputs
from coursekit.grading.merge import merge_outputs
from coursekit.grading.runner import RunLimits
from coursekit.grading.shard import parse_shard, shard_names
from tests.workspace.conftest import notebook, write

ROOT = Path(__file__).resolve().parents[2]
NEEDS_BWRAP = jail.available("bubblewrap")


@given(names=st.sets(st.text(min_size=1, max_size=8)), count=st.integers(1, 12))
def test_shards_partition_the_names_for_any_n(names, count):
    shards = [shard_names(names, i, count) for i in range(1, count + 1)]
    assert sorted(n for shard in shards for n in shard) == sorted(names)  # each exactly once
    assert all(len(shard) in (len(names) // count, -(-len(names) // count)) for shard in shards)


def test_shard_i_takes_every_nth_sorted_name():
    names = [f"l{k:02d}" for k in range(10)]
    assert shard_names(reversed(names), 3, 4) == ["l02", "l06"]


@pytest.mark.parametrize(
    ("text", "said"),
    [("9/8", "i must be 1..n (got i = 9, n = 8)"), ("0/8", "i must be 1..n"),
     ("3/0", "i must be 1..n"), ("3-8", "not i/n"), ("x", "not i/n")],
)  # fmt: skip
def test_parse_shard_refuses_bad_input_in_one_line(text, said):
    with pytest.raises(CoursekitError, match=re.escape(said)) as error:
        parse_shard(text)
    assert "\n" not in str(error.value)
    assert parse_shard(" 3 / 8 ") == (3, 8)


def test_cli_refuses_a_bad_shard_with_exit_2(tmp_path, capsys):
    (tmp_path / "class").mkdir()
    code = main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "o"), "--shard", "9/8"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--shard 9/8: i must be 1..n" in err


def _array(text: str) -> range:
    first, last = re.search(r"^#SBATCH --array=(\d+)-(\d+)$", text, re.M).groups()
    return range(int(first), int(last) + 1)


def _covered(shards: list[tuple[int, int]], names: list[str]) -> list[str]:
    return sorted(n for i, count in shards for n in shard_names(names, i, count))


NAMES = [f"learner-{k:03d}" for k in range(37)]


def test_the_slurm_sample_grades_every_learner_exactly_once():
    text = (ROOT / "docs" / "grading" / "slurm-array.sh").read_text()
    count = int(re.search(r"^SHARDS=(\d+)", text, re.M)[1])
    assert '--shard "${SLURM_ARRAY_TASK_ID}/${SHARDS}"' in text
    assert '--out "grades-${SLURM_ARRAY_TASK_ID}"' in text
    tasks = _array(text)
    assert _covered([(task, count) for task in tasks], NAMES) == NAMES
    merged = re.search(r"printf 'grades-%d ' \$\(seq (\d+) (\d+)\)", text).groups()
    assert range(int(merged[0]), int(merged[1]) + 1) == tasks  # merge reads every shard


def test_the_kubernetes_sample_grades_every_learner_exactly_once():
    grade, merge = yaml.safe_load_all((ROOT / "docs" / "grading" / "k8s-indexed-job.yaml").open())
    spec = grade["spec"]
    assert spec["completionMode"] == "Indexed"
    command = spec["template"]["spec"]["containers"][0]["args"][0]
    shard = re.search(r'--shard "\$\(\(JOB_COMPLETION_INDEX \+ (\d)\)\)/(\d+)"', command)
    offset, count = int(shard[1]), int(shard[2])
    assert count == spec["completions"] and offset == 1  # 0-based index → 1-based shard
    indices = range(spec["completions"])  # JOB_COMPLETION_INDEX = 0 .. completions - 1
    assert _covered([(k + offset, count) for k in indices], NAMES) == NAMES
    assert '--out "grades-$((JOB_COMPLETION_INDEX + 1))"' in command
    merged = merge["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert re.findall(r"grades-(\d+)", merged) == [str(k + offset) for k in indices]


def _learner(out: Path, name: str, final: float, adapters=(), **extra) -> dict:
    row = {"name": name, "reason": "", "total": final, "late_days": 0, "late_points": 0.0,
           "final": final, "letter": "A" if final >= 90 else "F", "pending": [],
           "checks": [{"id": "coverage", "points": 8.0, "of": 8.0, "message": ""}],
           "categories": {}, "fingerprints": {"adapters": list(adapters), "shingles": []},
           "flags": [], "seconds": 1.0, "plots": [], **extra}  # fmt: skip
    (out / name).mkdir(parents=True, exist_ok=True)
    (out / name / RESULT).write_text(json.dumps(row))
    return row


def test_merge_copies_the_union_and_flags_across_shards(tmp_path):
    one, two = tmp_path / "grades-1", tmp_path / "grades-2"
    _learner(one, "ada", 95.0, adapters=["ab" * 32])
    _learner(two, "bob", 50.0, adapters=["ab" * 32])
    _learner(two, "cy", 70.0, seconds=9.0)
    (one / "ada" / "plots").mkdir()
    (one / "ada" / "plots" / "x.bin").write_bytes(b"kept")  # the whole folder is copied
    _learner(one, "cy", 70.0, seconds=2.0)  # graded twice, the same result: fine
    for shard in (one, two):
        write_outputs(shard)  # each shard alone sees no duplicate
    assert json.loads((one / "ada" / RESULT).read_text())["flags"] == []
    code = main(["grade", "merge", str(one), str(two), "--out", str(tmp_path / "grades")])
    out = tmp_path / "grades"
    assert code == 0
    document = json.loads((out / "grades.json").read_text())
    assert [r["name"] for r in document["learners"]] == ["ada", "bob", "cy"]
    assert document["learners"][0]["flags"] == ["same adapter as bob (sha256 abababab…)"]
    assert json.loads((out / "bob" / RESULT).read_text())["flags"] == [
        "same adapter as ada (sha256 abababab…)"
    ]
    assert "same adapter as bob" in (out / "grades.csv").read_text()
    assert (out / "cy" / "feedback.html").exists() and (out / "cohort.html").exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no staging left
    assert (out / "ada" / "plots" / "x.bin").read_bytes() == b"kept"
    rows = merge_outputs([one, two], one)  # into one of the shards: its own learners stay
    assert [r["name"] for r in rows] == ["ada", "bob", "cy"] and (one / "ada" / "plots").is_dir()


def test_merge_refuses_a_learner_graded_differently_in_two_shards(tmp_path, capsys):
    one, two = tmp_path / "grades-1", tmp_path / "grades-2"
    _learner(one, "ada", 95.0)
    _learner(two, "ada", 85.0)
    with pytest.raises(CoursekitError, match=r"learner ada: graded differently in .*grades-1 and "
                       r".*grades-2; regrade it once"):  # fmt: skip
        merge_outputs([one, two], tmp_path / "grades")
    assert not (tmp_path / "grades").exists()
    code = main(["grade", "merge", str(one), str(tmp_path / "none"), "--out", str(tmp_path / "g")])
    assert code == 2 and "none: not a grades folder" in capsys.readouterr().err
    code = main(["grade", "merge", str(one), "--out", str(tmp_path / "g"), "--shard", "1/2"])
    assert code == 2 and "--shard does not apply to merge" in capsys.readouterr().err


def test_grade_still_takes_one_submissions_folder(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    code = main(["grade", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "o")])
    assert code == 2 and "give one SUBMISSIONS folder (got 2)" in capsys.readouterr().err


@pytest.mark.heavy  # the end-to-end twin of the merge tests above (~60 s in the sandbox)
@pytest.mark.skipif(bool(NEEDS_BWRAP), reason=f"needs bubblewrap ({NEEDS_BWRAP})")
def test_a_class_graded_in_two_shards_and_merged(tmp_path):
    """Three learners without workspace.yaml: each notebook runs in the sandbox, then fails."""
    klass = tmp_path / "class"
    for name in ("ada", "bob", "cy"):
        write(klass / name / "notebooks" / "phase1_baseline.ipynb", notebook("x = 1"))
        adapter = klass / name / "runs" / "r" / "adapter" / "adapter_model.safetensors"
        adapter.parent.mkdir(parents=True)
        adapter.write_bytes(name.encode() * 9)
    shutil.copy(klass / "ada" / "runs" / "r" / "adapter" / "adapter_model.safetensors",
                klass / "cy" / "runs" / "r" / "adapter" / "adapter_model.safetensors")  # fmt: skip
    limits = RunLimits(cell_seconds=20, submission_seconds=120)
    shards = [tmp_path / f"grades-{i}" for i in (1, 2)]
    for i, out in enumerate(shards, start=1):
        grade_class(klass, out, shard=(i, 2), limits=limits)
    assert sorted(p.name for p in shards[0].iterdir() if p.is_dir()) == ["ada", "cy"]
    assert sorted(p.name for p in shards[1].iterdir() if p.is_dir()) == ["bob"]
    rows = merge_outputs(shards, tmp_path / "grades")
    assert [r["name"] for r in rows] == ["ada", "bob", "cy"]
    assert all("workspace check gave no report" in r["reason"] for r in rows)
    assert all(r["seconds"] > 0 for r in rows)
    digest = rows[0]["fingerprints"]["adapters"][0]
    assert rows[0]["flags"] == [f"same adapter as cy (sha256 {digest[:8]}…)"]
    assert rows[1]["flags"] == []


def test_merge_names_a_broken_result_json(tmp_path):
    one = tmp_path / "grades-1"
    _learner(one, "ada", 95.0)
    (one / "ada" / RESULT).write_text("{")
    with pytest.raises(CoursekitError, match=r"ada/result\.json: not JSON .*; regrade that"):
        merge_outputs([one], tmp_path / "grades")
    (one / "ada" / RESULT).write_text(json.dumps({"name": "bob"}))
    with pytest.raises(CoursekitError, match=r"not a grading row of ada \(its name differs\)"):
        merge_outputs([one], tmp_path / "grades")
    (one / "ada" / RESULT).unlink()
    with pytest.raises(CoursekitError, match=r"grade merge: no shard folders given"):
        merge_outputs([], tmp_path / "grades")
    with pytest.raises(CoursekitError, match=r"grades-1: holds no <learner>/result\.json"):
        merge_outputs([one], tmp_path / "grades")
