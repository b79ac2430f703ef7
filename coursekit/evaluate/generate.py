"""Generate Rust tests for a function with a causal LM: greedy decoding of a ChatML prompt.

The prompt is the one the model is fine-tuned on (:func:`coursekit.data.prompts.prompt_text`:
system message, the function, the assistant's turn opened); decoding is greedy and stops at
``<|im_end|>`` or after ``max_new_tokens`` tokens. Only the new tokens are decoded, so the
result is the model's answer alone (special tokens dropped).

Used by the Phase 1 baseline recipe (:mod:`coursekit.recipes.phase1_baseline`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from coursekit.data.corpus import Sample
from coursekit.data.prompts import prompt_text


def generate_test(
    model: torch.nn.Module, tokenizer: Any, prompt: str, *, max_new_tokens: int = 96
) -> str:
    """Greedy-decode the model's answer to ``prompt`` (a test for the function it shows).

    Args:
        model: a causal LM (``generate``); put in eval mode.
        tokenizer: its tokenizer, with ``<|im_end|>`` and a padding token.
        prompt: the ChatML prompt text, e.g. ``prompt_text(sample, tokenizer)``.
        max_new_tokens: the token budget of the answer.

    Returns:
        The decoded new tokens (at most ``max_new_tokens``), special tokens dropped.

    Example:
        >>> print(generate_test(model, tokenizer, prompt_text(sample, tokenizer)))  # doctest: +SKIP
        #[test]
        fn adds() { assert_eq!(add(1, 2), 3); }
    """
    model.eval()
    encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    encoded = {k: v.to(model.device) for k, v in encoded.items()}
    output = model.generate(
        **encoded,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
    )
    return tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)


def generate_tests(
    model: torch.nn.Module, tokenizer: Any, samples: Sequence[Sample], *, max_new_tokens: int = 96
) -> list[dict[str, str]]:
    """Generate tests for each sample's function; return them beside the reference tests.

    Args:
        model: a causal LM.
        tokenizer: its tokenizer.
        samples: the functions to write tests for (their ``tests`` are the references).
        max_new_tokens: the token budget of each answer.

    Returns:
        One row per sample: ``id``, ``function``, ``reference`` and ``generated``.
    """
    model.eval()  # even with no samples: the model comes back in eval mode either way
    return [
        {
            "id": sample.id,
            "function": sample.function,
            "reference": sample.tests,
            "generated": generate_test(
                model, tokenizer, prompt_text(sample, tokenizer), max_new_tokens=max_new_tokens
            ),
        }
        for sample in samples
    ]
