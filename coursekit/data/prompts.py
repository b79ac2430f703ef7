r"""ChatML prompts for Rust test generation, with the loss masked to the answer.

A training example is the Qwen2.5-Coder-Instruct chat::

    <|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n
    <|im_start|>user\n{instruction + the function in a rust code block}<|im_end|>\n
    <|im_start|>assistant\n{the tests in a rust code block}<|im_end|>\n

Labels are -100 (ignored by the loss) everywhere except the assistant's answer and its
``<|im_end|>``, so the model learns to write tests, not to repeat the prompt.
Used by Phase 1's baseline fine-tune.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from coursekit.data.corpus import Sample

IGNORE_INDEX = -100
SYSTEM_PROMPT = (
    "You are an expert Rust developer. You write thorough, idiomatic unit tests that compile "
    "and pass, covering normal cases, edge cases and error paths."
)
INSTRUCTION = "Write unit tests for the following Rust function."


def rust_block(code: str) -> str:
    r"""Return ``code`` in a fenced ``rust`` block whose fence outlasts any backtick run in it.

    CommonMark closes a block only with a fence at least as long as the opening one, so code
    holding a line of three backticks (Markdown inside a Rust string) gets a fence of four.

    Example:
        >>> rust_block("let s = 1;")
        '```rust\nlet s = 1;\n```'
        >>> rust_block('let md = "```";').startswith("````rust")
        True
    """
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}rust\n{code}\n{fence}"


def user_message(sample: Sample) -> str:
    """Return the user turn: the instruction and the function (with its context) in a code block."""
    code = f"{sample.context.strip()}\n\n{sample.function.strip()}".strip()
    return f"{INSTRUCTION}\n\n{rust_block(code)}"


def assistant_message(sample: Sample) -> str:
    """Return the reference answer: the sample's tests in a rust code block."""
    return rust_block(sample.tests.strip())


def prompt_text(sample: Sample, tokenizer: Any) -> str:
    r"""Render the system and user turns plus ``<|im_start|>assistant\n`` (generation prompt)."""
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user_message(sample)},
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@dataclass(frozen=True, kw_only=True)
class EncodedExample:
    """One tokenized training example."""

    sample_id: str
    """The corpus id of the sample."""
    input_ids: tuple[int, ...]
    """Prompt and answer token ids, length s ≤ max_length."""
    labels: tuple[int, ...]
    """Same length as ``input_ids``; -100 on the prompt, the token id on the answer."""

    @property
    def target_tokens(self) -> int:
        """Number of tokens the loss is computed on."""
        return sum(label != IGNORE_INDEX for label in self.labels)


def encode_example(sample: Sample, tokenizer: Any, max_length: int) -> EncodedExample | None:
    """Tokenize one sample as prompt + answer, masking the prompt out of the labels.

    The answer (tests, ``<|im_end|>``, newline) is cut at ``max_length``; a sample whose prompt
    alone fills ``max_length`` has no target token and gives ``None``.

    Args:
        sample: a corpus record.
        tokenizer: a Qwen2.5-style tokenizer with its ChatML chat template.
        max_length: s, the longest sequence kept.

    Returns:
        The example, or ``None`` when nothing of the answer fits.

    Example:
        >>> example = encode_example(sample, tokenizer, 512)  # doctest: +SKIP
        >>> example.labels[0]  # doctest: +SKIP
        -100
    """
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 (got {max_length})")
    prompt_ids = tokenizer(prompt_text(sample, tokenizer), add_special_tokens=False)["input_ids"]
    answer = assistant_message(sample) + "<|im_end|>\n"
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    if len(prompt_ids) >= max_length:
        return None
    input_ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + answer_ids)[:max_length]
    return EncodedExample(sample_id=sample.id, input_ids=tuple(input_ids), labels=tuple(labels))
