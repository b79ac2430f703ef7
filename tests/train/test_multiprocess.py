"""Multi-process training: 2 processes × micro-batch 4 ≡ 1 process × 4 × accumulation 2.

``accelerate launch --multi_gpu --num_processes 2`` starts two processes through torchrun;
without CUDA ``make_accelerator`` picks the CPU, so accelerate joins them with gloo. Both
processes draw the same rows and train on their halves; DDP averages their gradients.
Tolerance: 1e-5 absolute on parameters of size ~0.2 after 3 AdamW steps: the all-reduce sums
in another order than one process does (observed 2.4e-7).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from coursekit.train.callbacks import read_metrics
from tests.train import _resume_worker as worker

WORKER = Path(__file__).with_name("_resume_worker.py")


def free_port() -> int:
    """A TCP port nobody listens on now (another test run may be using a fixed one)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(out: Path) -> subprocess.CompletedProcess:
    accelerate = shutil.which("accelerate") or str(Path(sys.executable).with_name("accelerate"))
    command = [
        accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(free_port()), str(WORKER), str(out), "--ddp",
    ]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_two_processes_match_one_process_with_accumulation(tmp_path) -> None:
    if not Path(sys.executable).with_name("accelerate").exists() and not shutil.which("accelerate"):
        pytest.skip("the accelerate launcher is not installed next to this Python")
    result = launch(tmp_path / "ddp")
    if result.returncode != 0 and "gloo" in result.stderr.lower():
        pytest.skip(f"the gloo backend cannot start here: {result.stderr.splitlines()[-1]}")
    assert result.returncode == 0, result.stderr[-3000:]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        worker.train_ddp(accumulation=2, output=tmp_path / "one")
        worker.train_ddp(accumulation=1, output=tmp_path / "half")
    finally:
        torch.set_num_threads(threads)
    adapter = Path("adapter") / "adapter_model.safetensors"
    one_process, half, two_processes = (
        load_file(str(tmp_path / name / adapter)) for name in ("one", "half", "ddp")
    )
    for name, value in one_process.items():
        torch.testing.assert_close(two_processes[name], value, atol=1e-5, rtol=0)
    # the falsifier: one process without accumulation sees half the data and ends elsewhere
    assert max((half[k] - two_processes[k]).abs().max() for k in one_process) > 1e-3
    # one metrics.jsonl, written by the main process only: each step once
    steps = [r["step"] for r in read_metrics(tmp_path / "ddp" / "metrics.jsonl") if "loss" in r]
    assert steps == [1, 2, 3]
    assert [p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()] == ["step-2"]
