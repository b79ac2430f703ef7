from __future__ import annotations

import pytest

from coursekit.data.corpus import load_splits, seed_dir
from coursekit.data.prompts import (
    IGNORE_INDEX,
    SYSTEM_PROMPT,
    assistant_message,
    encode_example,
    prompt_text,
    user_message,
)
from coursekit.tokenizer import load_qwen25_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_qwen25_tokenizer()


@pytest.fixture(scope="module")
def sample():
    return load_splits(seed_dir())["train"][0]


def test_prompt_is_qwen_chatml_with_the_function_in_a_rust_block(tokenizer, sample):
    text = prompt_text(sample, tokenizer)
    assert text.startswith(f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n")
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert "```rust\n" in user_message(sample) and sample.function.strip() in text
    assert assistant_message(sample).startswith("```rust\n")


def test_labels_cover_exactly_the_answer_and_its_im_end(tokenizer, sample):
    example = encode_example(sample, tokenizer, 4096)
    prompt_len = len(tokenizer(prompt_text(sample, tokenizer))["input_ids"])
    assert example.labels[:prompt_len] == (IGNORE_INDEX,) * prompt_len
    answer = [t for t in example.labels if t != IGNORE_INDEX]
    assert list(example.input_ids[prompt_len:]) == answer
    decoded = tokenizer.decode(answer)
    assert decoded == assistant_message(sample) + "<|im_end|>\n"
    assert example.target_tokens == len(answer)


def test_long_answers_are_cut_and_prompts_that_fill_the_window_dropped(tokenizer, sample):
    prompt_len = len(tokenizer(prompt_text(sample, tokenizer))["input_ids"])
    cut = encode_example(sample, tokenizer, prompt_len + 5)
    assert len(cut.input_ids) == prompt_len + 5 and cut.target_tokens == 5
    assert encode_example(sample, tokenizer, prompt_len) is None
    with pytest.raises(ValueError, match="max_length"):
        encode_example(sample, tokenizer, 1)
