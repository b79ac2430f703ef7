"""Phase 3 core tiers (A–D): the short experiments behind notebooks/phase3_core.ipynb.

Each experiment runs coursekit's own pipeline (the trainer of :mod:`coursekit.train`, the
ablation recipe, the LR range test) on a small slice of the corpus, so that a tier's cell
takes seconds to a minute on a CPU, and plugs the learner's function in where the tier's
enhancement lives:

- A rank ablation: :func:`rank_ablation`, a grid (``coursekit.recipes.ablate.AblationConfig``)
  over ``adapter.rank`` trained in this process on :func:`small_corpus`;
- B MLP targets: :func:`short_run` of any ``RunSpec`` (targets ``("gate_proj", "up_proj",
  "down_proj")`` against the ``qv`` baseline);
- C LR finder: :func:`lr_range` (the range test on the run's own data and loss), then
  ``coursekit.train.lr_finder.suggest(result, your_function)``;
- D gradient accumulation: :func:`accumulation_errors` (your ``step_loss`` against one
  full batch, and the mean-of-means trap) and :func:`trainer_accumulation_error` (coursekit's
  trainer, k × 1 against 1 × k).

Guide: docs/course.md ("Phase 3 notebooks").

Example:
    >>> corpus = small_corpus("runs/p3/data")  # doctest: +SKIP
    >>> short_run(phase3_spec(data=str(corpus)), "runs/p3/b")["val_loss_end"]  # doctest: +SKIP
    2.71
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from coursekit.adapters import AdapterConfig, apply
from coursekit.data.batching import collate, target_count
from coursekit.data.corpus import default_corpus_dir, load_splits, write_corpus
from coursekit.data.prompts import EncodedExample
from coursekit.loading import load_model, load_tokenizer
from coursekit.recipes.ablate import AblationConfig, AblationResult, run_ablation
from coursekit.recipes.phase1_baseline import baseline_spec, encode_split, run_baseline
from coursekit.train.config import TrainConfig
from coursekit.train.loop import Trainer, make_accelerator
from coursekit.train.loss import TargetLoss
from coursekit.train.lr_finder import LRFinderResult, lr_range_test
from coursekit.train.run import seed_everything
from coursekit.train.spec import RunSpec

StepLoss = Callable[[Sequence[torch.Tensor], Sequence[int]], torch.Tensor]
"""Tier D's exercise: ``step_loss(loss_sums, token_counts) -> scalar tensor``."""


def output_folder(output_dir: str | Path = "") -> Path:
    """Return ``output_dir`` (created), or a new temporary folder when it is empty.

    Example:
        >>> output_folder().is_dir()
        True
    """
    if not str(output_dir):
        return Path(tempfile.mkdtemp(prefix="coursekit-phase3-"))
    path = Path(output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def small_corpus(
    directory: str | Path,
    *,
    model: str = "nano",
    train: int = 48,
    val: int = 12,
    seq_len: int = 256,
    seed: int = 0,
    source: str | Path = "",
) -> Path:
    """Write a seeded slice of the corpus whose examples fit ``seq_len`` tokens; return it.

    The slice is ``train`` training and ``val`` validation samples (fewer when fewer fit),
    drawn at random from the splits of ``source`` (empty:
    :func:`~coursekit.data.corpus.default_corpus_dir`, the committed corpus), and
    written as ``train/val/test.jsonl`` (one test sample), so that every experiment of a
    notebook trains and evaluates on the same few samples.

    Example:
        >>> folder = small_corpus(output_folder(), train=4, val=2)  # doctest: +SKIP
        >>> sorted(p.name for p in folder.glob("*.jsonl"))  # doctest: +SKIP
        ['test.jsonl', 'train.jsonl', 'val.jsonl']
    """
    out = output_folder(directory)
    splits = load_splits(Path(source) if str(source) else default_corpus_dir())
    tokenizer = load_tokenizer(model)
    for name, count in (("train", train), ("val", val), ("test", 1)):
        samples = list(splits[name])
        random.Random(f"phase3:{seed}:{name}").shuffle(samples)
        # ~3 characters per token: a cheap pre-filter, so only ~2·count samples are encoded
        short = [s for s in samples if len(s.function) + len(s.tests) < 3 * seq_len][: 2 * count]
        fitting = {e.sample_id for e in encode_split(short, tokenizer, seq_len)}
        write_corpus(out / f"{name}.jsonl", [s for s in short if s.id in fitting][:count])
    return out


def phase3_spec(*, data: str, steps: int = 20, **settings: Any) -> RunSpec:
    """Return the Phase 1 baseline's ``RunSpec`` on ``data``, validated only at start and end.

    ``settings`` are :func:`~coursekit.recipes.phase1_baseline.baseline_spec`'s (``rank``,
    ``targets``, ``lr``, ``seq_len`` ...); seq_len defaults to 256, :func:`small_corpus`'s.

    Example:
        >>> phase3_spec(data="d", steps=5, rank=4).adapter.rank
        4
    """
    settings.setdefault("seq_len", 256)
    return baseline_spec(data=data, steps=steps, eval_every=steps, **settings)


def short_run(spec: RunSpec, output_dir: str | Path, **options: Any) -> dict[str, float]:
    """Fine-tune ``spec`` with coursekit's trainer (no generation); return the run's metrics.

    A thin call of :func:`~coursekit.recipes.phase1_baseline.run_baseline` with every
    sample of ``spec.data`` and ``generate=0``; ``options`` go to it (``callbacks`` ...).
    The run folder is ``<output_dir>/train``.
    """
    result = run_baseline(
        spec, output_dir, max_train_examples=10**6, max_val_examples=10**6, generate=0, **options
    )
    return result.metrics


def rank_ablation(config: AblationConfig, output_dir: str | Path) -> AblationResult:
    """Run Tier A's grid ``config`` in this process (no child processes); return its result.

    The cells share this process, so their peak memory is not their own (the ablation
    recipe's ``isolate=True``, ``coursekit ablate``, measures it per cell).
    """
    return run_ablation(config, output_folder(output_dir), isolate=False, log=lambda line: None)


def ablation_rows(result: AblationResult) -> list[dict[str, Any]]:
    """Return one row per setting: its label, seeds, mean val loss, trainable, tokens/s.

    Example:
        >>> ablation_rows(rank_ablation(config, "runs/a"))[0]["setting"]  # doctest: +SKIP
        'rank=4'
    """
    rows = []
    for group in result.groups:
        mean = {
            name: (agg.mean if agg is not None else None) for name, agg in group.metrics.items()
        }
        rows.append({
            "setting": group.label,
            "seeds": len(group.seeds),
            "val_loss": mean.get("val_loss"),
            "trainable_parameters": mean.get("trainable_parameters"),
            "tokens_per_s": mean.get("tokens_per_s"),
        })  # fmt: skip
    return rows


def lr_range(spec: RunSpec, *, num_steps: int = 40, start_lr: float = 1e-6, end_lr: float = 1.0):
    """Run the LR range test on ``spec``'s model, data and loss; return the ``LRFinderResult``.

    The same inputs as ``coursekit lr-find`` (:func:`coursekit.recipes.lr_find.sweep_batches`):
    one optimizer step per batch of ``micro_batch_size`` rows, lr growing geometrically from
    ``start_lr`` to ``end_lr``, the model and optimizer restored afterwards.
    """
    from coursekit.recipes.lr_find import sweep_batches

    module, optimizer, batches, loss_fn = sweep_batches(spec, num_steps)
    return lr_range_test(
        module, optimizer, batches, loss_fn, start_lr=start_lr, end_lr=end_lr, num_steps=num_steps
    )


def lr_result_table(result: LRFinderResult, suggestions: dict[str, float]) -> str:
    """Return one line per suggestion: its name, its lr and the smoothed loss there.

    Example:
        >>> r = LRFinderResult(lrs=(0.1, 1.0), losses=(2.0, 1.0), raw_losses=(2.0, 1.0),
        ...     stopped_early=False)
        >>> print(lr_result_table(r, {"yours": 1.0}))
        yours     lr 1.00e+00  smoothed loss there 1.000
    """
    lines = []
    for name, lr in suggestions.items():
        nearest = min(range(len(result.lrs)), key=lambda i: abs(result.lrs[i] - lr) / lr)
        lines.append(f"{name:<9} lr {lr:.2e}  smoothed loss there {result.losses[nearest]:.3f}")
    return "\n".join(lines)


@dataclass(frozen=True, kw_only=True)
class AccumulationErrors:
    """Relative gradient errors ‖g − g_full‖ / ‖g_full‖ of one step split into micro-batches."""

    yours: float
    """With your ``step_loss`` combining the micro-batches' loss sums."""
    mean_of_means: float
    """With the mean of the micro-batches' mean losses (the 2024 accumulation bug)."""
    token_counts: tuple[int, ...]
    """n_j: target tokens of each micro-batch."""


def uneven_examples(data: str | Path, *, model: str = "nano", k: int = 4, seq_len: int = 256):
    """Return ``k`` training examples of ``data`` alternating the shortest and longest answers.

    Uneven micro-batches are where averaging per-micro-batch means goes wrong.
    """
    tokenizer = load_tokenizer(model)
    encoded = encode_split(load_splits(Path(data))["train"], tokenizer, seq_len)
    by_length = sorted(encoded, key=lambda e: target_count([e]))
    picked = [by_length[i // 2] if i % 2 == 0 else by_length[-1 - i // 2] for i in range(k)]
    return picked, tokenizer.pad_token_id


def _adapted(model: str, seed: int) -> torch.nn.Module:
    """Load ``model`` with LoRA (r = 8, q/v) and B = A's scale, so every adapter gets gradient."""
    seed_everything(seed)
    loaded = load_model(model)
    apply(loaded, AdapterConfig(rank=8, alpha=16.0, targets="qv"))
    with torch.no_grad():
        for name, parameter in loaded.named_parameters():
            if "lora_b" in name:  # LoRA starts at B = 0, where A's gradient is 0
                parameter.normal_(0.0, 0.02)
    return loaded


def _gradient(parameters: list[torch.nn.Parameter]) -> torch.Tensor:
    """Return the trainable parameters' gradients as one flat vector, and clear them."""
    flat = torch.cat([p.grad.reshape(-1) for p in parameters])
    for p in parameters:
        p.grad = None
    return flat


def _relative(g: torch.Tensor, reference: torch.Tensor) -> float:
    return float((g - reference).norm() / reference.norm())


def accumulation_errors(
    step_loss: StepLoss,
    examples: Sequence[EncodedExample],
    *,
    pad_id: int,
    model: str = "nano",
    seed: int = 0,
) -> AccumulationErrors:
    """Compare one step over ``examples`` split into 1-example micro-batches with one batch.

    The full batch's gradient is g_full = ∇ Σ_j S_j / Σ_j n_j (S_j the summed target loss of
    micro-batch j, n_j its target tokens, :class:`~coursekit.train.loss.TargetLoss`); each
    way of combining the S_j is measured against it.
    """
    lm = _adapted(model, seed)
    loss, parameters = TargetLoss(lm), [p for p in lm.parameters() if p.requires_grad]
    micro = [collate([[e]], pad_id) for e in examples]
    counts = [target_count([e]) for e in examples]
    (loss(**collate([[e] for e in examples], pad_id)) / sum(counts)).backward()
    full = _gradient(parameters)
    step_loss([loss(**batch) for batch in micro], counts).backward()
    yours = _gradient(parameters)
    torch.stack(
        [loss(**batch) / n for batch, n in zip(micro, counts, strict=True)]
    ).mean().backward()
    mean_of_means = _gradient(parameters)
    return AccumulationErrors(
        yours=_relative(yours, full),
        mean_of_means=_relative(mean_of_means, full),
        token_counts=tuple(counts),
    )


def trainer_accumulation_error(
    examples: Sequence[EncodedExample], *, pad_id: int, model: str = "nano", seed: int = 0
) -> float:
    """Return ‖Δθ(1 × k) − Δθ(k × 1)‖ / ‖Δθ(k × 1)‖ for one step of coursekit's trainer.

    Two runs from the same weights take one SGD step (lr 1, no clipping, so Δθ = −g) over
    the same k examples: one micro-batch of k, and k micro-batches of 1 accumulated by the
    loop of :mod:`coursekit.train.loop` (the reference of Tier D).
    """
    k, deltas = len(examples), []
    for micro, accumulation in ((k, 1), (1, k)):
        config = TrainConfig(
            max_steps=1, micro_batch_size=micro, gradient_accumulation=accumulation,
            learning_rate=1.0, schedule="constant", max_grad_norm=0.0, optimizer="sgd",
            packing=False, seq_len=max(len(e.input_ids) for e in examples), eval_every=0,
            seed=seed,
        )  # fmt: skip
        lm = _adapted(model, seed)
        parameters = [p for p in lm.parameters() if p.requires_grad]
        before = torch.cat([p.detach().reshape(-1).clone() for p in parameters])
        trainer = Trainer(
            lm, examples, [], config, pad_id=pad_id, accelerator=make_accelerator(config, cpu=True)
        )
        trainer.train_step()
        deltas.append(torch.cat([p.detach().reshape(-1) for p in parameters]) - before)
    return _relative(deltas[1], deltas[0])
