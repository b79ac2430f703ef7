r"""Measure the nano model: held-out perplexity beside a unigram baseline, completion syntax.

Perplexity over the n next-token targets of a set of rows (each row's tokens 2..s):

    PPL = exp( −(1/n) Σ log p(x_t | x_<t) )

The unigram baseline predicts every token from its training-text frequency alone, with
add-one smoothing over the V ids: p(v) = (c_v + 1) / (Σ c + V), scored on the same targets.
A model that learnt nothing beyond token frequencies scores the baseline.

The syntax rate: a held-out function's signature (up to and including its body's ``{``, after
the ``// crate/path`` line its file started with in pretraining) is completed greedily; the
completion is cut where its braces first balance and the whole function is parsed with
tree-sitter. It counts as parsing only when the braces balanced within the token budget and
the tree has no ERROR or MISSING node.

Guide: docs/nano.md.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from coursekit.data.corpus import Sample
from coursekit.data.prompts import EncodedExample
from coursekit.data.rust_syntax import parse


@torch.no_grad()
def perplexity(model: torch.nn.Module, rows: Sequence[EncodedExample], *, batch: int = 8) -> float:
    """Return the perplexity of ``model`` on the next-token targets of ``rows`` (equal lengths).

    Shapes: a batch of ids (b, s) gives logits (b, s, V); targets are ids[:, 1:].
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(rows), batch):
        ids = torch.tensor([r.input_ids for r in rows[start : start + batch]])
        logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()  # (b, s-1, V)
        targets = ids[:, 1:]
        total += torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum"
        ).item()
        count += targets.numel()
    model.train(was_training)
    return math.exp(total / count)


def target_bytes(tokenizer: Any, rows: Sequence[EncodedExample]) -> int:
    """Return the UTF-8 bytes of the text the targets of ``rows`` (tokens 2..s) decode to.

    With it, perplexities of models with different tokenizers compare per byte:
    bits per byte = log2(PPL) · n / bytes, n the number of targets.
    """
    decode = lambda ids: tokenizer.decode(ids, skip_special_tokens=False)  # noqa: E731
    return sum(len(decode(list(r.input_ids[1:])).encode("utf-8")) for r in rows)


def heldout_bits_per_byte(
    model_dir: Any, documents: Sequence[str], *, seq_len: int, count: int, seed: int
) -> dict[str, float]:
    """Return a model directory's perplexity and bits per byte on ``documents``.

    The documents are encoded with the model's own tokenizer, cut into rows of ``seq_len``
    and ``count`` rows are drawn with ``seed`` (:mod:`coursekit.nano.text`), so models with
    different vocabularies are compared on the same text.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from coursekit.nano.text import rows, sample_rows, token_stream

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    picked = sample_rows(rows(token_stream(documents, tokenizer), seq_len), count, seed)
    ppl = perplexity(model, picked)
    size = target_bytes(tokenizer, picked)
    n = len(picked) * (seq_len - 1)
    return {"perplexity": ppl, "bits_per_byte": math.log2(ppl) * n / size, "bytes": size,
            "targets": n}  # fmt: skip


def unigram_perplexity(
    train_stream: Sequence[int], rows: Sequence[EncodedExample], vocab_size: int
) -> float:
    """Return the add-one unigram model's perplexity on the targets of ``rows``.

    Example:
        >>> r = EncodedExample(sample_id="r", input_ids=(0, 1, 1), labels=(0, 1, 1))
        >>> round(unigram_perplexity([1, 1, 1, 0], [r], vocab_size=2), 4)  # p(1) = 4/6
        1.5
    """
    counts = Counter(train_stream)
    denominator = len(train_stream) + vocab_size
    nll, n = 0.0, 0
    for row in rows:
        for token in row.input_ids[1:]:
            nll -= math.log((counts.get(token, 0) + 1) / denominator)
            n += 1
    return math.exp(nll / n)


def signature(function: str) -> str | None:
    r"""Return a function's text up to and including its body's ``{`` (None: no body found).

    Example:
        >>> signature("/// Doc.\npub fn one() -> i32 {\n    1\n}")
        '/// Doc.\npub fn one() -> i32 {'
    """
    source = function.encode("utf-8")
    for node in parse(function).root_node.named_children:
        body = node.child_by_field_name("body") if node.type == "function_item" else None
        if body is not None:
            return source[: body.start_byte + 1].decode("utf-8", errors="replace")
    return None


def close_body(completion: str) -> str | None:
    r"""Cut ``completion`` (text after a body's ``{``) where the braces first balance.

    Example:
        >>> close_body("\n    if x { 1 } else { 2 }\n}\nfn next() {}")
        '\n    if x { 1 } else { 2 }\n}'
        >>> close_body("\n    x +") is None
        True
    """
    depth = 1
    for i, char in enumerate(completion):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0:
            return completion[: i + 1]
    return None


def parses(source: str) -> bool:
    """Return True when tree-sitter parses ``source`` without an ERROR or MISSING node.

    Example:
        >>> parses("fn f() { 1 }"), parses("fn f() { let = ; }")
        (True, False)
    """
    return not parse(source).root_node.has_error


def pick_signatures(samples: Sequence[Sample], count: int, seed: int) -> list[tuple[str, str]]:
    r"""Return ``count`` (prompt, reference function) pairs from distinct held-out functions.

    The prompt is ``// <crate>/<path>\\n`` and the function's signature. Functions that do not
    parse on their own or are longer than 30 lines are skipped; the pick is seeded.
    """
    pool = sorted(
        {s.function: s for s in samples if s.function.count("\n") < 30}.values(),
        key=lambda s: s.id,
    )
    random.Random(seed).shuffle(pool)
    picked = []
    for sample in pool:
        if len(picked) >= count:
            break
        head = signature(sample.function) if parses(sample.function) else None
        if head is not None:
            picked.append((f"// {sample.crate}/{sample.path}\n{head}", sample.function))
    return picked


@dataclass(frozen=True, kw_only=True)
class Completion:
    """One greedy completion of a held-out signature."""

    prompt: str
    """The file line and the signature."""
    completion: str
    """The generated text after the prompt, cut where the body closes (or all of it)."""
    closed: bool
    """The braces balanced within the token budget."""
    parses: bool
    """The signature plus the cut completion parse without errors."""


@torch.no_grad()
def complete_signatures(
    model: torch.nn.Module, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int = 192
) -> list[Completion]:
    """Complete each prompt greedily and check the resulting function with tree-sitter."""
    model.eval()
    end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    out = []
    for prompt in prompts:
        ids = torch.tensor([tokenizer.encode(prompt)])
        room = model.config.max_position_embeddings - ids.shape[1]  # RoPE positions trained
        budget = max(min(max_new_tokens, room), 1)
        generated = model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=budget,
            do_sample=False, eos_token_id=end, pad_token_id=end,
        )  # fmt: skip
        text = tokenizer.decode(generated[0, ids.shape[1] :], skip_special_tokens=True)
        body = close_body(text)
        signature_only = prompt.split("\n", 1)[1]
        ok = body is not None and parses(signature_only + body)
        out.append(
            Completion(prompt=prompt, completion=body if body is not None else text,
                       closed=body is not None, parses=ok)
        )  # fmt: skip
    return out
