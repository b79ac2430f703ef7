"""The pretrained-vs-random comparison's logic on tiny, one step each, and its table."""

from __future__ import annotations

from coursekit.data.corpus import seed_dir
from coursekit.recipes.bench.nano_vs_random import format_table, pretrained_vs_random
from coursekit.recipes.phase1_baseline import baseline_spec


def test_both_runs_share_data_and_budget(tmp_path, tiny_dir):
    spec = baseline_spec(model=str(tiny_dir), data=str(seed_dir()), steps=1, batch_size=1,
                         seq_len=256, eval_every=1)  # fmt: skip
    result = pretrained_vs_random(spec, tmp_path, max_train_examples=2, max_val_examples=2,
                                  device="cpu")  # fmt: skip
    assert set(result) == {"pretrained", "random"}
    pretrained, random = result["pretrained"], result["random"]
    assert pretrained["val_examples"] == random["val_examples"] <= 2
    assert pretrained["train_examples"] == random["train_examples"] <= 2
    assert all(run["val_loss_end"] > 0 for run in (pretrained, random))
    assert (tmp_path / "pretrained" / "train" / "adapter").is_dir()
    assert (tmp_path / "random" / "train" / "adapter").is_dir()


def test_table_shows_both_runs_and_the_gap():
    result = {
        "pretrained": {"val_loss_start": 2.5, "val_loss_end": 2.0, "train_seconds": 10.0},
        "random": {"val_loss_start": 9.0, "val_loss_end": 6.5, "train_seconds": 11.0},
    }
    lines = format_table(result).splitlines()
    assert lines[1].split() == ["pretrained", "2.500", "2.000", "10.0"]
    assert lines[2].split() == ["random", "9.000", "6.500", "11.0"]
    assert lines[3] == "random − pretrained, final validation loss: 4.500 nats"
