"""Phase 3 advanced tiers (E–H): the short experiments behind notebooks/phase3_advanced.ipynb.

Each plugs the learner's function into coursekit's pipeline where the tier lives:

- E DoRA: :func:`use_dora_forward` registers an adapter variant (``coursekit.adapters.variants``)
  whose layer is ``DoRALinear`` with your ``dora_forward``; any run can then use it by name;
- F quantization-aware LoRA: :func:`qat_experiment`, ``QATLoRALinear`` with your
  ``fake_quant_ste`` against plain LoRA, both merged and quantized to int4 afterwards;
- G multi-adapter: :func:`multi_adapter_experiment`, two adapters trained at once on two tasks
  against each trained alone;
- H curriculum: :func:`curriculum_run`, the trainer with your pacing function c(t) in its
  ``CurriculumSampler``.

F and G use a tiny random Qwen2 (the mechanism is the point, and it takes a second); E and H
fine-tune nano on :func:`coursekit.recipes.phase3_core.small_corpus`.

Guide: docs/course.md ("Phase 3 notebooks").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import Qwen2Config, Qwen2ForCausalLM

from coursekit.adapters import AdapterConfig, apply, merge
from coursekit.adapters.config import resolve_targets
from coursekit.adapters.dora import DoRALinear
from coursekit.adapters.lowrank import init_lora_
from coursekit.adapters.multi import adapter_indices, apply_multi, multi_adapter_loss
from coursekit.adapters.qat import QATLoRALinear, apply_qat, merge_qat, quantize_weights_
from coursekit.adapters.variants import VARIANTS, register
from coursekit.data.corpus import load_splits
from coursekit.data.curriculum import PacingFunction, difficulty_scores
from coursekit.loading import load_model, load_tokenizer
from coursekit.recipes.phase1_baseline import encode_split
from coursekit.train.callbacks import BaseCallback
from coursekit.train.config import TrainConfig
from coursekit.train.loop import Trainer, make_accelerator
from coursekit.train.run import seed_everything
from coursekit.train.sampler import CurriculumRows

DoraForward = Callable[..., Tensor]
"""Tier E's exercise: ``dora_forward(x, W0, b, A, B, m, scale) -> y``."""
FakeQuant = Callable[[Tensor], Tensor]
"""Tier F's exercise: ``fake_quant_ste(weight) -> weight`` (value Q(W), gradient identity)."""
VOCAB = 64
"""Vocabulary of the tiny random model of F and G."""


class LearnerDoRALinear(DoRALinear):
    """``DoRALinear`` whose unmerged forward is a learner's ``dora_forward`` (class attribute)."""

    dora_forward: DoraForward

    def forward(self, x: Tensor) -> Tensor:
        """Map (…, d_in) → (…, d_out) with ``dora_forward(x, W₀, b, A, B, m, s)``."""
        if self.merged:
            return super().forward(x)
        W0 = self.base_weight(x.dtype)
        forward = type(self).dora_forward
        return forward(x, W0, self.bias, self.lora_a, self.lora_b, self.magnitude, self.scale)


def use_dora_forward(dora_forward: DoraForward, name: str = "my_dora") -> str:
    """Register the adapter variant ``name``: DoRA with your forward; return ``name``.

    The variant is the registry's ``dora`` entry (trainable count, peft keys) with its layer
    replaced, so ``RunSpec(method=name)`` trains with your function. Called again with the
    same name (a re-run cell), it points the variant at the new function.

    Raises:
        ValueError: ``name`` is taken by a variant that is not a learner's DoRA.

    Example:
        >>> from coursekit.exercises.solutions import dora_forward
        >>> use_dora_forward(dora_forward, "doctest_dora") in VARIANTS
        True
    """
    existing = VARIANTS.get(name)
    if existing is not None and not issubclass(existing.layer, LearnerDoRALinear):
        raise ValueError(f"adapter variant {name!r} is coursekit's own; choose another name")
    if existing is None:
        layer = type(f"{name}_layer", (LearnerDoRALinear,), {})
        summary = "DoRA with the learner's forward (notebooks/phase3_advanced.ipynb)"
        register(dataclasses.replace(VARIANTS["dora"], name=name, summary=summary, layer=layer))
    VARIANTS[name].layer.dora_forward = staticmethod(dora_forward)
    return name


def tiny_lm(seed: int = 0, initializer_range: float = 0.1) -> Qwen2ForCausalLM:
    """Return a random 2-layer, 32-wide Qwen2 with a 64-token vocabulary, seeded.

    ``initializer_range`` 0.1 lets the base fit a small batch, as a pretrained model fits
    fine-tuning data (docs/quantization-and-multi-adapter.md explains the choice).

    Example:
        >>> tiny_lm().config.hidden_size
        32
    """
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        tie_word_embeddings=True, initializer_range=initializer_range,
    )  # fmt: skip
    return Qwen2ForCausalLM(config)


def random_sequences(n: int, length: int, seed: int) -> Tensor:
    """Return (n, length) random token ids of the tiny vocabulary, seeded.

    Example:
        >>> random_sequences(2, 5, 0).shape
        torch.Size([2, 5])
    """
    return torch.randint(0, VOCAB, (n, length), generator=torch.Generator().manual_seed(seed))


class _LearnerQAT(QATLoRALinear):
    """``QATLoRALinear`` whose forward fake-quantizes with a learner's function."""

    def __init__(self, base: nn.Linear, *, rank: int, alpha: float, fake_quant: FakeQuant):
        super().__init__(base, rank=rank, alpha=alpha, quant="int4")
        self.fake_quant = fake_quant

    def forward(self, x: Tensor) -> Tensor:
        """Map (…, d_in) → (…, d_out): fake_quant(W₀ + s·B·A)x + b."""
        return nn.functional.linear(x, self.fake_quant(self.merged_weight()), self.bias)


def _train(model: nn.Module, ids: Tensor, steps: int, seed: int) -> None:
    torch.manual_seed(seed + 1)  # the same initial A (B = 0) in every run
    for module in model.modules():
        if hasattr(module, "lora_a"):
            init_lora_(module.lora_a, module.lora_b)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(steps):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


@torch.no_grad()
def _loss(model: nn.Module, ids: Tensor) -> float:
    return model(input_ids=ids, labels=ids).loss.item()


def qat_experiment(
    kind: str, fake_quant: FakeQuant | None = None, *, steps: int = 100, seed: int = 0
) -> dict[str, float]:
    """Train LoRA or QAT-LoRA on 4 random sequences; return the loss before and after int4.

    ``kind`` is ``"lora"``, or ``"qat"`` with ``fake_quant`` (yours; None: coursekit's
    ``QATLoRALinear`` with int4). Rank 8, α 16, all seven projections, AdamW lr 1e-2, the
    same initial A and data in every run. Afterwards the adapters are merged and every adapted
    weight is rounded to int4 (blocks of 64, as deployed); both losses are returned in nats.
    """
    config = AdapterConfig(rank=8, alpha=16.0, targets="all-linear")
    model = tiny_lm(seed)
    names = resolve_targets(config, model)
    if kind == "lora":
        apply(model, config)
    elif fake_quant is None:
        apply_qat(model, config, quant="int4")
    else:
        from coursekit.adapters.inject import replace_linears

        model.requires_grad_(False)
        replace_linears(model, names, lambda linear: _LearnerQAT(
            linear, rank=config.rank, alpha=config.alpha, fake_quant=fake_quant))  # fmt: skip
    ids = random_sequences(4, 16, seed + 100)
    _train(model, ids, steps, seed)
    trained = _loss(model, ids)
    merge(model) if kind == "lora" else merge_qat(model)
    quantize_weights_(model, names, quant="int4")
    return {"trained": trained, "after_int4": _loss(model, ids)}


def _lora_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if hasattr(m, "lora_a")}


def _fit(model: nn.Module, loss_of: Callable[[], Tensor], steps: int) -> None:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        loss_of().backward()
        optimizer.step()
        optimizer.zero_grad()


def multi_adapter_experiment(*, steps: int = 40, seed: int = 0) -> dict[str, list[list[float]]]:
    """Train 2 adapters at once on 2 tasks, and each alone; return both loss matrices.

    Task k is memorising 2 random sequences of 16 tokens. Jointly: one ``MultiLoRALinear``
    model, batch = both tasks, example i routed to adapter k(i), loss Σ_k mean over k's
    tokens (``multi_adapter_loss``). Alone: two plain LoRA models, each on its task, from the
    same initial A. Entry [k][j] is adapter k's loss (nats) on task j.
    """
    config = AdapterConfig(rank=4, alpha=8.0, targets="all-linear")
    tasks = [random_sequences(2, 16, seed + 200 + k) for k in range(2)]
    joint = apply_multi(tiny_lm(seed), config, n_adapters=2)
    alone = [apply(tiny_lm(seed), config) for _ in tasks]
    starts = _lora_layers(joint)
    for k, model in enumerate(alone):
        for name, layer in _lora_layers(model).items():
            with torch.no_grad():
                layer.lora_a.copy_(starts[name].lora_a[k])
    ids, routing = torch.cat(tasks), torch.tensor([0, 0, 1, 1])

    def joint_loss() -> Tensor:
        with adapter_indices(joint, routing):
            logits = joint(input_ids=ids).logits  # (4, 16, V)
        return multi_adapter_loss(logits, ids, routing, n_adapters=2)

    _fit(joint, joint_loss, steps)
    for model, task in zip(alone, tasks, strict=True):
        _fit(model, lambda m=model, t=task: m(input_ids=t, labels=t).loss, steps)
    with torch.no_grad():
        together = []
        for k in range(2):
            with adapter_indices(joint, torch.full((2,), k)):
                together.append([_loss(joint, task) for task in tasks])
        separate = [[_loss(model, task) for task in tasks] for model in alone]
    return {"joint": together, "alone": separate}


class _SeenSamples:
    """Wrap a trainer's row sampler and remember the sample ids of every row it hands out."""

    def __init__(self, sampler: Any) -> None:
        self.sampler, self.seen = sampler, []

    def take(self, n: int) -> list:
        rows = self.sampler.take(n)
        self.seen += [example.sample_id for row in rows for example in row]
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sampler, name)


class _EvalRows(BaseCallback):
    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_eval(self, row: dict[str, float]) -> None:
        self.rows.append(row)


def curriculum_run(
    pacing: str | PacingFunction,
    *,
    data: str | Path,
    model: str = "nano",
    steps: int = 16,
    batch_size: int = 4,
    lr: float = 2e-3,
    seq_len: int = 256,
    seed: int = 0,
) -> dict[str, float]:
    """Fine-tune ``model`` (LoRA r = 8 on q/v) with a curriculum; return losses and difficulty.

    ``pacing`` is ``"none"`` (random order), a name of ``coursekit.data.curriculum.PACINGS``
    or your function c(t); the trainer's ``CurriculumSampler`` draws each step's batch from
    the ⌈c(t)·n⌉ easiest training samples (difficulty: ``difficulty_scores``). Returned: the
    validation loss before and after, and the mean difficulty of the samples trained on.
    """
    tokenizer, splits = load_tokenizer(model), load_splits(Path(data))
    train, val = (encode_split(splits[name], tokenizer, seq_len) for name in ("train", "val"))
    kept = {e.sample_id for e in train}
    scores = difficulty_scores([s for s in splits["train"] if s.id in kept]).scores
    named = "linear" if callable(pacing) else pacing
    config = TrainConfig(
        max_steps=steps, micro_batch_size=batch_size, learning_rate=lr, schedule="constant",
        seq_len=seq_len, packing=False, eval_every=steps, seed=seed, curriculum=named,
    )  # fmt: skip
    seed_everything(seed)
    lm = apply(load_model(model), AdapterConfig(rank=8, alpha=16.0, targets="qv"))
    evals = _EvalRows()
    trainer = Trainer(
        lm, train, val, config, pad_id=tokenizer.pad_token_id, difficulties=scores,
        callbacks=[evals], accelerator=make_accelerator(config, cpu=True),
    )  # fmt: skip
    if callable(pacing):
        trainer.sampler = CurriculumRows(
            train, difficulties=scores, pacing=pacing, rows_per_step=batch_size,
            total_steps=trainer.total_steps, seed=seed,
        )  # fmt: skip
    trainer.sampler = seen = _SeenSamples(trainer.sampler)
    trainer.fit()
    difficulty = dict(zip((e.sample_id for e in train), scores, strict=True))
    return {
        "val_loss_start": evals.rows[0]["val_loss"],
        "val_loss_end": evals.rows[-1]["val_loss"],
        "mean_difficulty_seen": sum(difficulty[i] for i in seen.seen) / len(seen.seen),
    }


def pacing_figure(pacings: dict[str, PacingFunction], total_steps: int, start_fraction: float):
    """Plot c(t) of each pacing over t = 0..T; return the matplotlib ``Figure``.

    Example:
        >>> from coursekit.data.curriculum import PACINGS
        >>> len(pacing_figure(dict(PACINGS), 10, 0.2).axes[0].lines)
        3
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.2))
    axes = figure.add_subplot()
    steps = range(total_steps + 1)
    for name, function in pacings.items():
        axes.plot(
            list(steps), [function(t, total_steps, start_fraction) for t in steps], label=name
        )
    axes.set_xlabel("step t")
    axes.set_ylabel("c(t): fraction of the easiest samples")
    axes.set_ylim(0, 1.05)
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


def largest_gap(first: Sequence[Sequence[float]], second: Sequence[Sequence[float]]) -> float:
    """Return max |a − b| over two equal-shaped loss matrices.

    Example:
        >>> largest_gap([[1.0, 2.0]], [[1.5, 2.0]])
        0.5
    """
    return max(
        abs(a - b)
        for ra, rb in zip(first, second, strict=True)
        for a, b in zip(ra, rb, strict=True)
    )
