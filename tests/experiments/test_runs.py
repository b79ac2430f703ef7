"""Final losses from run folders' summary.json, and the errors of unfinished runs."""

from __future__ import annotations

import json

import pytest

from coursekit.experiments import losses_from_runs, rank_does_not_decrease_quality
from coursekit.experiments.falsify import EvidenceError


def finished(folder, **summary):
    folder.mkdir(parents=True)
    data = {"steps": 100, "target_tokens": 12800, "val_loss": 2.0} | summary
    (folder / "summary.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


def test_losses_are_read_per_rank_in_the_order_of_the_runs(tmp_path):
    runs = {
        4: [
            finished(tmp_path / "r4-s0", val_loss=2.31),
            finished(tmp_path / "r4-s1", val_loss=2.29),
        ],
        8: str(finished(tmp_path / "r8-s0", val_loss=2.27)),
    }
    losses = losses_from_runs(runs)
    assert losses == {4: [2.31, 2.29], 8: [2.27]}
    assert rank_does_not_decrease_quality(losses).holds
    assert losses_from_runs({4: [tmp_path / "r4-s0"]}, key="target_tokens") == {4: [12800.0]}


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (None, "cannot read the run's summary"),
        ("{not json", "not valid JSON"),
        ('{"steps": 100, "val_loss": null}', "has no 'val_loss'; train with a validation split"),
        ("[1, 2]", "has no 'val_loss'"),
        ('{"val_loss": "low"}', "val_loss must be a finite number (got 'low': str)"),
        ('{"val_loss": NaN}', "val_loss must be a finite number (got nan)"),
    ],
)
def test_an_unfinished_or_odd_run_is_named_with_its_file(tmp_path, content, named):
    folder = tmp_path / "r8-s1"
    folder.mkdir()
    if content is not None:
        (folder / "summary.json").write_text(content, encoding="utf-8")
    with pytest.raises(EvidenceError) as raised:
        losses_from_runs({8: [folder]})
    message = str(raised.value)
    assert str(folder / "summary.json") in message
    assert named in message and "\n" not in message


def test_runs_must_be_a_mapping_of_ranks():
    with pytest.raises(EvidenceError, match="mapping of rank"):
        losses_from_runs(["runs/r4-s0"])  # type: ignore[arg-type]
