"""Two genuine nano runs on the seed set (seeds 0 and 1), trained once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from coursekit.adapters import AdapterConfig
from coursekit.data.corpus import seed_dir
from coursekit.data.tokenized import TokenCache
from coursekit.recipes.finetune import finetune
from coursekit.train.config import TrainConfig
from coursekit.train.spec import RunSpec


def nano_spec(seed: int) -> RunSpec:
    """The baseline's shape at test size: LoRA r = 4 on q/v (dropout on), 4 steps of 2."""
    return RunSpec(
        model="nano", data=str(seed_dir()),
        adapter=AdapterConfig(rank=4, alpha=8, dropout=0.1),
        train=TrainConfig(max_steps=4, micro_batch_size=2, seq_len=256, packing=False,
                          eval_every=0, learning_rate=1e-2, seed=seed),
    )  # fmt: skip


@pytest.fixture(scope="session")
def nano_runs(tmp_path_factory) -> dict[int, Path]:
    """``{seed: run folder}`` for seeds 0 and 1, trained on one thread (the tests copy them)."""
    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for seed in (0, 1):
            finetune(nano_spec(seed), root / f"seed-{seed}", cache=TokenCache(persist=False))
    finally:
        torch.set_num_threads(threads)
    return {seed: root / f"seed-{seed}" for seed in (0, 1)}


@pytest.fixture
def run_copy(nano_runs, tmp_path):
    """A fresh copy of a run folder to tamper with: ``run_copy(seed) -> Path``."""

    def copy(seed: int) -> Path:
        return Path(shutil.copytree(nano_runs[seed], tmp_path / f"seed-{seed}"))

    return copy
