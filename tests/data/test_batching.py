"""Batching: dynamic padding, packing, and packed ≡ unpacked per-sample loss."""

from __future__ import annotations

import random

import pytest
import torch

from coursekit.data.batching import collate, pack, shifted_targets, target_count
from coursekit.data.prompts import IGNORE_INDEX, EncodedExample
from coursekit.train.loss import TargetLoss


def example(ids: list[int], prompt: int, name: str = "x") -> EncodedExample:
    labels = [IGNORE_INDEX] * prompt + ids[prompt:]
    return EncodedExample(sample_id=name, input_ids=tuple(ids), labels=tuple(labels))


def test_shifted_targets_predicts_the_next_label() -> None:
    assert shifted_targets([-100, 7, 8]) == [7, 8, -100]


def test_target_count_counts_predicted_positions() -> None:
    assert target_count([example([1, 2, 3, 4], prompt=2), example([5, 6], prompt=1)]) == 3


def test_pack_is_next_fit_in_order() -> None:
    assert pack([3, 4, 2, 5, 8], 8) == [[0, 1], [2, 3], [4]]


def test_pack_fills_a_row_exactly_to_seq_len() -> None:
    assert pack([3, 5, 8], 8) == [[0, 1], [2]]  # 3 + 5 == 8 fits; 8 alone fills a row
    assert pack([8, 8], 8) == [[0], [1]]
    assert pack([4, 4, 1], 8) == [[0, 1], [2]]


def test_pack_rejects_an_example_longer_than_a_row() -> None:
    with pytest.raises(ValueError, match="seq_len=4"):
        pack([2, 5], 4)


def test_collate_pads_to_the_longest_row_and_restarts_positions() -> None:
    a, b, c = example([1, 2, 3], 1), example([4, 5], 1), example([6], 0)
    batch = collate([[a, b], [c]], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5], [6, 0, 0, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 0, 0, 0, 0]]
    # a's last token does not predict b's first; padding is never a target
    assert batch["targets"].tolist() == [[2, 3, -100, 5, -100], [-100] * 5]


def test_collate_rejects_empty_rows() -> None:
    with pytest.raises(ValueError, match="no empty row"):
        collate([[]], pad_id=0)


def test_packed_and_unpacked_rows_give_the_same_per_sample_loss(make_tiny_qwen2) -> None:
    """Claim: packing changes nothing but the layout. Tolerance 1e-5 (fp32, other shapes)."""
    rng = random.Random(0)
    examples = [
        example([rng.randrange(1, 128) for _ in range(n)], prompt=rng.randint(1, n - 1))
        for n in (5, 9, 3, 12, 7)
    ]
    loss = TargetLoss(make_tiny_qwen2(0, vocab_size=128, attn_implementation="sdpa").eval())
    with torch.no_grad():
        alone = [loss(**collate([[e]], pad_id=0)).item() for e in examples]
        padded = loss(**collate([[e] for e in examples], pad_id=0)).item()
        packed_batch = collate([examples[:3], examples[3:]], pad_id=0)
        packed = loss(**packed_batch).item()
        # per sample inside a packed row: zero out the other samples' targets
        first = collate([examples[:3]], pad_id=0)
        keep_second = first["targets"].clone()
        keep_second[:, :5] = IGNORE_INDEX
        keep_second[:, 14:] = IGNORE_INDEX
        second_in_row = loss(first["input_ids"], first["position_ids"], keep_second).item()
    assert second_in_row == pytest.approx(alone[1], abs=1e-5)
    assert padded == pytest.approx(sum(alone), abs=1e-4)
    assert packed == pytest.approx(sum(alone), abs=1e-4)
