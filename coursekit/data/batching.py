"""Batches for causal-LM training: dynamic padding, and packing with no cross-sample attention.

A *row* is one line of a batch: one example (padded) or several examples packed end to end.
``collate`` turns rows into three (b, s) tensors, s = the longest row in the micro-batch:

- ``input_ids``: the tokens, right-padded with ``pad_id``;
- ``position_ids``: 0, 1, 2, … restarting at every example, so RoPE sees each example as if
  it were alone. transformers (``masking_utils.find_packed_sequence_indices``) turns restarts
  into a block-diagonal causal mask when no attention mask is passed: a token attends only
  to earlier tokens of its own example. Padding counts as one-token examples of its own.
- ``targets``: the label of the *next* token of the same example, or -100. Shifting here,
  per example, means the last token of one example never predicts the first of the next.

The loss is Σ over positions with target ≠ -100 of −log p(target | tokens so far), so a packed
row and the same examples in separate padded rows give the same per-example loss (tested).

Guide: docs/training.md. Used in notebooks/phase1_baseline.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from coursekit.data.prompts import IGNORE_INDEX, EncodedExample


def shifted_targets(labels: Sequence[int]) -> list[int]:
    """Return t with t[i] = labels[i + 1] and t[-1] = -100 (the next-token target of each position).

    Example:
        >>> shifted_targets([-100, 5, 6])
        [5, 6, -100]
    """
    return [*labels[1:], IGNORE_INDEX]


def target_count(examples: Sequence[EncodedExample]) -> int:
    """Return the number of positions the loss is computed on: Σ over examples of targets."""
    return sum(sum(label != IGNORE_INDEX for label in e.labels[1:]) for e in examples)


def pack(lengths: Sequence[int], seq_len: int) -> list[list[int]]:
    """Group example indices into rows of at most ``seq_len`` tokens, keeping their order.

    Next-fit: an example joins the current row when it fits, else it starts a new one. Keeping
    the order keeps the data order (and a curriculum) intact.

    Args:
        lengths: token count of each example, in the order they should be trained on.
        seq_len: s, the row length.

    Raises:
        ValueError: an example is longer than ``seq_len`` (encode with max_length=seq_len).

    Example:
        >>> pack([3, 4, 2, 5], 8)
        [[0, 1], [2, 3]]
    """
    rows: list[list[int]] = []
    used = seq_len
    for index, length in enumerate(lengths):
        if length > seq_len:
            raise ValueError(
                f"example {index} has {length} tokens > seq_len={seq_len}; encode examples "
                "with max_length=seq_len"
            )
        if used + length > seq_len:
            rows.append([])
            used = 0
        rows[-1].append(index)
        used += length
    return rows


def _row(examples: Sequence[EncodedExample], width: int, pad_id: int) -> tuple[list[int], ...]:
    ids: list[int] = []
    positions: list[int] = []
    targets: list[int] = []
    for example in examples:
        ids.extend(example.input_ids)
        positions.extend(range(len(example.input_ids)))
        targets.extend(shifted_targets(example.labels))
    padding = width - len(ids)
    return (
        ids + [pad_id] * padding,
        positions + [0] * padding,
        targets + [IGNORE_INDEX] * padding,
    )


def collate(rows: Sequence[Sequence[EncodedExample]], pad_id: int) -> dict[str, torch.Tensor]:
    """Stack rows into ``input_ids``, ``position_ids`` and ``targets``, each (b, s_max).

    Args:
        rows: b rows, each a list of examples laid end to end (one example = no packing).
        pad_id: token id of the right padding (it is never attended to by real tokens and
            never a target).

    Example:
        >>> batch = collate([[example_a, example_b], [example_c]], pad_id=0)  # doctest: +SKIP
        >>> batch["input_ids"].shape  # doctest: +SKIP
        torch.Size([2, 17])
    """
    if not rows or any(len(row) == 0 for row in rows):
        raise ValueError("collate needs at least one row and no empty row")
    width = max(sum(len(e.input_ids) for e in row) for row in rows)
    columns = list(zip(*(_row(row, width, pad_id) for row in rows), strict=True))
    names = ("input_ids", "position_ids", "targets")
    return {
        name: torch.tensor(column, dtype=torch.long)
        for name, column in zip(names, columns, strict=True)
    }
