"""SIGINT and SIGTERM sent to a training process: a whole checkpoint, one line, exit 130.

Real signals to real subprocesses: ``coursekit train`` on the tiny model (the command a user
interrupts with Ctrl-C), and the resume worker (tests/train/_resume_worker.py) signalled
while it writes a checkpoint, whose run must still resume bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from coursekit.cli import main
from coursekit.data.corpus import seed_dir
from coursekit.train.checkpoint import STEP_DIR, verify
from coursekit.train.failures import EXIT_INTERRUPTED
from tests.train import _resume_worker as worker

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_resume_worker.py")


def environment() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return os.environ | {
        "PYTHONPATH": path,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights" bar
    }


def wait_for(predicate, process: subprocess.Popen, what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            pytest.fail(f"the process ended ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def steps_logged(metrics: Path) -> int:
    if not metrics.exists():
        return 0
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.endswith("}")]
    return max((row["step"] for row in rows if "loss" in row), default=0)


def assert_whole_checkpoints(directory: Path) -> list[str]:
    names = sorted(p.name for p in directory.iterdir())
    assert all(STEP_DIR.match(name) for name in names), names  # no staging or half-deleted dir
    for name in names:
        assert verify(directory / name) is None, name
    return names


@pytest.mark.slow
def test_sigint_stops_coursekit_train_with_one_line_and_130(tmp_path, tiny_dir) -> None:
    out = tmp_path / "run"
    argv = ["train", "--model", "tiny", "--data", str(seed_dir()), "--batch-size", "1",
            "--seq-len", "256", "--max-steps", "30", "--save-every", "1", "--eval-every", "0",
            "--output", str(out)]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "coursekit.cli", *argv],
        cwd=ROOT, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(lambda: steps_logged(out / "metrics.jsonl") >= 2, process, "step 2")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("coursekit train: interrupted by SIGINT after step ")
    assert lines[0].endswith(f"continue with: coursekit train --output {out} --resume")
    stopped = int(lines[0].split("after step ")[1].split()[0])
    assert 2 <= stopped < 30
    assert assert_whole_checkpoints(out / "checkpoints")[-1] == f"step-{stopped}"
    assert main([*argv, "--resume"]) == 0  # the printed command continues the run
    assert json.loads((out / "summary.json").read_text())["steps"] == 30


@pytest.mark.slow
def test_sigterm_mid_checkpoint_finishes_it_and_the_run_resumes_bitwise(tmp_path) -> None:
    reference = tmp_path / "reference"
    worker.run(reference)
    command = [sys.executable, str(WORKER), str(tmp_path / "run"), "--slow-checkpoint", "4"]
    process = subprocess.Popen(
        command, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "checkpointing 4", process.stderr.read()[-3000:]
    process.send_signal(signal.SIGTERM)  # while step-4 is being written
    _, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted by SIGTERM after step 4 of 6")
    checkpoints = tmp_path / "run" / "checkpoints"
    assert assert_whole_checkpoints(checkpoints) == ["step-2", "step-4"]
    summary = worker.run(tmp_path / "run", resume=True)
    assert summary["resumed_from"] == "step-4" and summary["steps"] == 6
    expected = load_file(str(reference / "adapter" / "adapter_model.safetensors"))
    resumed = load_file(str(tmp_path / "run" / "adapter" / "adapter_model.safetensors"))
    assert resumed.keys() == expected.keys()
    assert all(torch.equal(resumed[key], expected[key]) for key in expected)
