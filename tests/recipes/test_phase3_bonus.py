"""The Phase 3 Bonus recipes: specs and folders, the metrics comparison (I), kill-and-resume
for real (J), the learner's crate through ``coursekit corpus build`` (K), bench rows (L)."""

from __future__ import annotations

import math
import random
import shutil
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from coursekit.data.corpus import load_splits, seed_dir
from coursekit.errors import CoursekitError
from coursekit.recipes.phase3_bonus import bonus_spec, new_output, rows_table
from coursekit.recipes.phase3_bonus.bench import bench_command, bench_rows
from coursekit.recipes.phase3_bonus.crate import (
    build_command,
    build_crate_corpus,
    crate_with_module,
    sample_crate,
    with_validation,
)
from coursekit.recipes.phase3_bonus.dashboard import (
    compare_history,
    history_figure,
    logged_history,
)
from coursekit.recipes.phase3_bonus.resume import ResumeResult, kill_and_resume

# ---------------------------------------------------------------- spec, folders, tables


def test_bonus_spec_is_a_short_lora_run_on_the_seed_set():
    spec = bonus_spec(steps=7, dropout=0.1, seed=3)
    assert (spec.train.max_steps, spec.train.seed, spec.adapter.dropout) == (7, 3, 0.1)
    assert Path(spec.data) == seed_dir() and spec.method == "lora"
    assert bonus_spec(data="/x").data == "/x"


def test_new_output_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.jsonl").write_text("{}")
    with pytest.raises(CoursekitError, match="not empty"):
        new_output(tmp_path / "old")
    assert new_output(tmp_path / "new").is_dir()


def test_rows_table_escapes_and_leaves_none_blank():
    table = rows_table([{"id": "<a>", "x": None, "y": 0.123456789}])
    assert "&lt;a&gt;" in table and '<td style="text-align:left"></td>' in table
    assert "0.123457" in table
    assert rows_table([]) == "<p>(no rows)</p>"


# ---------------------------------------------------------------- I: metrics callback

ROWS = [
    {"step": 0, "val_loss": 3.0, "elapsed_s": 0.1},
    {"step": 1, "loss": 2.5, "lr": 1e-3, "grad_norm": 0.5},
    {"step": 2, "loss": 2.25, "lr": 1e-3, "grad_norm": 0.4},
    {"step": 2, "val_loss": 2.75, "elapsed_s": 0.9},
]


def test_a_faithful_history_equals_the_logged_rows():
    table = compare_history(logged_history(ROWS), ROWS)
    assert {row["metric"] for row in table} == {"val_loss", "elapsed_s", "loss", "lr", "grad_norm"}
    assert all(row["equal"] and row["max_abs_diff"] == 0.0 for row in table)


def test_two_values_at_one_step_are_compared_in_order():
    rows = [{"step": 1, "elapsed_s": 1.0}, {"step": 1, "elapsed_s": 3.5}]
    (row,) = compare_history(logged_history(rows), rows)
    assert row["equal"] and row["max_abs_diff"] == 0.0
    (row,) = compare_history({"elapsed_s": [(1, 1.0), (1, 3.0)]}, rows)
    assert not row["equal"] and row["max_abs_diff"] == 0.5


def test_a_recorder_that_drops_evaluations_is_caught():
    history = logged_history([row for row in ROWS if "loss" in row])
    table = {row["metric"]: row for row in compare_history(history, ROWS)}
    assert not table["val_loss"]["equal"] and table["val_loss"]["yours"] == 0
    assert math.isnan(table["val_loss"]["max_abs_diff"]) and table["loss"]["equal"]


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20), st.integers(0, 19))
def test_one_changed_value_is_found_with_its_size(values, where):
    rows = [{"step": i + 1, "loss": v} for i, v in enumerate(values)]
    history = logged_history(rows)
    where %= len(values)
    history["loss"][where] = (where + 1, values[where] + 1.0)
    (row,) = compare_history(history, rows)
    assert not row["equal"] and row["max_abs_diff"] == pytest.approx(1.0, rel=1e-6, abs=1e-3)


def test_history_figure_draws_markers_on_lines():
    figure = history_figure(logged_history(ROWS), ROWS)
    labels = [line.get_label() for line in figure.axes[0].lines]
    assert labels == ["loss (metrics.jsonl)", "loss (yours)", "val_loss (metrics.jsonl)",
                      "val_loss (yours)"]  # fmt: skip


# ---------------------------------------------------------------- J: kill and resume


def test_resume_result_compares_the_resumed_steps_only():
    result = ResumeResult(
        straight=[3.0, 2.0, 1.0], before_kill=[3.0, 2.0], after_resume=[1.5],
        killed_after=2, resumed_from=2, exit_status=130, message="",
    )  # fmt: skip
    assert not result.equal and result.max_abs_diff == 0.5
    assert [row["resumed run"] for row in result.table()] == [None, None, 1.5]


def save_state(model, optimizer, scheduler, step, rng):
    """A correct save (as a learner would write it)."""
    return {
        "trainable": {
            n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad
        },
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": step,
        "data_rng": rng.get_state(),
        "torch_rng": torch.get_rng_state(),
    }


def restore_state(state, model, optimizer, scheduler, rng):
    """A correct restore."""
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["trainable"].items():
            parameters[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng.set_state(state["data_rng"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"])


def restore_without_rng(state, model, optimizer, scheduler, rng):
    """Forgets torch's global RNG: the resumed dropout masks differ."""
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["trainable"].items():
            parameters[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng.set_state(state["data_rng"])
    return int(state["step"])


def restore_that_raises(state, model, optimizer, scheduler, rng):
    """Fails in the child; the parent must say so."""
    raise KeyError("data_rng")


@pytest.mark.heavy
@pytest.mark.slow
def test_a_correct_resume_after_sigterm_equals_the_uninterrupted_run(tmp_path):
    result = kill_and_resume(
        save_state, restore_state, tmp_path, spec=bonus_spec(steps=4), kill_after=2
    )
    assert result.exit_status == -15 and result.resumed_from == 2  # killed by SIGTERM
    assert len(result.straight) == 4 and len(result.after_resume) == 2
    assert result.before_kill == result.straight[:2] and result.equal


@pytest.mark.heavy  # 16 s; J's wrong answers are checked in tests/exercises/test_checks.py
def test_a_resume_that_forgets_the_global_rng_is_caught(tmp_path):
    result = kill_and_resume(
        save_state, restore_without_rng, tmp_path, spec=bonus_spec(steps=3), kill_after=1
    )
    assert not result.equal and result.max_abs_diff > 0


@pytest.mark.heavy  # 16 s; J's wrong answers are checked in tests/exercises/test_checks.py
def test_a_failing_restore_is_reported_with_its_error(tmp_path):
    with pytest.raises(CoursekitError, match=r"resumed run failed.*KeyError: 'data_rng'"):
        kill_and_resume(
            save_state, restore_that_raises, tmp_path, spec=bonus_spec(steps=2), kill_after=1
        )


def test_kill_after_must_leave_steps_to_resume(tmp_path):
    with pytest.raises(CoursekitError, match=r"kill_after must be in 1\.\.3"):
        kill_and_resume(save_state, restore_state, tmp_path, spec=bonus_spec(steps=4), kill_after=4)


# ---------------------------------------------------------------- K: the learner's crate


def test_crate_with_module_adds_the_module_and_refuses_bad_names(tmp_path):
    crate = crate_with_module(tmp_path / "c", "pub fn one() -> u8 { 1 }", name="extra")
    assert (crate / "src" / "extra.rs").is_file()
    assert (crate / "src" / "lib.rs").read_text().endswith("pub mod extra;\n")
    assert (sample_crate() / "src" / "lib.rs").read_text().count("pub mod") == 1  # untouched
    with pytest.raises(CoursekitError, match="snake_case"):
        crate_with_module(tmp_path / "d", "", name="Bad-Name")
    with pytest.raises(CoursekitError, match="exists"):
        crate_with_module(tmp_path / "c", "")
    with pytest.raises(CoursekitError, match="choose another module name"):
        crate_with_module(tmp_path / "e", "", name="text")


def test_build_command_puts_every_pair_in_train():
    command = build_command(Path("c"), Path("o"), Path("cache"))
    assert command[-2:] == ["--cache", "cache"]
    for flag in ("--val-verified", "--test-verified", "--val-fraction", "--test-fraction"):
        assert command[command.index(flag) + 1] == "0"


MINE = """
/// Doubles a number.
pub fn double(x: i32) -> i32 {
    x * 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_doubles() {
        assert_eq!(double(21), 42);
    }
}
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("rustc") is None, reason="needs rustc (rustup.rs)")
def test_the_sample_crate_and_a_learner_module_become_verified_pairs(tmp_path):
    crate = crate_with_module(tmp_path / "crate", MINE)
    rows = build_crate_corpus(crate, tmp_path / "corpus", cache=tmp_path / "cache")
    ids = {row["id"]: row["verified"] for row in rows}
    assert ids == {
        "sample-crate/src/lib.rs::gcd": True,
        "sample-crate/src/lib.rs::clamp_percent": True,
        "sample-crate/src/lib.rs::mean": True,
        "sample-crate/src/text.rs::is_palindrome": True,
        "sample-crate/src/text.rs::run_lengths": True,
        "sample-crate/src/mine.rs::double": True,
    }
    splits = load_splits(with_validation(tmp_path / "corpus"))
    assert len(splits["train"]) == 6 and splits["val"] == load_splits(seed_dir())["val"]


@pytest.mark.slow
def test_a_failing_build_names_the_problem(tmp_path):
    with pytest.raises(CoursekitError, match="corpus build failed"):
        build_crate_corpus(tmp_path / "missing", tmp_path / "out", cache=tmp_path / "cache")


# ---------------------------------------------------------------- L: benchmarks


def test_bench_command_and_rows():
    command = bench_command(Path("b"), model="nano", engines=["coursekit", "hf"],
                            methods=["lora", "dora"], steps=2)  # fmt: skip
    assert command[command.index("--engines") + 1] == "coursekit,hf"
    assert command[command.index("--methods") + 1] == "lora,dora"
    runs = [
        {"tokens_per_s": t, "step_seconds": 1 / t, "peak_rss_bytes": 2**20, "val_loss": 2.0}
        for t in (10.0, 30.0, 20.0)
    ]
    bench = {"methods": {"lora": {"runs": {"coursekit": runs}}}}
    (row,) = bench_rows(bench)
    assert (row["tokens/s"], row["repeats"], row["peak RSS MiB"]) == (20.0, 3, 1.0)


def test_rows_are_medians_whatever_the_order():
    values = [random.Random(seed).uniform(1, 100) for seed in range(5)]
    runs = [{"tokens_per_s": v, "step_seconds": v, "peak_rss_bytes": v, "val_loss": v}
            for v in values]  # fmt: skip
    (row,) = bench_rows({"methods": {"dora": {"runs": {"hf": runs}}}})
    assert row["tokens/s"] == sorted(values)[2]
