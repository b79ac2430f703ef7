"""The loop: evaluation, clipping, epochs, curriculum, callbacks and bad input."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from coursekit.train.callbacks import BaseCallback
from coursekit.train.config import TrainConfig
from coursekit.train.loop import Trainer, make_accelerator
from tests.train import _resume_worker as worker


class Rows(BaseCallback):
    def __init__(self) -> None:
        self.steps, self.evals, self.summary = [], [], None

    def on_step(self, row):
        self.steps.append(row)

    def on_eval(self, row):
        self.evals.append(row)

    def on_end(self, summary):
        self.summary = summary


def config(**changes) -> TrainConfig:
    base = dict(max_steps=4, micro_batch_size=2, seq_len=32, eval_every=2, learning_rate=1e-2)
    return TrainConfig(**(base | changes))


def test_fit_reports_steps_evaluations_and_summary() -> None:
    rows = Rows()
    trainer = Trainer(
        worker.tiny_model(), worker.examples(20), worker.examples(5, seed=1), config(),
        pad_id=0, callbacks=[rows],
    )  # fmt: skip
    summary = trainer.fit()
    assert [r["step"] for r in rows.steps] == [1, 2, 3, 4]
    assert [r["step"] for r in rows.evals] == [0, 2, 4]
    assert set(rows.steps[0]) == {
        "step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s", "memory_bytes",
    }  # fmt: skip
    assert rows.summary == summary and summary["steps"] == 4
    assert summary["val_loss"] == rows.evals[-1]["val_loss"]
    assert all(math.isfinite(r["loss"]) for r in rows.steps)
    assert summary["target_tokens"] > 0 and summary["trainable_parameters"] == 4096


def test_training_lowers_the_loss_on_repeated_data() -> None:
    data = worker.examples(4)
    trainer = Trainer(
        worker.tiny_model(dropout=0.0), data, data,
        config(max_steps=15, learning_rate=5e-2, eval_every=0, schedule="constant"), pad_id=0,
    )  # fmt: skip
    before = trainer.evaluate()
    trainer.fit()
    assert trainer.last_val_loss < before - 0.05


def test_gradients_are_really_clipped() -> None:
    """With SGD at lr = 1, the update's norm is the clipped gradient's norm (≤ 1e-3)."""
    model = worker.tiny_model(dropout=0.0)
    params = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer = Trainer(
        model, worker.examples(8), [],
        config(max_steps=1, optimizer="sgd", learning_rate=1.0, max_grad_norm=1e-3,
               schedule="constant"),
        pad_id=0,
    )  # fmt: skip
    row = trainer.train_step()
    moved = [(p.detach() - params[n]).flatten() for n, p in model.named_parameters() if n in params]
    update_norm = torch.cat(moved).norm().item()
    assert row["grad_norm"] > 1e-3
    assert update_norm == pytest.approx(1e-3, rel=1e-3)


def test_epochs_set_the_number_of_steps() -> None:
    data = worker.examples(10)
    trainer = Trainer(
        worker.tiny_model(), data, [],
        config(max_steps=None, epochs=2.0, packing=False, micro_batch_size=4), pad_id=0,
    )  # fmt: skip
    assert trainer.total_steps == 5  # ⌈2 · 10 / 4⌉
    assert trainer.fit()["steps"] == 5
    assert trainer.sampler.epoch == 1 and trainer.sampler.position == 10  # 20 rows taken


def test_a_curriculum_draws_easy_examples_first() -> None:
    data = worker.examples(12)
    difficulties = [float(i) for i in range(12)]
    trainer = Trainer(
        worker.tiny_model(), data, [], config(curriculum="linear", packing=False), pad_id=0,
        difficulties=difficulties,
    )  # fmt: skip
    first = trainer.sampler.take(2)
    easiest = {e.sample_id for e in data[:3]}  # c₀ = 0.2 of 12 → the 3 easiest
    assert {row[0].sample_id for row in first} <= easiest
    trainer.sampler.position = 0
    assert trainer.fit()["steps"] == 4


@pytest.mark.parametrize(
    ("changes", "difficulties", "match"),
    [
        ({"curriculum": "root"}, [1.0] * 12, "packing=False"),
        ({"curriculum": "root", "packing": False}, None, "one difficulty"),
        ({"curriculum": "step", "packing": False}, [1.0], "difficulties for 12"),
    ],
)
def test_curriculum_needs_unpacked_rows_and_scores(changes, difficulties, match) -> None:
    with pytest.raises(ValueError, match=match):
        Trainer(worker.tiny_model(), worker.examples(12), [], config(**changes), pad_id=0,
                difficulties=difficulties)  # fmt: skip


def test_a_frozen_model_is_rejected() -> None:
    model = worker.tiny_model(adapter=False).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameter"):
        Trainer(model, worker.examples(4), [], config(), pad_id=0)


def test_full_fine_tune_with_gradient_checkpointing_matches_without() -> None:
    """Recomputing activations changes memory, not the result (tolerance 1e-6, fp32)."""
    results = []
    for checkpointing in (False, True):
        model = worker.tiny_model(adapter=False)
        trainer = Trainer(
            model, worker.examples(8), [],
            config(max_steps=2, gradient_checkpointing=checkpointing, optimizer="sgd"),
            pad_id=0,
        )  # fmt: skip
        trainer.fit()
        results.append(copy.deepcopy(model.state_dict()))
    for name, value in results[0].items():
        torch.testing.assert_close(results[1][name], value, atol=1e-6, rtol=0)


def test_an_empty_training_split_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one training example"):
        Trainer(worker.tiny_model(), [], [], config(), pad_id=0)


def test_make_accelerator_uses_the_cpu_without_cuda() -> None:
    accelerator = make_accelerator(config(), cpu=True)
    assert accelerator.device.type == "cpu" and accelerator.num_processes == 1


def test_bf16_autocast_trains_and_precision_can_change_in_one_process() -> None:
    trainer = Trainer(
        worker.tiny_model(), worker.examples(8), [], config(max_steps=1, precision="bf16"),
        pad_id=0,
    )  # fmt: skip
    assert trainer.accelerator.mixed_precision == "bf16"
    assert math.isfinite(trainer.fit()["target_tokens"])
    assert make_accelerator(config()).mixed_precision == "no"


def trainable(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("poison", ["loss", "gradient"])
def test_a_non_finite_step_stops_the_run_without_an_update(poison) -> None:
    from coursekit.train.failures import NonFiniteError

    trainer = Trainer(worker.tiny_model(), worker.examples(20), [], config(), pad_id=0)
    trainer.train_step()
    if poison == "loss":  # an infinite LoRA A (B is 0): 0 · inf makes the loss NaN
        with torch.no_grad():
            trainer.params[0].fill_(math.inf)
    else:  # a NaN gradient while the loss is finite
        trainer.params[0].register_hook(lambda grad: torch.full_like(grad, math.nan))
    before = trainable(trainer)
    with pytest.raises(NonFiniteError, match=f"step 2: the training {poison}") as caught:
        trainer.train_step()
    assert "\n" not in str(caught.value) and "--on-nonfinite skip" in str(caught.value)
    after = trainable(trainer)
    for name in before:  # no update (NaN-aware comparison)
        assert torch.equal(after[name].nan_to_num(), before[name].nan_to_num()), name
    assert trainer.step == 1


def test_on_nonfinite_skip_skips_and_counts() -> None:
    rows = Rows()
    trainer = Trainer(worker.tiny_model(), worker.examples(20), [],
                      config(on_nonfinite="skip"), pad_id=0, callbacks=[rows])  # fmt: skip
    calls = {"n": 0}

    def nan_on_second_step(grad: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return torch.full_like(grad, math.nan) if calls["n"] == 2 else grad

    trainer.params[0].register_hook(nan_on_second_step)
    before = {}

    class Snapshot(BaseCallback):
        def on_step(self, row):
            before[row["step"]] = trainable(trainer)

    trainer.callbacks.callbacks += (Snapshot(),)
    summary = trainer.fit()
    assert [r["skipped_steps"] for r in rows.steps] == [0, 1, 1, 1]
    assert "loss" not in rows.steps[1] and "grad_norm" not in rows.steps[1]
    assert all("loss" in r for i, r in enumerate(rows.steps) if i != 1)
    assert all(torch.equal(before[1][n], before[2][n]) for n in before[1])  # step 2: no update
    assert summary["skipped_steps"] == 1 and summary["steps"] == 4


def test_a_model_that_arrives_in_eval_mode_trains_in_train_mode() -> None:
    """Loaders return eval mode; without evaluation first, dropout must still be on."""
    model = worker.tiny_model()  # LoRA dropout > 0
    model.eval()
    modes = []

    class Mode(BaseCallback):
        def on_step(self, row):
            modes.append(all(m.training for m in model.modules()))

    trainer = Trainer(model, worker.examples(8), [], config(max_steps=2, eval_every=0),
                      pad_id=0, callbacks=[Mode()])  # fmt: skip
    trainer.fit()
    assert modes == [True, True]
