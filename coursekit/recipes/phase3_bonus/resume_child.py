"""Tier J's child process: a short LoRA fine-tune that saves with the learner's functions.

    python -m coursekit.recipes.phase3_bonus.resume_child REQUEST.json

REQUEST (written by :mod:`~coursekit.recipes.phase3_bonus.resume`) holds ``mode``, the run
folder ``dir``, the settings and, for modes ``run`` and ``resume``, the learner's
``save_state`` and ``restore_state`` as source (``coursekit.exercises.transport``):

- ``straight``: train ``steps`` steps, never saving (the uninterrupted run);
- ``run``: after every step write ``save_state(...)`` to ``state.pt`` (atomically); after
  step ``pause_after`` write ``paused`` and wait to be killed;
- ``resume``: ``restore_state(torch.load(state.pt), ...)`` into fresh objects, then train
  to ``steps``, saving as in ``run``.

Every step appends ``{"step", "loss"}`` to ``losses.jsonl``. One step: b examples drawn
with ``torch.randint(n, (b,), generator=rng)`` (the data RNG the learner saves), the loss
summed over target tokens and divided by their number, AdamW, a cosine schedule with one
warm-up step; LoRA dropout draws from torch's global generator. One thread, so that every
process computes bit for bit alike.

Guide: docs/training.md (enhancement J). Used in notebooks/phase3_bonus.ipynb.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch


def _setup(request: dict[str, Any]) -> tuple[Any, ...]:
    """Model with adapters (seeded), AdamW, cosine schedule, data RNG, examples, pad id."""
    from coursekit.adapters import AdapterConfig, apply
    from coursekit.data.corpus import load_splits
    from coursekit.data.tokenized import TokenCache
    from coursekit.loading import load_model, load_tokenizer
    from coursekit.train.config import TrainConfig
    from coursekit.train.schedule import build_scheduler

    tokenizer = load_tokenizer(request["model"])
    train = TokenCache().encode(
        load_splits(request["data"])["train"], tokenizer, request["seq_len"]
    )
    torch.manual_seed(request["seed"])
    model = load_model(request["model"])
    apply(model, AdapterConfig(rank=8, alpha=16.0, dropout=0.1, targets="qv"))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=request["lr"])
    config = TrainConfig(schedule="cosine", warmup_steps=1, learning_rate=request["lr"])
    scheduler = build_scheduler(optimizer, config, request["steps"])
    rng = torch.Generator().manual_seed(request["seed"])
    return model, optimizer, scheduler, rng, train, tokenizer.pad_token_id


def _step(
    model: Any, optimizer: Any, scheduler: Any, rng: Any, data: tuple[list, int, int]
) -> float:
    """One optimizer step on b examples drawn from ``rng``; return the loss per target token.

    ``data`` is (encoded training examples, pad id, b).
    """
    from coursekit.data.batching import collate, target_count
    from coursekit.train.loss import TargetLoss

    train, pad_id, batch_size = data
    picked = [train[i] for i in torch.randint(len(train), (batch_size,), generator=rng)]
    n_targets = target_count(picked)
    loss_sum = TargetLoss(model)(**collate([[e] for e in picked], pad_id))
    (loss_sum / n_targets).backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_sum.item() / n_targets


def _append(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _save(path: Path, state: Any) -> None:
    from coursekit.io import atomic_open

    with atomic_open(path, "wb") as handle:
        torch.save(state, handle)


def main(argv: list[str]) -> int:
    """Run the request in ``argv[0]`` (see the module docstring); return the exit status."""
    from coursekit.exercises.transport import rebuild

    torch.set_num_threads(1)
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    folder, mode = Path(request["dir"]), request["mode"]
    model, optimizer, scheduler, rng, train, pad_id = _setup(request)
    save_state = restore_state = None
    if mode != "straight":
        save_state, restore_state = (rebuild(part) for part in request["parts"])
    start = 0
    if mode == "resume":
        state = torch.load(folder / "state.pt", weights_only=False)
        start = restore_state(state, model, optimizer, scheduler, rng)
        if not isinstance(start, int) or not 0 <= start <= request["steps"]:
            print(f"restore_state returned {start!r}, not a step in 0..{request['steps']}",
                  file=sys.stderr)  # fmt: skip
            return 3
    for step in range(start + 1, request["steps"] + 1):
        loss = _step(model, optimizer, scheduler, rng, (train, pad_id, request["batch_size"]))
        if save_state is not None:
            _save(folder / "state.pt", save_state(model, optimizer, scheduler, step, rng))
        _append(folder / "losses.jsonl", {"step": step, "loss": loss})
        if mode == "run" and step == request["pause_after"]:
            (folder / "paused").write_text(str(step), encoding="utf-8")
            while True:  # wait here for the parent's SIGTERM
                time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
