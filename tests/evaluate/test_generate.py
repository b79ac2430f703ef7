"""Greedy test generation: only new tokens, within the budget, deterministic, eval mode."""

from __future__ import annotations

import pytest

from coursekit.data.corpus import load_splits, seed_dir
from coursekit.data.prompts import prompt_text
from coursekit.evaluate.generate import generate_test, generate_tests
from coursekit.loading import load_model, load_tokenizer


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_model(tiny_dir), load_tokenizer(tiny_dir)


@pytest.fixture(scope="module")
def samples():
    return load_splits(seed_dir())["test"][:2]


def test_answer_is_the_new_tokens_only_within_the_budget(tiny, samples):
    model, tokenizer = tiny
    model.train()
    prompt = prompt_text(samples[0], tokenizer)
    text = generate_test(model, tokenizer, prompt, max_new_tokens=5)
    assert not model.training  # greedy decoding without dropout
    assert prompt not in text and samples[0].function not in text
    assert (
        len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= 5 + 2
    )  # re-encoding may split one
    assert generate_test(model, tokenizer, prompt, max_new_tokens=5) == text  # greedy


def test_one_row_per_sample_beside_its_reference(tiny, samples):
    model, tokenizer = tiny
    rows = generate_tests(model, tokenizer, samples, max_new_tokens=3)
    assert [r["id"] for r in rows] == [s.id for s in samples]
    assert [r["reference"] for r in rows] == [s.tests for s in samples]
    assert rows[0]["function"] == samples[0].function and isinstance(rows[0]["generated"], str)
    first = generate_test(model, tokenizer, prompt_text(samples[0], tokenizer), max_new_tokens=3)
    assert rows[0]["generated"] == first
    model.train()
    assert generate_tests(model, tokenizer, [], max_new_tokens=3) == [] and not model.training
