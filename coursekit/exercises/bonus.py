"""Checks of the Bonus exercises: I (a metrics callback) and J (what resuming must save).

I.metrics_callback — ``class MetricsRecorder`` built with no arguments, implementing
    ``coursekit.train.Callback`` (``on_step``, ``on_eval``, ``on_end``); after a run,
    ``history[name]`` is the list of (step, value) of every metric ``name`` ≠ "step" of every
    step and evaluation row, in order, and ``summary`` the dict ``on_end`` received. Checked
    by training a tiny Qwen2 for 3 steps through coursekit's ``Trainer``.
J.resume_state — ``save_state(model, optimizer, scheduler, step, rng) -> dict`` and
    ``restore_state(state, model, optimizer, scheduler, rng) -> step``. Kill-and-resume:
    N = 6 steps straight must equal k = 3 steps, save, ``torch.save``/``torch.load``, fresh
    objects (other adapter init, data seed and global RNG, as in a new process), restore,
    and N − k more steps, bit for bit. The data come from ``rng`` (a ``torch.Generator``),
    LoRA dropout from torch's global generator.

Guide: docs/exercises.md.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import torch

from coursekit.exercises.compare import compare_tensors, fail, number
from coursekit.exercises.registry import Check
from coursekit.exercises.solutions import MetricsRecorder as Reference
from coursekit.exercises.tinymodel import VOCAB, tiny_examples, tiny_qwen2
from coursekit.train.callbacks import Callback

HOOKS = ("on_step", "on_eval", "on_end")


def _new(recorder_class: type, check: str) -> Any:
    recorder = recorder_class()
    missing = [hook for hook in HOOKS if not callable(getattr(recorder, hook, None))]
    if missing or not isinstance(recorder, Callback):
        raise fail(
            f"{recorder_class.__name__} has no {', '.join(missing)}; a Callback needs "
            "on_step, on_eval and on_end (inherit coursekit.train.BaseCallback)",
            check,
        )
    return recorder


def _pairs(entries: Any, where: str, check: str) -> list[tuple[int, float]]:
    try:
        return [(int(step), float(value)) for step, value in entries]
    except (TypeError, ValueError):
        message = f"{where} must be a list of (step, value) pairs, got {entries!r:.80}"
        raise fail(message, check) from None


def _compare_history(yours: Any, expected: dict[str, list], check: str) -> None:
    history = getattr(yours, "history", None)
    if not isinstance(history, dict):
        raise fail(
            f"history is a {type(history).__name__}, expected a dict of name → "
            "[(step, value), ...]",
            check,
        )
    missing, extra = sorted(set(expected) - set(history)), sorted(set(history) - set(expected))
    if missing:
        hint = "; record on_eval rows too" if "val_loss" in missing else ""
        raise fail(f"history has no {missing} (it has {sorted(history)}){hint}", check)
    if extra:
        raise fail(f"history has {extra}, which no row held as a metric", check)
    for name, want in expected.items():
        got = _pairs(history[name], f"history[{name!r}]", check)
        if len(got) != len(want):
            raise fail(f"history[{name!r}] has {len(got)} entries, expected {len(want)}", check)
        for i, (pair, right) in enumerate(zip(got, want, strict=True)):
            if pair != right:
                raise fail(
                    f"history[{name!r}][{i}] is ({pair[0]}, {number(pair[1])}), "
                    f"expected ({right[0]}, {number(right[1])})",
                    check,
                )


def _callback_protocol(recorder_class: type) -> None:
    """It builds with no arguments and has the three hooks."""
    _new(recorder_class, "a Callback built with no arguments")


def _callback_rows(recorder_class: type) -> None:
    """Hand-made rows: every metric but "step" is recorded as (step, value)."""
    check = "records rows by metric name"
    yours, reference = _new(recorder_class, check), Reference()
    rows = [
        ("on_step", {"step": 1, "loss": 2.5, "lr": 1e-3}),
        ("on_eval", {"step": 1, "val_loss": 2.75}),
        ("on_step", {"step": 2, "loss": 2.25, "lr": 2e-3}),
    ]
    for hook, row in rows:
        getattr(yours, hook)(dict(row))
        getattr(reference, hook)(dict(row))
    _compare_history(yours, reference.history, check)


@functools.lru_cache(maxsize=2)
def _trained(recorder_class: type) -> tuple[Any, Reference]:
    """Train 3 steps (evaluation at 0, 2 and 3) with both recorders; cached for one check run."""
    from coursekit.train.config import TrainConfig
    from coursekit.train.loop import Trainer, make_accelerator

    yours, reference = _new(recorder_class, "records a real training run"), Reference()
    config = TrainConfig(
        max_steps=3,
        micro_batch_size=2,
        learning_rate=1e-2,
        seq_len=32,
        eval_every=2,
        schedule="constant",
    )
    trainer = Trainer(
        tiny_qwen2(),
        tiny_examples(12),
        tiny_examples(4, seed=1),
        config,
        pad_id=0,
        callbacks=[yours, reference],
        accelerator=make_accelerator(config, cpu=True),
    )
    trainer.fit()
    return yours, reference


def _callback_run(recorder_class: type) -> None:
    """The rows of a real run (3 steps through coursekit's Trainer, evaluations included)."""
    yours, reference = _trained(recorder_class)
    _compare_history(yours, reference.history, "records a real training run")


def _callback_summary(recorder_class: type) -> None:
    """``summary`` is what ``on_end`` received."""
    yours, reference = _trained(recorder_class)
    got = getattr(yours, "summary", None)
    if got != reference.summary:
        keys = sorted(reference.summary or {})
        raise fail(
            f"summary is {got!r:.80}, expected the dict on_end received (keys {keys})",
            "keeps the run's summary",
        )


STEPS, RESUME_AT = 6, 3
"""The kill-and-resume run: N straight steps, or k steps + save + restore + N − k."""

Save = Callable[..., dict]
Restore = Callable[..., int]


def _fresh(adapter_seed: int, data_seed: int) -> tuple[Any, Any, Any, torch.Generator]:
    """Model (same base, adapters initialised from ``adapter_seed``), AdamW, cosine, data RNG."""
    from coursekit.adapters import AdapterConfig, apply
    from coursekit.train.config import TrainConfig
    from coursekit.train.schedule import build_scheduler

    model = tiny_qwen2(seed=0)
    torch.manual_seed(adapter_seed)
    apply(model, AdapterConfig(rank=4, alpha=8.0, dropout=0.1, targets="all-linear"))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    config = TrainConfig(schedule="cosine", warmup_steps=2, learning_rate=1e-2)
    scheduler = build_scheduler(optimizer, config, STEPS)
    return model, optimizer, scheduler, torch.Generator().manual_seed(data_seed)


def _train(model: Any, optimizer: Any, scheduler: Any, rng: torch.Generator, steps: int):
    """``steps`` optimizer steps on batches drawn from ``rng``; return each step's loss."""
    losses = []
    for _ in range(steps):
        ids = torch.randint(1, VOCAB, (2, 10), generator=rng)  # (b, s)
        loss = model(input_ids=ids, labels=ids).loss  # LoRA dropout draws the global RNG
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def _trainable(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@functools.lru_cache(maxsize=1)
def _straight() -> tuple[list[float], dict[str, torch.Tensor]]:
    model, optimizer, scheduler, rng = _fresh(0, 0)
    torch.manual_seed(7)
    return _train(model, optimizer, scheduler, rng, STEPS), _trainable(model)


@functools.lru_cache(maxsize=2)
def _resumed(save_state: Save, restore_state: Restore) -> dict[str, Any]:
    """Train k steps, save, reload from bytes into fresh objects, restore; then finish."""
    model, optimizer, scheduler, rng = _fresh(0, 0)
    torch.manual_seed(7)
    _train(model, optimizer, scheduler, rng, RESUME_AT)
    saved = {
        "trainable": _trainable(model),
        "optimizer": optimizer.state_dict(),
        "lr": scheduler.get_last_lr(),
        "last_epoch": scheduler.last_epoch,
        "rng": rng.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    state = save_state(model, optimizer, scheduler, RESUME_AT, rng)
    buffer = io.BytesIO()
    try:
        torch.save(state, buffer)
    except Exception as error:
        raise fail(
            f"torch.save cannot write what save_state returned: {error}",
            "save_state returns what torch.save can write",
        ) from None
    saved = {**saved, "optimizer": _copied(saved["optimizer"])}
    del model, optimizer, scheduler, rng, state  # the process dies here
    buffer.seek(0)
    model, optimizer, scheduler, rng = _fresh(1, 99)
    torch.manual_seed(12345)
    step = restore_state(torch.load(buffer, weights_only=False), model, optimizer, scheduler, rng)
    restored = {
        "step": step,
        "trainable": _trainable(model),
        "optimizer": _copied(optimizer.state_dict()),
        "lr": scheduler.get_last_lr(),
        "last_epoch": scheduler.last_epoch,
        "rng": rng.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    start = step if isinstance(step, int) and 0 <= step <= STEPS else RESUME_AT
    losses = _train(model, optimizer, scheduler, rng, STEPS - start)
    return {"saved": saved, "restored": restored, "losses": losses, "final": _trainable(model)}


def _copied(state_dict: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def _resume_saves(save_state: Save, restore_state: Restore) -> None:
    """save_state's result survives ``torch.save`` (and ``restore_state`` runs on it)."""
    _resumed(save_state, restore_state)


def _resume_step(save_state: Save, restore_state: Restore) -> None:
    """restore_state returns the step the run stopped at."""
    step = _resumed(save_state, restore_state)["restored"]["step"]
    if step != RESUME_AT or isinstance(step, bool):
        raise fail(
            f"restore_state returned {step!r}, expected {RESUME_AT} (the step saved)",
            "restore_state returns the step",
        )


def _resume_weights(save_state: Save, restore_state: Restore) -> None:
    """The trainable weights after restore are those at the save."""
    run = _resumed(save_state, restore_state)
    for name, expected in run["saved"]["trainable"].items():
        compare_tensors(
            run["restored"]["trainable"][name],
            expected,
            "trainable weights restored",
            what=name,
            atol=0,
            rtol=0,
        )


def _resume_optimizer(save_state: Save, restore_state: Restore) -> None:
    """The optimizer's state (AdamW's step count and moments) after restore is the saved one."""
    run, check = _resumed(save_state, restore_state), "optimizer state restored"
    saved, restored = run["saved"]["optimizer"]["state"], run["restored"]["optimizer"]["state"]
    if len(restored) != len(saved):
        raise fail(
            f"the optimizer holds state for {len(restored)} parameters after restore, "
            f"expected {len(saved)} (AdamW's moments must be saved)",
            check,
        )
    for index, entries in saved.items():
        for key, value in entries.items():
            got = restored[index].get(key)
            compare_tensors(
                got, value, check, what=f"optimizer state {index}.{key}", atol=0, rtol=0
            )


def _resume_scheduler(save_state: Save, restore_state: Restore) -> None:
    """The scheduler is at the saved step, so the learning rate continues where it was."""
    run = _resumed(save_state, restore_state)
    saved, restored = run["saved"], run["restored"]
    if restored["last_epoch"] != saved["last_epoch"] or restored["lr"] != saved["lr"]:
        raise fail(
            f"the scheduler is at step {restored['last_epoch']} with lr "
            f"{number(restored['lr'][0])}, expected step {saved['last_epoch']} with lr "
            f"{number(saved['lr'][0])}",
            "scheduler restored",
        )


def _resume_data_rng(save_state: Save, restore_state: Restore) -> None:
    """The data generator continues where it was: the same batches come next."""
    run = _resumed(save_state, restore_state)
    if not torch.equal(run["restored"]["rng"], run["saved"]["rng"]):
        raise fail(
            "the data generator's state differs from the saved one, so other batches "
            "would follow (save rng.get_state())",
            "data RNG restored",
        )


def _resume_global_rng(save_state: Save, restore_state: Restore) -> None:
    """Torch's global generator continues where it was: the same dropout masks come next."""
    run = _resumed(save_state, restore_state)
    if not torch.equal(run["restored"]["torch_rng"], run["saved"]["torch_rng"]):
        raise fail(
            "torch's global RNG state differs from the saved one, so dropout would draw "
            "other masks (save torch.get_rng_state())",
            "global RNG restored",
        )


def _resume_equivalent(save_state: Save, restore_state: Restore) -> None:
    """Kill-and-resume: the later losses and the final weights equal the straight run's."""
    run, (losses, final) = _resumed(save_state, restore_state), _straight()
    check = "resumed run equals the uninterrupted one, bit for bit"
    for offset, (got, want) in enumerate(zip(run["losses"], losses[RESUME_AT:], strict=True)):
        if got != want:
            raise fail(
                f"step {RESUME_AT + offset + 1}'s loss is {got!r} after resuming, "
                f"{want!r} without interruption",
                check,
            )
    for name, expected in final.items():
        compare_tensors(run["final"][name], expected, check, what=f"final {name}", atol=0, rtol=0)


CHECKS: MappingProxyType[str, tuple[Check, ...]] = MappingProxyType(
    {
        "I.metrics_callback": (
            ("a Callback built with no arguments", _callback_protocol),
            ("records rows by metric name", _callback_rows),
            ("records a real training run", _callback_run),
            ("keeps the run's summary", _callback_summary),
        ),
        "J.resume_state": (
            ("save_state returns what torch.save can write", _resume_saves),
            ("restore_state returns the step", _resume_step),
            ("trainable weights restored", _resume_weights),
            ("optimizer state restored", _resume_optimizer),
            ("scheduler restored", _resume_scheduler),
            ("data RNG restored", _resume_data_rng),
            ("global RNG restored", _resume_global_rng),
            ("resumed run equals the uninterrupted one", _resume_equivalent),
        ),
    }
)
"""Exercise id → its ordered checks."""
