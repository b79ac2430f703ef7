"""Generate Rust tests for a function with a causal LM from the course's ChatML prompt.

The prompt is the one the model is fine-tuned on (:func:`coursekit.data.prompts.prompt_text`:
system message, the function, the assistant's turn opened). Only the new tokens are decoded,
so the result is the model's answer alone (special tokens dropped).

- :func:`generate_test` / :func:`generate_tests`: greedy, one prompt at a time, stopping at
  ``<|im_end|>`` or after ``max_new_tokens`` (the Phase 1 baseline recipe,
  :mod:`coursekit.recipes.phase1_baseline`).
- :func:`generate` with a :class:`Decoding`: batches of prompts sharing a KV cache, greedy or
  sampled, k answers per prompt, stop strings (the end of the code block), repetition
  control; each :class:`Generation` says whether it stopped by itself (for evaluation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria

from coursekit import codec
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


@dataclass(frozen=True, kw_only=True)
class Decoding:
    """How answers are decoded: greedy or sampled, k per prompt, stops, repetition control."""

    max_new_tokens: int = 192
    """Token budget of each answer."""
    k: int = 1
    """Answers per prompt (pass@k needs k > 1 and sampling)."""
    do_sample: bool = False
    """Sample (temperature, top-p) instead of greedy decoding."""
    temperature: float = 0.8
    """Softmax temperature when sampling."""
    top_p: float = 0.95
    """Nucleus sampling mass when sampling."""
    repetition_penalty: float | None = None
    """CTRL's penalty on tokens already generated (1 = off; arXiv 1909.05858 §4.1); None: the
    model's own default (its ``generation_config.json``; off unless it sets one)."""
    no_repeat_ngram_size: int | None = None
    """Forbid repeating any n-gram of this size (0 = off); None: the model's own default."""
    stop: tuple[str, ...] = ("\n```",)
    """Strings that end an answer (kept in it): the end of the code block by default."""
    batch_size: int = 8
    """Prompts decoded together (left-padded, one KV cache)."""
    seed: int = 0
    """Seed of sampling."""

    def __post_init__(self) -> None:
        codec.check_types(self)
        rules = [
            ("max_new_tokens", self.max_new_tokens >= 1, "must be >= 1"),
            ("k", self.k >= 1, "must be >= 1"),
            ("k", self.k == 1 or self.do_sample, "must be 1 for greedy decoding (set do_sample)"),
            ("temperature", 0 < self.temperature < math.inf, "must be > 0 and finite"),
            ("top_p", 0 < self.top_p <= 1, "must be in (0, 1]"),
            (
                "repetition_penalty",
                self.repetition_penalty is None or 0 < self.repetition_penalty < math.inf,
                "must be > 0",
            ),
            (
                "no_repeat_ngram_size",
                self.no_repeat_ngram_size is None or self.no_repeat_ngram_size >= 0,
                "must be >= 0",
            ),
            ("batch_size", self.batch_size >= 1, "must be >= 1"),
            ("stop", all(self.stop), "must not hold an empty string"),
        ]
        codec.check_rules(self, rules)


@dataclass(frozen=True, kw_only=True)
class Generation:
    """One decoded answer."""

    text: str
    """The answer, up to and including the first stop string."""
    new_tokens: int
    """Tokens generated for it (up to the stop)."""
    stopped: bool
    """True when it ended by itself (a stop string or ``<|im_end|>``), not by the budget."""
    over_context: bool = False
    """True when the prompt and the token budget do not fit the model's context
    (``max_position_embeddings``): nothing was decoded and the answer is empty, a failure."""


def _cut(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    ends = [text.find(stop) + len(stop) for stop in stops if stop in text]
    return (text[: min(ends)], True) if ends else (text, False)


@torch.inference_mode()
def generate(
    model: torch.nn.Module, tokenizer: Any, prompts: Sequence[str], decoding: Decoding
) -> list[list[Generation]]:
    """Decode ``decoding.k`` answers to each prompt, ``batch_size`` prompts at a time.

    Prompts are sorted by length and batched, so that padding stays small; a batch is
    left-padded and shares one KV cache. ``<|im_end|>`` and the stop strings end an answer.
    Greedy decoding of a batch gives the same tokens as one prompt at a time
    (tests/evaluate/test_generate.py checks it on nano). A prompt longer than the model's
    context less ``max_new_tokens`` is not decoded: its answers are empty and marked
    ``over_context`` (they fail the funnel's first stage; they are not dropped).

    Returns:
        One list of k ``Generation`` per prompt, in order.
    """
    model.eval()
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    context = getattr(model.config, "max_position_embeddings", None) or math.inf
    fits = [n + decoding.max_new_tokens <= context for n in lengths]
    order = sorted((i for i in range(len(prompts)) if fits[i]), key=lengths.__getitem__)
    empty = Generation(text="", new_tokens=0, stopped=False, over_context=True)
    results = {i: [empty] * decoding.k for i in range(len(prompts)) if not fits[i]}
    try:
        torch.manual_seed(decoding.seed)
        for start in range(0, len(order), decoding.batch_size):
            chosen = order[start : start + decoding.batch_size]
            encoded = tokenizer(
                [prompts[i] for i in chosen], return_tensors="pt", padding=True,
                add_special_tokens=False,
            )  # fmt: skip
            encoded = {key: value.to(model.device) for key, value in encoded.items()}
            stop = _StopInAnswer(tokenizer, decoding.stop, encoded["input_ids"].shape[1])
            kwargs = _generate_kwargs(decoding, tokenizer, end_id)
            output = model.generate(**encoded, **kwargs, stopping_criteria=[stop])
            new = output[:, encoded["input_ids"].shape[1] :]  # (b·k, ≤ max_new_tokens)
            rows = [_generation(row, tokenizer, end_id, decoding.stop) for row in new]
            for position, index in enumerate(chosen):
                results[index] = rows[position * decoding.k : (position + 1) * decoding.k]
    finally:
        tokenizer.padding_side = side
    return [results[i] for i in range(len(prompts))]


def _generate_kwargs(decoding: Decoding, tokenizer: Any, end_id: int) -> dict[str, Any]:
    sampling = {"temperature": decoding.temperature, "top_p": decoding.top_p}
    repetition = {
        name: getattr(decoding, name)
        for name in ("repetition_penalty", "no_repeat_ngram_size")
        if getattr(decoding, name) is not None  # else the model's generation_config.json
    }
    return {
        **repetition,
        "max_new_tokens": decoding.max_new_tokens,
        "do_sample": decoding.do_sample,
        **(sampling if decoding.do_sample else {"temperature": None, "top_p": None, "top_k": None}),
        "num_return_sequences": decoding.k,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": end_id,
    }


class _StopInAnswer(StoppingCriteria):
    r"""Stop a row once a stop string occurs in its *answer*.

    transformers' own ``stop_strings`` also match across the prompt's end: the prompt ends
    with ``assistant\n`` and the answer's first token ``````` made ``\n``````` there, so every
    answer stopped after its first token. This criterion decodes only the generated tokens
    (the last :data:`WINDOW` of them, enough for any stop string of a few tokens).
    """

    WINDOW = 24

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_length: int) -> None:
        self.tokenizer, self.stops, self.start = tokenizer, tuple(stops), prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        new = input_ids[:, self.start :]
        window = self.tokenizer.batch_decode(new[:, -self.WINDOW :], skip_special_tokens=True)
        done = [any(stop in text for stop in self.stops) for text in window]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _generation(row: torch.Tensor, tokenizer: Any, end_id: int, stops: Sequence[str]) -> Generation:
    ids = row.tolist()
    ended = end_id in ids
    ids = ids[: ids.index(end_id)] if ended else ids
    ids = [i for i in ids if i != tokenizer.pad_token_id]
    text, stopped = _cut(tokenizer.decode(ids, skip_special_tokens=True), stops)
    used = len(tokenizer(text, add_special_tokens=False)["input_ids"]) if stopped else len(ids)
    return Generation(text=text, new_tokens=min(used, len(ids)), stopped=stopped or ended)
