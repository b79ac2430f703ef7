"""The ``lr_find`` recipe: a short sweep on the tiny model writes every suggestion and a plot."""

from __future__ import annotations

import json

from coursekit.data.corpus import seed_dir
from coursekit.recipes.lr_find import lr_find, vars_of
from coursekit.train import SUGGESTERS, LRFinderResult, RunSpec, TrainConfig


def test_sweep_writes_suggestions_within_the_range_and_a_plot(tmp_path):
    spec = RunSpec(model="tiny", data=str(seed_dir()),
                   train=TrainConfig(micro_batch_size=1, seq_len=256))  # fmt: skip
    result, suggestions = lr_find(spec, tmp_path / "lr", num_steps=4, start_lr=1e-5, end_lr=1.0)
    assert set(suggestions) == set(SUGGESTERS)
    assert all(1e-5 <= lr <= 1.0 for lr in suggestions.values())
    saved = json.loads((tmp_path / "lr" / "lr_find.json").read_text())
    assert saved == {"suggestions": suggestions, **vars_of(result)}
    assert 1 <= len(saved["lrs"]) <= 4 and saved["lrs"][0] == 1e-5
    assert (tmp_path / "lr" / "lr_find.png").read_bytes()[1:4] == b"PNG"


def test_vars_of_gives_json_ready_lists():
    result = LRFinderResult(lrs=(1e-3, 1e-2), losses=(2.0, 1.5), raw_losses=(2.0, 1.4),
                            stopped_early=True)  # fmt: skip
    assert vars_of(result) == {"lrs": [1e-3, 1e-2], "losses": [2.0, 1.5],
                               "raw_losses": [2.0, 1.4], "stopped_early": True}  # fmt: skip
