"""The coursekit engine of ``coursekit bench``: its methods, one step at a time.

``session`` builds the model and a step function for one (method, budget); ``run_coursekit``
runs every step and measures; ``coursekit.recipes.bench.profile`` profiles a few steps of the
same session. Methods:

- every run method of ``coursekit.adapters.run_methods()`` (``lora``, ``dora``, ``qlora``…,
  ``full``): the model as ``coursekit train`` builds it, stepped by coursekit's ``Trainer``
  (``train_step``: accumulate, clip, step), packed rows, LM head on target positions;
- ``qat``: LoRA trained through NF4 fake quantization (``coursekit.adapters.qat.apply_qat``),
  stepped by the same ``Trainer``;
- ``multi``: N LoRA adapters on one frozen base (``coursekit.adapters.multi``) in one joint
  run. Each step takes the same rows the ``lora`` run would take and gives every adapter its
  own copy (N·b rows, row block k routed to adapter k): each adapter trains on exactly the
  budget's samples, with its own gradient normalization (its target tokens) and its own
  gradient clipping (per-adapter norm), so each adapter's run is the ``lora`` run's, only
  shared. Target tokens count all N adapters; per-adapter tokens/s is that over N. The
  validation loss is the mean over the adapters.

Every method shares the LoRA (rank, alpha = 2 · rank, the ``targets`` preset: q/v by
default), AdamW at the constant rate, clipping at 1.0 and the budget
(``coursekit.recipes.bench.budget``). ``precision`` (fp32, or bf16 weights and autocast) and
``device`` (``cpu`` by default; ``cuda`` for ``coursekit bench --gpu``) apply to every method.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from coursekit.recipes.bench.budget import (
    DTYPES,
    Data,
    FeedCounter,
    OnePassRows,
    load_data,
    val_loss,
)

BENCH_METHODS: tuple[str, ...] = ("qat", "multi")
"""Methods the suite runs besides ``run_methods()``: coursekit only, the peers skip them."""


@dataclass
class Session:
    """One coursekit training run, ready to step."""

    model: torch.nn.Module
    """The model being trained (adapters applied)."""
    step: Callable[[], None]
    """Runs one optimizer step."""
    total_steps: int
    """Steps of the budget."""
    totals: Callable[[], dict[str, Any]]
    """Returns ``steps``, ``target_tokens`` and ``train_seconds`` so far."""
    loss_module: torch.nn.Module
    """The ``TargetLoss`` the step calls (the profiler scopes it as the LM head + loss)."""
    optimizer_calls: list[tuple[Any, str]]
    """(object, method name) of the optimizer step and the gradient clipping."""
    evaluate: Callable[[], float]
    """Returns the validation loss after training."""
    data: Data
    """What the run trains and validates on."""
    adapters: int = 1
    """Adapters trained at once (N for ``multi``)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Numbers to add to the result."""


def adapted_model(
    model: str, method: str, rank: int, adapters: int, *, targets: str = "qv",
    precision: str = "fp32", device: str = "cpu",
) -> torch.nn.Module:  # fmt: skip
    """Load ``model`` and prepare it for ``method`` (adapters applied or all weights trainable).

    ``targets`` is a preset of ``coursekit.adapters.TARGET_PRESETS``; the weights are loaded
    in ``DTYPES[precision]`` on ``device``.
    """
    from coursekit.adapters import AdapterConfig, apply
    from coursekit.adapters.multi import apply_multi
    from coursekit.adapters.qat import apply_qat
    from coursekit.loading import load_model
    from coursekit.train.spec import RunSpec

    lora = AdapterConfig(rank=rank, alpha=2 * rank, targets=targets)
    base = load_model(model, dtype=DTYPES[precision], device=device)
    if method == "qat":
        return apply_qat(base, lora, quant="nf4")
    if method == "multi":
        return apply_multi(base, lora, n_adapters=adapters)
    config = RunSpec(model=model, method=method, adapter=lora).adapter_config
    return base.requires_grad_(True) if config is None else apply(base, config)


def session(
    *, model: str = "tiny", data: str = "", steps: int | None = 12, samples: int | None = None,
    val_samples: int | None = None, batch_size: int = 4, seq_len: int = 384, rank: int = 8,
    lr: float = 2e-3, seed: int = 0, method: str = "lora", adapters: int = 4,
    targets: str = "qv", precision: str = "fp32", device: str = "cpu",
) -> Session:  # fmt: skip
    """Build the run of ``method`` at the budget: ``steps`` steps, or one pass over ``samples``.

    ``targets``, ``precision`` and ``device`` as in ``adapted_model`` (``TrainConfig.precision``
    and the ``Accelerator``'s device follow them).
    """
    from coursekit.train.config import TrainConfig
    from coursekit.train.run import seed_everything

    fed = load_data(model=model, data=data, seq_len=seq_len, seed=seed, samples=samples,
                    val_samples=val_samples)  # fmt: skip
    rows = OnePassRows(fed.train, seq_len=seq_len, packing=True) if fed.one_pass else None
    config = TrainConfig(
        max_steps=rows.steps(batch_size) if rows else steps, micro_batch_size=batch_size,
        learning_rate=lr, schedule="constant", seq_len=seq_len, packing=True, eval_every=0,
        seed=seed, precision=precision,
    )  # fmt: skip
    seed_everything(seed)
    lora = adapted_model(model, method, rank, adapters, targets=targets, precision=precision,
                         device=device)  # fmt: skip
    lora.train()  # load_model gives eval mode
    if method == "multi":
        return _multi_session(lora, fed, config, rows, adapters)
    return _trainer_session(lora, fed, config, rows, cpu=device == "cpu")


def _trainer_session(
    model: torch.nn.Module, fed: Data, config: Any, rows: OnePassRows | None, *, cpu: bool
) -> Session:
    """A session stepped by coursekit's ``Trainer.train_step`` (``cpu``: on the CPU)."""
    from coursekit.train.loop import Trainer, make_accelerator
    from coursekit.train.run import seed_everything

    seed_everything(config.seed)
    pad_id = fed.tokenizer.pad_token_id
    trainer = Trainer(model, fed.train, [], config, pad_id=pad_id,
                      accelerator=make_accelerator(config, cpu=cpu))  # fmt: skip
    if rows is not None:  # the samples budget: one pass in the budget's order
        trainer.sampler = rows

    def totals() -> dict[str, Any]:
        summary = trainer.summary()
        return {k: summary[k] for k in ("steps", "target_tokens", "train_seconds")}

    return Session(
        model=model, step=trainer.train_step, total_steps=trainer.total_steps, totals=totals,
        loss_module=trainer.loss,
        optimizer_calls=[(trainer.optimizer, "step"), (trainer.accelerator, "clip_grad_norm_")],
        evaluate=lambda: val_loss(model, fed.val, pad_id), data=fed,
    )  # fmt: skip


class MultiStep:
    """One joint step of N adapters: every adapter gets its own copy of the step's rows.

    loss = Σ_k loss_sum_k / n, n the target tokens of one copy, so adapter k's gradient is
    ∇ loss_sum_k / n, exactly its single-adapter gradient; then each adapter's gradient is
    clipped to ``max_grad_norm`` by its own norm (``clip``), and AdamW steps (its states are
    per entry, hence per adapter).
    """

    def __init__(self, model: torch.nn.Module, rows: Any, config: Any, adapters: int,
                 pad_id: int) -> None:  # fmt: skip
        from coursekit.train.loss import TargetLoss
        from coursekit.train.optim import build_optimizer

        self.model, self.rows, self.config, self.adapters = model, rows, config, adapters
        self.pad_id, self.loss = pad_id, TargetLoss(model).train()
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.params, config)
        self.steps, self.target_tokens, self.train_seconds = 0, 0, 0.0

    def __call__(self) -> None:
        """Run one joint optimizer step."""
        from coursekit.adapters.multi import adapter_indices
        from coursekit.data.batching import collate, target_count

        tick = time.perf_counter()
        rows = self.rows.take(self.config.micro_batch_size)
        n_targets = sum(target_count(row) for row in rows)  # one copy's
        batch = collate(rows * self.adapters, self.pad_id)  # (N·b, s): copy k = rows k·b…
        device = self.params[0].device
        batch = {k: v.to(device) for k, v in batch.items()}
        indices = torch.arange(self.adapters).repeat_interleave(len(rows))  # (N·b,)
        with adapter_indices(self.model, indices):
            (self.loss(**batch) / n_targets).backward()
        self.clip(self.config.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps, self.target_tokens = (
            self.steps + 1,
            self.target_tokens + n_targets * (self.adapters),
        )
        self.train_seconds += time.perf_counter() - tick

    def clip(self, max_norm: float) -> torch.Tensor:
        """Clip each adapter's gradient to ``max_norm`` by its own L2 norm; return the (N,) norms.

        g_k ← g_k · min(1, max_norm / (‖g_k‖ + 1e-6)), ‖g_k‖ over adapter k's slices of every
        layer's stacked A and B (torch's ``clip_grad_norm_`` rule, once per adapter).
        """
        grads = [p.grad for p in self.params if p.grad is not None]  # each (N, …)
        norms = sum(g.pow(2).flatten(1).sum(1) for g in grads).sqrt()  # (N,)
        scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # (N,)
        for g in grads:
            g.mul_(scale.view(-1, *[1] * (g.ndim - 1)))
        return norms

    def totals(self) -> dict[str, Any]:
        """Return steps, target tokens (all adapters) and train seconds so far."""
        return {"steps": self.steps, "target_tokens": self.target_tokens,
                "train_seconds": self.train_seconds}  # fmt: skip


def _multi_session(
    model: torch.nn.Module, fed: Data, config: Any, rows: OnePassRows | None, adapters: int
) -> Session:
    """A session of N adapters trained jointly (``MultiStep``)."""
    from coursekit.train.sampler import RowSampler

    pad_id = fed.tokenizer.pad_token_id
    stream = rows or RowSampler(fed.train, seq_len=config.seq_len, packing=True, seed=config.seed)
    step = MultiStep(model, stream, config, adapters, pad_id)

    def evaluate() -> float:
        losses = [val_loss(model, fed.val, pad_id, adapter=k) for k in range(adapters)]
        return sum(losses) / adapters

    return Session(
        model=model, step=step, total_steps=config.max_steps, totals=step.totals,
        loss_module=step.loss, optimizer_calls=[(step.optimizer, "step"), (step, "clip")],
        evaluate=evaluate, data=fed, adapters=adapters,
    )  # fmt: skip


def run_coursekit(**settings: Any) -> dict[str, Any]:
    """Train one coursekit run (``session``'s keywords); return its measured numbers.

    Returns:
        ``target_tokens``, ``train_seconds`` (the summed step times), ``steps``,
        ``val_loss``, ``adapters``, the samples fed (``FeedCounter``), the positions and
        model FLOPs trained on (``coursekit.recipes.bench.flops.count_model_flops``).
    """
    from coursekit.recipes.bench.flops import count_model_flops

    run = session(**settings)
    counter = count_model_flops(run.model, settings.get("seq_len", 384))
    feed = FeedCounter(run.model, run.data.tokenizer.pad_token_id)
    for _ in range(run.total_steps):
        run.step()
    return {**run.totals(), "val_loss": run.evaluate(), "adapters": run.adapters,
            **feed.summary(), **counter}  # fmt: skip
