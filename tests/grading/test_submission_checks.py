"""submission_checks: which run is the baseline, the Phase 4 pair, missing phases, examples."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit.grading.evidence import verify_run
from coursekit.grading.submission_checks import (
    PHASES,
    baseline_evidence,
    benchmark_evidence,
    missing_phases,
    python_blocks,
    usage_examples,
)
from tests.grading.test_evidence import edit_loss


def _place(run: Path, copy: Path, *parts: str) -> Path:
    return Path(shutil.copytree(run, copy.joinpath("runs", *parts)))


def test_the_baseline_is_the_phase1_run_not_a_benchmark_run(nano_runs, tmp_path, monkeypatch):
    import coursekit.grading.submission_checks as checks

    seen = []
    monkeypatch.setattr(checks, "_verify", lambda run: seen.append(run) or (True, ""))
    _place(nano_runs[0], tmp_path, "phase4", "before-after", "before", "train")
    assert baseline_evidence(tmp_path) == (False, "no run folder with a manifest.json under runs/")
    _place(nano_runs[0], tmp_path, "a-first", "train")
    _place(nano_runs[1], tmp_path, "phase1-baseline", "20261201T000000Z", "train")
    assert baseline_evidence(tmp_path) == (True, "")
    assert seen == [tmp_path / "runs" / "phase1-baseline" / "20261201T000000Z" / "train"]


def test_without_a_phase1_folder_the_first_other_run_is_the_baseline(nano_runs, tmp_path):
    _place(nano_runs[0], tmp_path, "phase4", "before-after", "after", "train")
    mine = _place(nano_runs[1], tmp_path, "z-mine", "train")
    edit_loss(mine, 2, 0.5)
    ok, said = baseline_evidence(tmp_path)  # the edit fails the hashes: no re-run is spent
    assert ok is False and "line 3 (step 2) was edited" in said
    assert "not re-run: the run's files differ" in said


@pytest.mark.heavy  # 3 re-runs; CI: the fixture class's complete, forged and no-phase4 rows
def test_a_genuine_benchmark_pair_verifies_and_an_edited_one_is_named(nano_runs, tmp_path):
    pair = tmp_path / "runs" / "phase4" / "before-after"
    assert benchmark_evidence(tmp_path)[0] is None
    _place(nano_runs[0], tmp_path, "phase4", "before-after", "before", "train")
    assert benchmark_evidence(tmp_path) == (
        None,
        "no Phase 4 benchmark: no run folders under runs/**/before/ and runs/**/after/",
    )
    _place(nano_runs[1], tmp_path, "phase4", "before-after", "after", "train")
    assert benchmark_evidence(tmp_path) == (True, "")
    edit_loss(pair / "after" / "train", 3, -0.01)
    ok, said = benchmark_evidence(tmp_path)
    assert ok is False
    assert said.startswith("runs/phase4/before-after/after/train: metrics.jsonl: SHA-256 differs")
    assert verify_run(pair / "before" / "train")["ok"]  # the other side was not touched


def test_missing_phases_names_each_phase_without_a_notebook():
    assert missing_phases([]) == list(PHASES)
    assert missing_phases(["phase1_baseline.ipynb", "phase2_x.ipynb", "phase3_core.ipynb"]) == [
        "phase4"
    ]


@given(st.lists(st.sampled_from(["phase1_a.ipynb", "phase2_b.ipynb", "phase3_c.ipynb",
                                 "phase4_d.ipynb", "notes.ipynb"])))  # fmt: skip
def test_missing_and_present_phases_partition_the_course(names):
    missing = missing_phases(names)
    present = {n[:6] for n in names if n.startswith("phase")}
    assert set(missing) | present == set(PHASES) and not set(missing) & present


def test_python_blocks_take_only_python_fences_closed_by_their_own_fence():
    text = "a\n```python\nx = 1\n````\nstill\n```\n````python\ny = '```'\n````\n~~~python\nz\n~~~\n"
    assert python_blocks(text) == ["x = 1\n````\nstill\n", "y = '```'\n", "z\n"]
    assert python_blocks("```\nimport e_dora\n```\n") == []


def test_usage_examples_count_the_tiers_a_python_block_names(tmp_path):
    modules = {"C": "c_lr_finder", "E": "e_dora"}
    doc = tmp_path / "ENHANCEMENT.md"
    doc.write_text("Use e_dora.\n```text\nfrom enhancements.c_lr_finder import x\n```\n")
    assert usage_examples(tmp_path, modules) == (
        0.0,
        "no ```python block names C (c_lr_finder), E (e_dora)",
    )
    doc.write_text("```python\nfrom enhancements.e_dora import dora_forward\n```\n")
    assert usage_examples(tmp_path, modules) == (0.5, "no ```python block names C (c_lr_finder)")
    doc.write_text("```python\nimport enhancements.c_lr_finder, enhancements.e_dora_v2\n```\n")
    assert usage_examples(tmp_path, modules)[0] == 0.5  # e_dora_v2 is not e_dora
    assert usage_examples(tmp_path, {}) == (0.0, "workspace.yaml chooses no tier")
