"""Learning-rate schedules: shapes as hypothesis properties."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from coursekit.train.config import SCHEDULES, TrainConfig
from coursekit.train.schedule import build_scheduler, lr_factor

steps = st.integers(min_value=1, max_value=500)


@given(schedule=st.sampled_from(SCHEDULES), total=steps, warmup=st.integers(0, 50))
def test_factor_is_in_0_1_and_warmup_rises(schedule: str, total: int, warmup: int) -> None:
    factors = [lr_factor(t, schedule=schedule, warmup_steps=warmup, total_steps=total)
               for t in range(total + 1)]  # fmt: skip
    assert all(0.0 <= f <= 1.0 for f in factors)
    rising = factors[: min(warmup, total) + 1]
    assert all(a < b for a, b in itertools.pairwise(rising))


@given(schedule=st.sampled_from(["linear", "cosine"]), total=steps, warmup=st.integers(0, 50))
def test_decay_is_non_increasing_and_ends_at_zero(schedule: str, total: int, warmup: int) -> None:
    assume(warmup < total)
    after = [lr_factor(t, schedule=schedule, warmup_steps=warmup, total_steps=total)
             for t in range(warmup, max(total, warmup) + 1)]  # fmt: skip
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(after))
    assert after[0] == 1.0
    assert after[-1] == pytest.approx(0.0, abs=1e-12)


@given(total=steps, warmup=st.integers(0, 50), t=st.integers(0, 600))
def test_constant_is_one_after_warmup(total: int, warmup: int, t: int) -> None:
    factor = lr_factor(t, schedule="constant", warmup_steps=warmup, total_steps=total)
    assert factor == (1.0 if t >= warmup else (t + 1) / (warmup + 1))


def test_cosine_is_half_at_mid_decay() -> None:
    assert lr_factor(5, schedule="cosine", warmup_steps=0, total_steps=10) == pytest.approx(0.5)
    assert math.isclose(lr_factor(3, schedule="linear", warmup_steps=2, total_steps=6), 0.75)


def test_scheduler_drives_the_optimizer_lr() -> None:
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    config = TrainConfig(learning_rate=0.1, schedule="linear", warmup_steps=1)
    scheduler = build_scheduler(optimizer, config, total_steps=3)
    seen = []
    for _ in range(3):
        seen.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.05, 0.1, 0.05])
