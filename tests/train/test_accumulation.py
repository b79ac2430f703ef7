"""Gradient accumulation (enhancement D): k micro-batches ≡ one batch, as a hypothesis property.

Claim: with variable-length samples, micro-batch 16 × accumulation 1, 4 × 4 and 1 × 16 give
the same gradients and the same reported loss, because the summed loss is divided by the
target tokens of the whole step. Checked in fp32 with SGD at lr = 1 and no clipping, so the
update θ − θ' is exactly the gradient. Tolerance 1e-6 absolute on parameters of size ~0.1
and 1e-6 relative on the loss: only the summation order of fp32 matmuls and of the loss sums
(~1,000 nats) differs between the layouts (observed ≤ 2e-7 relative).
A mean of micro-batch means would miss it by ~1e-2 (the last test shows the difference is
real, so the property could fail).
"""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.data.batching import collate, target_count
from coursekit.train.config import TrainConfig
from coursekit.train.loop import Trainer
from coursekit.train.loss import TargetLoss
from tests.train import _resume_worker as worker

examples, tiny_model = worker.examples, worker.tiny_model
LAYOUTS = ((16, 1), (4, 4), (1, 16))


@pytest.fixture(scope="module")
def base_model() -> torch.nn.Module:
    return tiny_model(dropout=0.0)


def one_step(model, data, micro: int, accumulation: int, packing: bool):
    config = TrainConfig(
        max_steps=1, micro_batch_size=micro, gradient_accumulation=accumulation,
        learning_rate=1.0, schedule="constant", max_grad_norm=0.0, optimizer="sgd",
        seq_len=48, packing=packing, eval_every=0,
    )  # fmt: skip
    model = copy.deepcopy(model)
    trainer = Trainer(model, data, [], config, pad_id=0)
    row = trainer.train_step()
    params = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    return row["loss"], params


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), packing=st.booleans())
def test_micro_batch_layouts_give_the_same_update_and_loss(base_model, seed, packing) -> None:
    data = examples(64 if packing else 16, seed=seed, longest=24)
    results = [one_step(base_model, data, m, k, packing) for m, k in LAYOUTS]
    loss_0, params_0 = results[0]
    for loss, params in results[1:]:
        assert loss == pytest.approx(loss_0, rel=1e-6)
        for name, value in params.items():
            torch.testing.assert_close(value, params_0[name], atol=1e-6, rtol=0)


def test_mean_of_means_would_differ(base_model) -> None:
    """The falsifier: averaging per-micro-batch means is measurably different here."""
    data = examples(16, seed=3)
    loss = TargetLoss(base_model)
    with torch.no_grad():
        sums = [loss(**collate([[e] for e in data[i : i + 4]], 0)).item() for i in range(0, 16, 4)]
        counts = [sum(target_count([e]) for e in data[i : i + 4]) for i in range(0, 16, 4)]
    token_mean = sum(sums) / sum(counts)
    mean_of_means = sum(s / c for s, c in zip(sums, counts, strict=True)) / 4
    assert abs(token_mean - mean_of_means) > 1e-4
    assert one_step(base_model, data, 4, 4, False)[0] == pytest.approx(token_mean, abs=1e-5)
