from __future__ import annotations

from coursekit.display.plots import plot_losses


def test_plot_losses_draws_train_and_val():
    history = [{"step": 0, "val_loss": 3.0}, {"step": 1, "train_loss": 2.5}]
    history.append({"step": 2, "train_loss": 2.0, "val_loss": 2.2})
    axes = plot_losses(history).axes[0]
    labels = [line.get_label() for line in axes.lines]
    assert labels == ["train loss", "val loss"]
    assert list(axes.lines[1].get_xdata()) == [0, 2]
    assert plot_losses([]).axes[0].get_legend() is None
