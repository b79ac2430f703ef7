"""Greedy test generation: only new tokens, within the budget, deterministic, eval mode."""

from __future__ import annotations

import pytest
import torch

from coursekit.data.corpus import load_splits, seed_dir
from coursekit.data.prompts import prompt_text
from coursekit.evaluate.generate import Decoding, generate, generate_test, generate_tests
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


@pytest.fixture(scope="module")
def nano():
    return load_model("nano"), load_tokenizer("nano")


def test_batched_greedy_equals_one_prompt_at_a_time(nano):
    """Left padding and length-sorted batches change nothing in greedy decoding (fp32)."""
    model, tokenizer = nano
    prompts = [prompt_text(s, tokenizer) for s in load_splits(seed_dir())["test"][:5]]
    batched = generate(
        model, tokenizer, prompts, Decoding(max_new_tokens=24, stop=(), batch_size=3)
    )
    alone = [generate_test(model, tokenizer, p, max_new_tokens=24) for p in prompts]
    assert [g[0].text for g in batched] == alone
    assert all(len(g) == 1 and 0 < g[0].new_tokens <= 24 for g in batched)


def test_stop_strings_end_the_answer_and_are_kept(nano):
    model, tokenizer = nano
    prompt = prompt_text(load_splits(seed_dir())["test"][0], tokenizer)
    (full,) = generate(model, tokenizer, [prompt], Decoding(max_new_tokens=40, stop=()))[0:1]
    text = full[0].text
    assert len(text) > 4
    stop = text[2:4]  # a string that occurs in the greedy answer
    (cut,) = generate(model, tokenizer, [prompt], Decoding(max_new_tokens=40, stop=(stop,)))
    assert cut[0].stopped and cut[0].text.endswith(stop) and text.startswith(cut[0].text)
    assert cut[0].new_tokens <= full[0].new_tokens


def test_k_samples_per_prompt_are_seeded(nano):
    model, tokenizer = nano
    prompt = prompt_text(load_splits(seed_dir())["test"][0], tokenizer)
    decoding = Decoding(max_new_tokens=8, k=3, do_sample=True, stop=(), seed=4)
    first = generate(model, tokenizer, [prompt, prompt], decoding)
    assert [len(g) for g in first] == [3, 3]
    again = generate(model, tokenizer, [prompt, prompt], decoding)
    assert [[g.text for g in row] for row in first] == [[g.text for g in row] for row in again]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_new_tokens": 0}, "Decoding.max_new_tokens must be >= 1"),
        ({"k": 2}, "Decoding.k must be 1 for greedy decoding"),
        ({"do_sample": True, "temperature": 0.0}, "Decoding.temperature must be > 0"),
        ({"top_p": 1.5}, r"Decoding.top_p must be in \(0, 1\]"),
        ({"stop": ("",)}, "Decoding.stop must not hold an empty string"),
        ({"max_new_tokens": 2.5}, "Decoding.max_new_tokens must be a whole number"),
    ],
)
def test_bad_decoding_settings_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        Decoding(**fields)


def test_a_prompt_over_the_context_gets_an_empty_failed_answer(tiny, samples, monkeypatch):
    model, tokenizer = tiny
    prompts = [prompt_text(s, tokenizer) for s in samples]
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    # a context that holds the shorter prompt and its budget, not the longer one
    monkeypatch.setattr(model.config, "max_position_embeddings", min(lengths) + 4)
    gens = generate(model, tokenizer, prompts, Decoding(max_new_tokens=4, batch_size=2))
    short, long = sorted(range(2), key=lengths.__getitem__)
    assert not gens[short][0].over_context and gens[short][0].new_tokens >= 1
    assert gens[long][0].over_context and gens[long][0].text == "" and not gens[long][0].stopped


def test_stop_strings_match_in_the_answer_only(tiny):
    from coursekit.evaluate.generate import _StopInAnswer

    _, tokenizer = tiny
    prompt = tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]

    def done(answer: str) -> bool:
        ids = prompt + tokenizer(answer, add_special_tokens=False)["input_ids"]
        stop = _StopInAnswer(tokenizer, ("\n```",), len(prompt))
        return bool(stop(torch.tensor([ids]), None)[0])

    # the prompt's last "\n" and the answer's opening fence do not make a stop
    assert not done("```") and not done("```rust\nfn t() {}")
    assert done("```rust\nfn t() {}\n```")


def test_repetition_control_defaults_to_the_models_own_generation_config(samples):
    # nano-base's generation_config.json sets no repetition control (nano's sets 6-grams)
    model, tokenizer = load_model("nano-base"), load_tokenizer("nano-base")
    prompts = [prompt_text(samples[0], tokenizer)]
    budget = Decoding(max_new_tokens=24, stop=("\n```",))

    def new_ids(decoding: Decoding) -> list[int]:
        (gen,) = generate(model, tokenizer, prompts, decoding)[0]
        return tokenizer(gen.text, add_special_tokens=False)["input_ids"]

    plain = new_ids(budget)
    model.generation_config.no_repeat_ngram_size = 1  # what a model directory may set
    try:
        blocked = new_ids(budget)
        explicit_off = new_ids(Decoding(max_new_tokens=24, stop=("\n```",), no_repeat_ngram_size=0))
    finally:
        model.generation_config.no_repeat_ngram_size = 0
    assert len(plain) != len(set(plain))  # nano-base repeats itself
    assert blocked != plain and explicit_off == plain
