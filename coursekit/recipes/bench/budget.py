"""What every engine of ``coursekit bench`` is fed, and counting what it was fed.

Two budgets:

- **steps**: every engine runs that many optimizer steps of its own micro-batches over the
  whole training split. A packing engine (coursekit, TRL) holds more samples per step than a
  padding one (HF ``Trainer``), so it also sees more data.
- **samples**: every engine trains once on the same N samples: the training split shuffled
  once with the seed, the first N that have a target token within ``seq_len``, handed to
  every engine in that order. coursekit packs them next-fit in that order (``OnePassRows``),
  HF ``Trainer`` reads them sequentially, TRL packs them best-fit-decreasing (its packing
  reorders them into bins) and reads the bins sequentially. One epoch each, so the last
  step may be short, and each engine takes as many steps as its batching needs.

``FeedCounter`` counts from the tensors an engine actually fed its model, not from the
settings: a forward pre-hook on the Qwen2 body splits every training row into samples (runs
of positions between restarts of ``position_ids``, a lone padding token being padding; a
padded row without position ids is one sample, its attended positions) and keeps a digest of
each sample's token ids, so the report can show that every engine saw the same samples.

Guide: docs/benchmarks.md ("Budgets").
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from coursekit.data.prompts import IGNORE_INDEX, EncodedExample
from coursekit.errors import CoursekitError
from coursekit.train.sampler import RowSampler

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}
"""An engine's ``precision`` → the dtype every engine loads the model in (bf16: autocast too)."""


@dataclass(frozen=True)
class Data:
    """The tokenizer and the encoded examples one engine trains and validates on."""

    tokenizer: Any
    """The model's tokenizer."""
    train: list[EncodedExample]
    """Training examples: the budget's N in order, or the whole split (steps budget)."""
    val: list[EncodedExample]
    """Validation examples (all of the split, or the first ``val_samples`` shuffled)."""
    one_pass: bool
    """True under the samples budget: train once over ``train``, in its order."""


def shuffled_prefix(examples: Sequence[Any], n: int | None, seed: int, what: str) -> list[Any]:
    """Return the first ``n`` of ``examples`` after one seeded shuffle (all of them for None).

    Example:
        >>> shuffled_prefix(range(10), 3, 0, "x") == shuffled_prefix(range(10), 3, 0, "x")
        True
        >>> sorted(shuffled_prefix(range(4), None, 0, "x"))
        [0, 1, 2, 3]
    """
    order = list(range(len(examples)))
    random.Random(f"coursekit-bench:{what}:{seed}").shuffle(order)
    return [examples[i] for i in order[: len(order) if n is None else n]]


def first_fitting(
    samples: Sequence[Any], n: int, *, seed: int, tokenizer: Any, seq_len: int, what: str
) -> list[EncodedExample]:
    """Encode ``samples`` in one seeded shuffled order until ``n`` have a target within seq_len.

    Only the samples visited are tokenized (``encode_example``, what the token cache stores),
    so a run holds N encoded examples, not the whole split.

    Raises:
        CoursekitError: fewer than ``n`` samples fit; the message names the flag to change.
    """
    from coursekit.data.prompts import encode_example

    kept: list[EncodedExample] = []
    for sample in shuffled_prefix(samples, None, seed, what):
        example = encode_example(sample, tokenizer, seq_len)
        if example is not None and example.target_tokens > 0:
            kept.append(example)
            if len(kept) == n:
                return kept
    flag = "--samples" if what == "train" else "--val-samples"
    raise CoursekitError(
        f"bench: {flag} {n}, but only {len(kept)} {what} samples fit seq_len={seq_len}; "
        f"lower {flag} or raise --seq-len"
    )


def load_data(
    *, model: str, data: str, seq_len: int, seed: int, samples: int | None = None,
    val_samples: int | None = None,
) -> Data:  # fmt: skip
    """Encode the split and apply the budget.

    Under the samples budget (and for ``val_samples``) only the chosen samples are encoded
    (``first_fitting``); otherwise the whole split, through the token cache.

    Args:
        model: a model name or directory (its tokenizer is used).
        data: a split directory; empty means the bundled seed set.
        seq_len: longest sequence in tokens (longer answers are cut).
        seed: seed of the budget's shuffle.
        samples: N for the samples budget; None for the steps budget (the whole split).
        val_samples: validate on the first this many of the shuffled validation split.
    """
    from coursekit.data.corpus import load_splits, seed_dir
    from coursekit.data.tokenized import TokenCache
    from coursekit.loading import load_tokenizer

    tokenizer = load_tokenizer(model)
    splits = load_splits(Path(data) if data else seed_dir())
    cache, chosen = TokenCache(), {"train": samples, "val": val_samples}
    encoded = {
        what: cache.encode(splits[what], tokenizer, seq_len) if n is None else first_fitting(
            splits[what], n, seed=seed, tokenizer=tokenizer, seq_len=seq_len, what=what)
        for what, n in chosen.items()
    }  # fmt: skip
    return Data(tokenizer=tokenizer, train=encoded["train"], val=encoded["val"],
                one_pass=samples is not None)  # fmt: skip


class OnePassRows(RowSampler):
    """Rows of the examples in their given order, once: the last ``take`` may come up short.

    ``RowSampler`` runs on into the next epoch when one ends; under the samples budget no
    sample may be seen twice, so this stream stops instead.

    Example:
        >>> from coursekit.data.prompts import EncodedExample
        >>> one = EncodedExample(sample_id="a", input_ids=(1, 2, 3), labels=(-100, 2, 3))
        >>> examples = [one] * 3
        >>> rows = OnePassRows(examples, seq_len=6, packing=True)
        >>> len(rows.take(4)), rows.steps(4)
        (2, 1)
    """

    def __init__(self, examples: Sequence[EncodedExample], *, seq_len: int, packing: bool) -> None:
        n = len(examples)
        super().__init__(examples, seq_len=seq_len, packing=packing, seed=0,
                         order=lambda epoch: list(range(n)))  # fmt: skip

    def steps(self, rows_per_step: int) -> int:
        """Return the optimizer steps of one pass at ``rows_per_step`` rows each (last short)."""
        return math.ceil(len(self.epoch_rows(0)) / rows_per_step)

    def take(self, n: int) -> list[list[EncodedExample]]:
        """Return the next ``n`` rows, fewer at the end of the pass; none after it."""
        if self._rows is None:
            self._rows = self.epoch_rows(0)
        if self.position == len(self._rows):
            raise ValueError("OnePassRows: the pass is over; no sample is trained on twice")
        taken = self._rows[self.position : self.position + n]
        self.position += len(taken)
        return [[self.examples[i] for i in row] for row in taken]


def digest(tokens: Sequence[int]) -> str:
    """Return the first 16 hex digits of the SHA-1 of a sample's token ids.

    Example:
        >>> digest([1, 2, 3]) == digest((1, 2, 3)) != digest([1, 2])
        True
    """
    return hashlib.sha1(",".join(map(str, tokens)).encode()).hexdigest()[:16]


def row_samples(
    ids: Sequence[int], positions: Sequence[int] | None, mask: Sequence[int] | None, pad_id: int
) -> list[tuple[int, ...]]:
    """Split one fed row into its samples' token ids.

    With ``positions`` a sample starts at every 0; a lone ``pad_id`` is padding (coursekit's
    packed rows pad with one-token runs). Without, the row is one sample: the positions
    ``mask`` attends to (all of them without a mask).

    Example:
        >>> row_samples([5, 6, 7, 8, 0, 0], [0, 1, 0, 1, 0, 0], None, pad_id=0)
        [(5, 6), (7, 8)]
        >>> row_samples([5, 6, 0], None, [1, 1, 0], pad_id=0)
        [(5, 6)]
    """
    if positions is None:
        kept = [t for t, m in zip(ids, mask or [1] * len(ids), strict=True) if m]
        return [tuple(kept)] if kept else []
    starts = [i for i, p in enumerate(positions) if p == 0] or [0]
    ends = [*starts[1:], len(ids)]
    runs = [tuple(ids[a:b]) for a, b in zip(starts, ends, strict=True)]
    return [run for run in runs if run != (pad_id,)]


class FeedCounter:
    """Count the samples (and, for a peer, target tokens) of every training forward.

    Attach with ``FeedCounter(model, pad_id, targets=...)``: a pre-hook on the Qwen2 body
    inside ``model`` counts samples (``row_samples``); with ``targets`` a pre-hook on
    ``model`` itself counts the target tokens of its ``labels`` (label positions 1.. that are
    not -100: the tokens a shifted next-token loss is computed on). Forwards in eval mode
    (validation) are not counted.
    """

    def __init__(self, model: torch.nn.Module, pad_id: int, *, targets: bool = False) -> None:
        self.pad_id, self.digests, self.target_tokens = pad_id, [], 0
        body = next(m for m in model.modules() if type(m).__name__ == "Qwen2Model")
        body.register_forward_pre_hook(self._samples, with_kwargs=True)
        if targets:
            model.register_forward_pre_hook(self._targets, with_kwargs=True)

    def _samples(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if not module.training:
            return
        ids = kwargs.get("input_ids", args[0] if args else None).tolist()
        positions, mask = kwargs.get("position_ids"), kwargs.get("attention_mask")
        for i, row in enumerate(ids):
            row_positions = None if positions is None else positions[i].tolist()
            row_mask = None if mask is None or mask.ndim != 2 else mask[i].tolist()
            self.digests += [digest(s) for s in row_samples(row, row_positions, row_mask,
                                                            self.pad_id)]  # fmt: skip

    def _targets(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if module.training:  # the batches trained on, not prefetched or evaluated ones
            self.target_tokens += int((kwargs["labels"][:, 1:] != IGNORE_INDEX).sum())

    def summary(self) -> dict[str, Any]:
        """Return ``samples`` fed, ``distinct_samples`` and ``samples_digest`` (of the distinct)."""
        return {
            "samples": len(self.digests),
            "distinct_samples": len(set(self.digests)),
            "samples_digest": set_digest(self.digests),
        }


def set_digest(digests: Sequence[str]) -> str:
    """Return the digest of a set of sample digests (order and repeats do not matter).

    Example:
        >>> set_digest(["b", "a", "a"]) == set_digest(["a", "b"])
        True
    """
    return hashlib.sha1(",".join(sorted(set(digests))).encode()).hexdigest()[:16]


def budget_digest(examples: Sequence[EncodedExample]) -> str:
    """Return ``set_digest`` of the examples' token ids: what a full pass should count."""
    return set_digest([digest(e.input_ids) for e in examples])


@torch.no_grad()
def val_loss(
    model: torch.nn.Module, val: list, pad_id: int, *, adapter: int | None = None
) -> float:
    """Return Σ loss_sum / Σ n_targets over ``val`` in batches of 4 (one example per row).

    The batches go to the device of the model's first parameter.

    Args:
        model: the trained model (any engine's; the same function for all).
        val: encoded validation examples.
        pad_id: the padding token id.
        adapter: for a multi-adapter model, the adapter every example is routed to.
    """
    from coursekit.data.batching import collate, target_count
    from coursekit.train.loss import TargetLoss

    device = next(model.parameters()).device
    loss, total = TargetLoss(model).eval(), 0.0
    for start in range(0, len(val), 4):
        rows = [[e] for e in val[start : start + 4]]
        route = contextlib.nullcontext()
        if adapter is not None:
            from coursekit.adapters.multi import adapter_indices

            route = adapter_indices(model, torch.full((len(rows),), adapter))
        batch = {k: v.to(device) for k, v in collate(rows, pad_id).items()}
        with route:
            total += loss(**batch).item()
    return total / sum(target_count([e]) for e in val)
