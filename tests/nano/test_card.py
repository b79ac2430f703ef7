"""The model card's loss table."""

from __future__ import annotations

from coursekit.nano.card import loss_table


def test_loss_table_means_between_marks() -> None:
    rows = [{"step": s, "loss": float(s)} for s in range(1, 5)]
    assert loss_table(rows, points=2) == [(2, 1.5, None), (4, 3.5, None)]
    evaluated = [{"step": 0, "val_loss": 9.5}, *rows, {"step": 4, "val_loss": 9.0}]
    assert loss_table(evaluated, points=2) == [(4, 2.5, 9.0)]
    assert loss_table([], points=3) == []
