"""Subprocess helper (not a test module): a tiny synthetic training run that can be killed.

    python tests/train/_resume_worker.py OUTPUT [--resume] [--kill-at-step N]
        [--kill-in-checkpoint N] [--slow-checkpoint N] [--max-steps N]
    accelerate launch --multi_gpu --num_processes 2 tests/train/_resume_worker.py OUTPUT --ddp

``--ddp`` trains micro-batch 4 × accumulation 1 per process (no dropout) into the run
folder OUTPUT (its adapter/ holds the result). ``--kill-at-step N`` SIGKILLs the
process right after step N is reported (before its checkpoint); ``--kill-in-checkpoint N``
SIGKILLs it inside the write of checkpoint step-N, after part of the files are written and
before the manifest; ``--slow-checkpoint N`` prints ``checkpointing N`` when the write of
step-N starts and takes 3 s longer (a signal sent then arrives mid-write). Stopped by
SIGINT/SIGTERM, the worker prints the ``TrainingInterrupted`` line on stderr and exits 130,
as ``coursekit train`` does. The tests import the builders below to run the same training
in-process.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time
from pathlib import Path

import torch
from transformers import Qwen2ForCausalLM

from coursekit.adapters import AdapterConfig, apply
from coursekit.data.prompts import EncodedExample
from coursekit.train import checkpoint as checkpoint_module
from coursekit.train.callbacks import BaseCallback
from coursekit.train.config import TrainConfig
from coursekit.train.failures import EXIT_INTERRUPTED, TrainingInterrupted
from coursekit.train.run import prepare_output, train_run
from coursekit.train.spec import RunSpec

VOCAB = 512


def tiny_model(seed: int = 0, *, adapter: bool = True, dropout: float = 0.1) -> Qwen2ForCausalLM:
    """The shared 2-layer, 32-wide Qwen2 with a 512-token vocabulary (random weights)."""
    from tests.tiny import make_tiny_qwen2  # here: importable once ``__main__`` set the path

    model = make_tiny_qwen2(
        seed,
        vocab_size=VOCAB,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )
    if adapter:
        apply(model, AdapterConfig(rank=4, alpha=8, dropout=dropout, targets="all-linear"))
    return model


def examples(n: int, seed: int = 0, *, longest: int = 24) -> list[EncodedExample]:
    """Random examples: a 2..10-token prompt (label -100) then a 1..longest-10 token answer."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        prompt, answer = rng.randint(2, 10), rng.randint(1, longest - 10)
        ids = [rng.randrange(1, VOCAB) for _ in range(prompt + answer)]
        labels = [-100] * prompt + ids[prompt:]
        out.append(EncodedExample(sample_id=f"s{i}", input_ids=tuple(ids), labels=tuple(labels)))
    return out


def config(max_steps: int = 6) -> TrainConfig:
    """The worker's loop settings: checkpoints every 2 steps, keep 2."""
    return TrainConfig(
        max_steps=max_steps,
        micro_batch_size=2,
        gradient_accumulation=2,
        learning_rate=1e-2,
        warmup_steps=1,
        seq_len=32,
        eval_every=3,
        save_every=2,
        keep_last=2,
    )


def run(output: Path, *, resume: bool = False, max_steps: int = 6, callbacks=()) -> dict:
    """Train the tiny model on synthetic data into ``output`` (a run folder)."""
    train_config = config(max_steps)
    prepare_output(output, RunSpec(train=train_config), resume=resume)
    return train_run(
        tiny_model(),
        examples(40),
        examples(6, seed=1),
        train_config,
        output,
        pad_id=0,
        resume=resume,
        callbacks=callbacks,
    )


class KillAtStep(BaseCallback):
    """SIGKILL this process once step ``step`` is reported."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, row: dict) -> None:
        if row["step"] == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def kill_inside_checkpoint(step: int) -> None:
    """Make the write of checkpoint ``step-N`` SIGKILL the process half-way."""
    original = checkpoint_module.write_checkpoint

    def write(directory: Path, trainer) -> None:
        if trainer.step == step:
            torch.save({"partial": True}, directory / "optimizer.pt")
            os.kill(os.getpid(), signal.SIGKILL)
        original(directory, trainer)

    checkpoint_module.write_checkpoint = write


def slow_checkpoint(step: int) -> None:
    """Make the write of checkpoint ``step-N`` announce itself and last 3 s longer."""
    original = checkpoint_module.write_checkpoint

    def write(directory: Path, trainer) -> None:
        if trainer.step == step:
            print(f"checkpointing {step}", flush=True)
            time.sleep(3)
        original(directory, trainer)

    checkpoint_module.write_checkpoint = write


def ddp_config(accumulation: int) -> TrainConfig:
    """Micro-batch 4 × ``accumulation``, 3 steps, a checkpoint at step 2."""
    return TrainConfig(
        max_steps=3,
        micro_batch_size=4,
        gradient_accumulation=accumulation,
        learning_rate=1e-2,
        seq_len=32,
        eval_every=0,
        save_every=2,
    )


def train_ddp(accumulation: int, output: Path) -> dict[str, torch.Tensor]:
    """Train the dropout-free tiny model into the run folder ``output``; return its weights."""
    from coursekit.train.run import prepare_output_once

    train_config = ddp_config(accumulation)
    prepare_output_once(output, RunSpec(train=train_config), resume=False)
    model = tiny_model(dropout=0.0)
    train_run(model, examples(40), examples(4, seed=1), train_config, output, pad_id=0)
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("output", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-at-step", type=int, default=0)
    parser.add_argument("--kill-in-checkpoint", type=int, default=0)
    parser.add_argument("--slow-checkpoint", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--ddp", action="store_true")
    args = parser.parse_args(argv)
    if args.ddp:
        train_ddp(accumulation=1, output=args.output)
        return 0
    if args.kill_in_checkpoint:
        kill_inside_checkpoint(args.kill_in_checkpoint)
    if args.slow_checkpoint:
        slow_checkpoint(args.slow_checkpoint)
    callbacks = [KillAtStep(args.kill_at_step)] if args.kill_at_step else []
    try:
        run(args.output, resume=args.resume, max_steps=args.max_steps, callbacks=callbacks)
    except TrainingInterrupted as stop:
        print(stop, file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the ``tests`` package
    sys.exit(main(sys.argv[1:]))
