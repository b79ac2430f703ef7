"""The eval recipe on the seed set: reference tests pass, resume keeps rows, bad specs refused."""

from __future__ import annotations

import dataclasses
import json

import pytest

from coursekit.data.corpus import seed_dir
from coursekit.errors import CoursekitError
from coursekit.evaluate.coverage import find_tools
from coursekit.evaluate.funnel import Verdict
from coursekit.evaluate.generate import Decoding
from coursekit.recipes.evaluate import EvalSpec, compare, functions, run_eval, summarise

MUTANT_KEYS = ("caught", "missed", "unviable", "timeout")


def spec(**changes) -> EvalSpec:
    return EvalSpec(**({"data": str(seed_dir()), "limit": 2, "mutants": 4} | changes))


@pytest.mark.slow
def test_reference_tests_reach_every_stage_and_resume_keeps_rows(rustc, tmp_path):
    seen = []
    summary = run_eval(spec(), tmp_path, reference=True, on_sample=lambda d, t: seen.append(d))
    assert summary["funnel"]["stable"]["passed"] == 2 and summary["answers"] == 2
    assert summary["mutation_score"] == 1.0 and seen == [1, 2]
    measured = [json.loads(line)["coverage"] for line in (tmp_path / "samples.jsonl").open()]
    if find_tools().available:  # the references run every line of most functions
        assert all(0.0 < c <= 1.0 for c in measured)
        assert summary["coverage"] == {"mean": sum(measured) / 2, "measured": 2}
    else:
        assert measured == [None, None]
        assert summary["coverage"] == {"mean": None, "measured": 0}
    assert (tmp_path / "funnel.png").stat().st_size > 0
    log = tmp_path / "samples.jsonl"
    first = log.read_text().splitlines()
    log.write_text(first[0] + "\n" + first[1][:20])  # a crash mid-line
    again = run_eval(spec(), tmp_path, reference=True)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["id"] for r in rows] == [json.loads(line)["id"] for line in first]
    assert again["funnel"] == summary["funnel"]


def test_generated_answers_are_judged_from_the_text_alone(rustc, tmp_path):
    summary = run_eval(spec(limit=1, decoding=Decoding(max_new_tokens=8)), tmp_path)
    (row,) = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert set(row["stages"]) >= {"parses", "passes"} and summary["answers"] == 1
    assert summary["funnel"]["well_formed"]["total"] == 1


def test_coverage_is_averaged_over_measured_rows_and_old_rows_have_none():
    def row(sample_id: str, **extra) -> dict:
        verdict = Verdict(sample_id=sample_id)
        counts = dict.fromkeys(MUTANT_KEYS, 0)
        fields = {**dataclasses.asdict(verdict), "stages": verdict.stages(), "mutants": counts}
        return {**fields, "id": sample_id, **extra}

    rows = [[row("a", coverage=0.5)], [row("b", coverage=None)], [row("c", coverage=1.0)]]
    assert summarise(spec(), rows, True)["coverage"] == {"mean": 0.75, "measured": 2}
    old = [[row("a")]]  # written before coverage existed
    assert summarise(spec(), old, True)["coverage"] == {"mean": None, "measured": 0}


def test_other_settings_in_the_same_folder_are_refused(rustc, tmp_path):
    run_eval(spec(limit=1, mutants=0), tmp_path, reference=True)
    with pytest.raises(CoursekitError, match="holds an evaluation with other settings"):
        run_eval(spec(limit=1, mutants=1), tmp_path, reference=True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"split": "dev"}, "EvalSpec.split must be one of"),
        ({"limit": -1}, "EvalSpec.limit must be >= 0"),
        ({"runs": 0}, "EvalSpec.runs must be >= 1"),
        ({"mutants": 1.5}, "EvalSpec.mutants must be a whole number"),
    ],
)
def test_bad_specs_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        EvalSpec(**changes)


def test_a_split_without_verified_functions_is_one_error(tmp_path):
    (tmp_path / "test.jsonl").write_text("")
    for name in ("train", "val"):
        (tmp_path / f"{name}.jsonl").write_text("")
    with pytest.raises(CoursekitError, match="holds no verified function"):
        functions(EvalSpec(data=str(tmp_path)))


@pytest.mark.slow
def test_compare_evaluates_three_side_by_side_afresh(rustc, tmp_path):
    from coursekit.adapters import AdapterConfig, apply, save_adapter
    from coursekit.loading import load_model

    adapter = save_adapter(apply(load_model("nano"), AdapterConfig(rank=2)), tmp_path / "adapter")
    kwargs = {
        "data": str(seed_dir()),
        "limit": 1,
        "mutants": 1,
        "decoding": Decoding(max_new_tokens=8),
    }
    summaries = compare("nano", adapter, tmp_path / "eval", **kwargs)
    assert list(summaries) == ["reference tests", "base model", "fine-tuned"]
    assert summaries["reference tests"]["funnel"]["stable"]["passed"] == 1
    stale = tmp_path / "eval" / "base" / "samples.jsonl"
    stale.write_text('{"id": "stale"}\n')
    compare("nano", adapter, tmp_path / "eval", **kwargs)
    assert "stale" not in stale.read_text()
