"""The multi-adapter benchmark's logic: batches, one round of each setup, the summary."""

from __future__ import annotations

import torch

from coursekit.recipes.bench.multi_adapter import (
    VOCAB,
    format_report,
    joint_step,
    random_batches,
    separate_step,
    time_rounds,
)


def test_batches_are_seeded_per_adapter():
    batches = random_batches(3, 2, 8)
    assert [b.shape for b in batches] == [torch.Size([2, 8])] * 3
    assert all(int(b.max()) < VOCAB for b in batches)
    assert all(torch.equal(a, b) for a, b in zip(batches, random_batches(3, 2, 8), strict=True))


def test_each_setup_trains_its_adapters_one_round():
    batches = random_batches(2, 1, 8)
    for make in (joint_step, separate_step):
        make(batches)()  # one round: forward, backward, AdamW step; raises on a shape error


def test_time_rounds_warms_up_once_and_times_each_round():
    calls = {"joint": 0, "separate": 0}

    def step(name):
        return lambda: calls.__setitem__(name, calls[name] + 1)

    seconds = time_rounds({"joint": step("joint"), "separate": step("separate")}, rounds=3)
    assert calls == {"joint": 4, "separate": 4}
    assert [len(v) for v in seconds.values()] == [3, 3]


def test_report_compares_the_best_rounds():
    report = format_report({"joint": [0.5, 0.25, 2.0], "separate": [1.0, 0.75, 0.9]})
    lines = report.splitlines()
    assert lines[0] == "joint:    best 0.250 s, median 0.500 s per round"
    assert lines[1] == "separate: best 0.750 s, median 0.900 s per round"
    assert lines[2] == "separate / joint (best) = 3.00x"
