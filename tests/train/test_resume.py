"""Resume (enhancement J): interrupted-and-resumed ≡ uninterrupted, bit for bit, on CPU.

The worker (tests/train/_resume_worker.py) trains a tiny LoRA model (dropout 0.1, so the RNG
state matters) for 6 steps with a checkpoint every 2. The claim could fail in many ways (a
missed RNG state, optimizer moment, scheduler step or data position); it is checked with
``torch.equal`` on every adapter tensor, no tolerance.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from coursekit.train.callbacks import BaseCallback, read_metrics
from tests.train import _resume_worker as worker

WORKER = Path(__file__).with_name("_resume_worker.py")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, torch.Tensor]:
    out = tmp_path_factory.mktemp("uninterrupted")
    worker.run(out)
    return load_file(str(out / "adapter" / "adapter_model.safetensors"))


def assert_bitwise(out: Path, reference: dict[str, torch.Tensor]) -> None:
    resumed = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert resumed.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(resumed[key], value), key


class Interrupt(BaseCallback):
    def on_step(self, row):
        if row["step"] == 5:
            raise KeyboardInterrupt


def test_resume_after_an_interrupt_is_bitwise_identical(tmp_path, reference) -> None:
    with pytest.raises(KeyboardInterrupt):
        worker.run(tmp_path, callbacks=[Interrupt()])
    summary = worker.run(tmp_path, resume=True)
    assert summary["resumed_from"] == "step-4" and summary["steps"] == 6
    assert_bitwise(tmp_path, reference)
    steps = [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]  # the interrupted step 5 row was dropped, then redone


def run_worker(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, str(WORKER), str(out), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_resume_after_sigkill_mid_run_and_mid_checkpoint_is_bitwise(tmp_path, reference) -> None:
    killed = run_worker(tmp_path, "--kill-at-step", "3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-2"]
    killed = run_worker(tmp_path, "--resume", "--kill-in-checkpoint", "4")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    left = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert left[-1] == "step-2" and any(name.startswith(".step-4.") for name in left)
    summary = worker.run(tmp_path, resume=True)
    assert summary["resumed_from"] == "step-2"
    assert_bitwise(tmp_path, reference)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-4", "step-6"]


def test_resume_without_a_checkpoint_starts_over(tmp_path, reference) -> None:
    worker.run(tmp_path, max_steps=6)
    for step_dir in (tmp_path / "checkpoints").iterdir():
        for file in step_dir.rglob("manifest.json"):
            file.unlink()
    with pytest.warns(UserWarning):
        summary = worker.run(tmp_path, resume=True)
    assert summary["resumed_from"] is None
    assert_bitwise(tmp_path, reference)
