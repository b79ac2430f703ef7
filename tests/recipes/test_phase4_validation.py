"""Phase 4's recipe on the tiny model: both claims judged for real, before/after measured."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

from coursekit.data.corpus import seed_dir
from coursekit.experiments.falsify import falsify
from coursekit.recipes.ablate import AblationResult
from coursekit.recipes.memory_validate import FAST_GRID
from coursekit.recipes.phase1_baseline import baseline_spec
from coursekit.recipes.phase4_validation import (
    Comparison,
    before_after,
    enhancement_check,
    key_metrics_figure,
    losses_by_rank,
    memory_claim,
    rank_claim,
    results_markdown,
)

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def claim(tmp_path_factory) -> tuple:
    out = tmp_path_factory.mktemp("rank-claim")
    lines: list[str] = []
    verdict, result = rank_claim(out, model="tiny", data=str(seed_dir()), max_train_examples=8,
                                 max_val_examples=4, ranks=(2, 4), seeds=(0, 1), steps=2,
                                 log=lines.append)  # fmt: skip
    return out, verdict, result, lines


def test_rank_claim_judges_the_grids_own_losses(claim) -> None:
    out, verdict, result, lines = claim
    losses = losses_by_rank(result)
    assert sorted(losses) == [2, 4] and all(len(v) == 2 for v in losses.values())
    row = verdict.evidence[0]
    assert (row["rank_from"], row["rank_to"]) == (2, 4)
    assert row["mean_from"] == pytest.approx(sum(losses[2]) / 2)
    assert row["mean_to"] == pytest.approx(sum(losses[4]) / 2)
    # the verdict follows its rule on these numbers, whichever way it went
    assert verdict.holds == (row["excess"] <= row["bound"])
    assert (out / "ablation.yaml").is_file() and len(lines) == 4


def test_an_existing_grid_is_judged_without_training_again(claim) -> None:
    out, verdict, _, _ = claim
    lines: list[str] = []
    again, _ = rank_claim(out, model="nano", ranks=(64,), steps=99, log=lines.append)
    assert again.evidence == verdict.evidence
    assert all("kept" in line or "done" in line for line in lines), lines


def test_a_grid_without_ranks_is_refused() -> None:
    cells = ({"setting": {"train.learning_rate": 0.1}, "metrics": {"val_loss": 2.0}},)
    with pytest.raises(ValueError, match=r"not adapter\.rank"):
        losses_by_rank(AblationResult(cells=cells, groups=(), files={}))


def test_memory_claim_measures_and_judges_a_configuration() -> None:
    verdict = memory_claim(FAST_GRID[:1])
    (row,) = verdict.evidence
    assert row["measured_bytes"] > 0 and row["estimated_bytes"] > 0
    ratio = row["estimated_bytes"] / row["measured_bytes"]
    assert verdict.holds == (1.0 <= ratio <= 1.2)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory) -> Comparison:
    spec = baseline_spec(model="tiny", data=str(seed_dir()), steps=2, eval_every=2, seq_len=256)
    out = tmp_path_factory.mktemp("before-after")
    return before_after({"method": "dora"}, out, spec=spec, max_train_examples=8,
                        max_val_examples=4, device="cpu")  # fmt: skip


def test_before_after_trains_both_runs_with_only_the_change(comparison: Comparison) -> None:
    before, after = comparison.run_dirs
    assert before != after and (before / "config.yaml").is_file()
    assert "method: lora" in (before / "config.yaml").read_text()
    assert "method: dora" in (after / "config.yaml").read_text()
    # DoRA adds a magnitude vector per adapted output: strictly more trainable parameters
    assert comparison.after["trainable_parameters"] > comparison.before["trainable_parameters"]
    rows = {r["metric"]: r for r in comparison.rows()}
    assert rows["trainable parameters"]["better"] == "before"
    assert rows["validation loss (nats/token)"]["before"] == comparison.before["val_loss_end"]


def test_the_figure_and_the_markdown_quote_the_measured_numbers(comparison, claim) -> None:
    _, verdict, _, _ = claim
    figure = key_metrics_figure(comparison, verdict)
    assert len(figure.axes) == 2
    text = results_markdown(comparison, [verdict])
    assert f"{comparison.before['val_loss_end']:.4g}" in text
    assert verdict.status in text and "method = dora" in text


def test_rows_handle_an_unchanged_metric_and_a_zero_baseline() -> None:
    comparison = Comparison(changes={"x": 1}, before={"val_loss_end": 2.0, "eval_parses": 0.0},
                            after={"val_loss_end": 2.0, "eval_parses": 0.25})  # fmt: skip
    rows = {r["metric"]: r for r in comparison.rows()}
    assert rows["validation loss (nats/token)"]["better"] == "equal"
    assert rows["tests: parses"]["after/before"] is None
    assert rows["tests: parses"]["better"] == "after"
    assert "| – |" in comparison._repr_markdown_()
    assert "NOT FALSIFIED" in results_markdown(comparison, [falsify("x", 1.0, 2.0)])


def test_enhancement_check_counts_prose_and_names_what_is_missing(tmp_path: Path) -> None:
    from coursekit.workspace.report import SECTIONS

    path = tmp_path / "ENHANCEMENT.md"
    path.write_text("## Summary\n\nShort.\n")
    short = enhancement_check(path)
    assert short["exists"] and short["words"] == 2 and not short["in_bounds"]  # heading + 1
    assert short["problems"][0] == "2 words; the course asks for 500-1000"
    body = " ".join(["word"] * 70) + " 1.5\n\n```python\nx = 1\n```\n"
    path.write_text("".join(f"## {s.title}\n\n{body}\n" for s in SECTIONS))
    full = enhancement_check(path)
    assert full["in_bounds"] and full["problems"] == [], full
    assert not enhancement_check(tmp_path / "none.md")["exists"]
