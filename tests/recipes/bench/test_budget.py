"""The equal-samples budget: the seeded N-sample prefix, one pass, counting what was fed."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.data.batching import collate, pack
from coursekit.data.prompts import EncodedExample
from coursekit.errors import CoursekitError
from coursekit.recipes.bench.budget import (
    FeedCounter,
    OnePassRows,
    budget_digest,
    digest,
    first_fitting,
    load_data,
    row_samples,
    set_digest,
    shuffled_prefix,
)


def example(tokens: list[int]) -> EncodedExample:
    """An example whose first token is prompt and the rest answer."""
    return EncodedExample(sample_id=str(tokens), input_ids=tuple(tokens),
                          labels=(-100, *tokens[1:]))  # fmt: skip


def test_the_prefix_is_seeded():
    items = list(range(20))
    assert shuffled_prefix(items, 5, 1, "train") == shuffled_prefix(items, 5, 1, "train")
    assert shuffled_prefix(items, 5, 1, "train") != shuffled_prefix(items, 5, 2, "train")
    assert shuffled_prefix(items, None, 1, "train")[:5] == shuffled_prefix(items, 5, 1, "train")


def test_the_budget_encodes_the_first_fitting_samples_and_names_the_flag_when_short(tiny_dir):
    from coursekit.data.corpus import load_splits, seed_dir
    from coursekit.loading import load_tokenizer

    tokenizer, train = load_tokenizer(tiny_dir), load_splits(seed_dir())["train"]
    every = load_data(model=str(tiny_dir), data=str(seed_dir()), seq_len=256, seed=3)
    chosen = load_data(model=str(tiny_dir), data=str(seed_dir()), seq_len=256, seed=3,
                       samples=4, val_samples=2)  # fmt: skip
    assert chosen.one_pass and not every.one_pass and len(chosen.val) == 2
    assert len(chosen.train) == 4 and set(chosen.train) <= set(every.train)
    again = first_fitting(train, 4, seed=3, tokenizer=tokenizer, seq_len=256, what="train")
    assert again == chosen.train
    with pytest.raises(CoursekitError, match=r"--samples 4, but only [0-3] train samples fit"):
        first_fitting(train[:3], 4, seed=3, tokenizer=tokenizer, seq_len=256, what="train")


lengths = st.lists(st.integers(2, 9), min_size=1, max_size=12)


@given(lengths, st.integers(1, 4))
def test_one_pass_trains_every_example_once_in_order(sizes, per_step):
    examples = [example([*range(1, n + 1), i + 100]) for i, n in enumerate(sizes)]
    rows = OnePassRows(examples, seq_len=10, packing=True)
    seen = []
    for _ in range(rows.steps(per_step)):
        step = rows.take(per_step)
        assert 1 <= len(step) <= per_step
        seen += [e for row in step for e in row]
    assert seen == examples
    with pytest.raises(ValueError, match="the pass is over"):
        rows.take(per_step)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(1, 50), min_size=2, max_size=7), min_size=1, max_size=9),
       st.integers(1, 3))  # fmt: skip
def test_rows_split_back_into_the_samples_collate_packed(token_lists, rows_per_batch):
    examples = [example(tokens) for tokens in token_lists]
    rows = [[examples[i] for i in row] for row in pack([len(e.input_ids) for e in examples], 16)]
    for start in range(0, len(rows), rows_per_batch):
        batch = collate(rows[start : start + rows_per_batch], pad_id=0)
        found = [s for ids, pos in zip(batch["input_ids"].tolist(),
                                       batch["position_ids"].tolist(), strict=True)
                 for s in row_samples(ids, pos, None, pad_id=0)]  # fmt: skip
        expected = [e.input_ids for row in rows[start : start + rows_per_batch] for e in row]
        assert found == expected


def test_padded_rows_are_one_sample_each():
    assert row_samples([4, 5, 0, 0], None, [1, 1, 0, 0], pad_id=0) == [(4, 5)]
    assert row_samples([4, 5, 6], None, None, pad_id=0) == [(4, 5, 6)]


def test_digests_ignore_order_and_repeats_but_not_content():
    a, b = example([1, 2, 3]), example([1, 2, 4])
    assert budget_digest([a, b]) == budget_digest([b, a, a]) != budget_digest([a])
    assert set_digest([digest(a.input_ids), digest(b.input_ids)]) == budget_digest([a, b])


def test_the_counter_sees_training_forwards_of_the_body_only(tiny_dir):
    from coursekit.loading import load_model

    model = load_model(tiny_dir)
    feed = FeedCounter(model, pad_id=0, targets=True)
    ids = torch.tensor([[5, 6, 7, 8, 0], [9, 10, 11, 12, 13]])
    labels = torch.tensor([[-100, 6, 7, -100, -100], [-100, -100, 11, 12, 13]])
    positions = torch.tensor([[0, 1, 0, 1, 0], [0, 1, 2, 3, 4]])
    with torch.no_grad():
        model.train()(input_ids=ids, position_ids=positions, labels=labels)
        model.eval()(input_ids=ids, position_ids=positions, labels=labels)
    assert feed.summary()["samples"] == 3 and feed.summary()["distinct_samples"] == 3
    assert feed.target_tokens == 2 + 3
