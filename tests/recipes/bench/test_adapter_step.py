"""The adapter step benchmark's logic on a micro Qwen2 (no timing assertions)."""

from __future__ import annotations

import pytest
import torch

from coursekit.recipes.bench import adapter_step
from coursekit.recipes.bench.adapter_step import (
    RATIOS,
    build_variants,
    format_report,
    paired_ratio,
    time_round_robin,
)

MICRO = {"hidden": 32, "layers": 1, "intermediate": 64, "vocab": 128, "rank": 2}


def test_variants_share_one_base_and_start_as_it():
    variants = build_variants(**MICRO)
    assert list(variants) == ["coursekit lora", "peft lora", "coursekit dora", "peft dora"]
    ids = torch.randint(0, 128, (2, 8), generator=torch.Generator().manual_seed(0))
    losses = [model(ids, labels=ids).loss for model in variants.values()]
    assert all(model.training for model in variants.values())
    for loss in losses[1:]:  # B = 0 at initialisation: every variant computes the base model
        torch.testing.assert_close(loss, losses[0])


def test_round_robin_rotates_the_order_and_drops_warmup():
    calls: list[str] = []

    def step(label: str, seconds: float):
        def run() -> float:
            calls.append(label)
            return seconds

        return run

    times = time_round_robin({"a": step("a", 1.0), "b": step("b", 2.0), "c": step("c", 4.0)},
                             rounds=2, warmup=1)  # fmt: skip
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert times == {"a": [1.0, 1.0], "b": [2.0, 2.0], "c": [4.0, 4.0]}


def test_measure_times_every_variant_for_each_round():
    times = adapter_step.measure(**MICRO, batch=1, seq=8, steps=2, warmup=1)
    assert set(times) == {"coursekit lora", "peft lora", "coursekit dora", "peft dora"}
    assert all(len(values) == 2 and min(values) > 0 for values in times.values())


def test_ratios_are_medians_of_per_round_ratios_and_the_table_shows_them():
    times = {"coursekit lora": [1.0, 2.0, 9.0], "peft lora": [1.0, 1.0, 1.0],
             "coursekit dora": [1.2, 2.6, 9.0], "peft dora": [2.0, 2.0, 2.0]}  # fmt: skip
    assert paired_ratio(times, "coursekit lora", "peft lora") == 2.0
    assert paired_ratio(times, "coursekit dora", "coursekit lora") == pytest.approx(1.2)
    report = format_report(times).splitlines()
    assert report[0].split() == ["variant", "ms/step"]
    assert report[1].split()[-1] == "2000.0"  # median of coursekit lora, in ms
    assert report[5:7] == ["", f"{'ratio':<34}{'value':>8}{'goal':>8}"]
    assert [line[:34].strip() for line in report[7:]] == [name for name, *_ in RATIOS]
    assert report[7].split()[-3:] == ["2.00", "<=", "1.0"]
    assert report[8].split()[-3:] == ["1.20", "<=", "1.3"]
