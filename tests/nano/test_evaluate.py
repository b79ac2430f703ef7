"""Perplexity, the unigram baseline and the completion syntax check."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import Qwen2ForCausalLM

from coursekit.data.corpus import Sample
from coursekit.data.prompts import EncodedExample
from coursekit.nano.config import NanoConfig
from coursekit.nano.evaluate import (
    close_body,
    complete_signatures,
    parses,
    perplexity,
    pick_signatures,
    signature,
    unigram_perplexity,
)
from tests.nano.conftest import MICRO


def _model(seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(MICRO.qwen2_config({"<|endoftext|>": 0})).eval()


def test_perplexity_is_exp_of_transformers_mean_loss() -> None:
    model = _model()
    ids = torch.randint(0, MICRO.vocab_size, (3, 16))
    rows = [EncodedExample(sample_id=str(i), input_ids=tuple(r.tolist()), labels=tuple(r.tolist()))
            for i, r in enumerate(ids)]  # fmt: skip
    with torch.no_grad():
        expected = math.exp(model(input_ids=ids, labels=ids).loss.item())
    assert perplexity(model, rows, batch=2) == pytest.approx(expected, rel=1e-5)
    assert not model.training


def test_unigram_perplexity_by_hand() -> None:
    row = EncodedExample(sample_id="r", input_ids=(5, 1, 2), labels=(5, 1, 2))
    # counts of 1 and 2 are 3 and 0; p = (3+1)/(4+4) and (0+1)/8
    expected = math.exp(-(math.log(4 / 8) + math.log(1 / 8)) / 2)
    assert unigram_perplexity([1, 1, 1, 3], [row], vocab_size=4) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("completion", "cut"),
    [
        ("\n    1\n}\nfn g() {}", "\n    1\n}"),
        ("\n    let s = S { a: 1 };\n    s\n}", "\n    let s = S { a: 1 };\n    s\n}"),
        ("\n    loop {\n", None),
        ("}", "}"),
    ],
)
def test_close_body(completion: str, cut: str | None) -> None:
    assert close_body(completion) == cut


def test_signature_and_parses() -> None:
    function = "#[inline]\npub fn f<T: Clone>(x: &T) -> T where T: Copy {\n    *x\n}"
    assert signature(function) == function[: function.index("{\n") + 1]
    assert signature("struct S;") is None
    assert parses(function) and not parses("fn f( {")


def _sample(i: int, function: str) -> Sample:
    return Sample(id=f"s{i}", crate="c", version="1", license="MIT", path="src/lib.rs",
                  function=function, tests="#[test]\nfn t() {}")  # fmt: skip


def test_pick_signatures_skips_unparsable_long_and_duplicate_functions() -> None:
    samples = [
        _sample(0, "fn a() -> u8 {\n    1\n}"),
        _sample(1, "fn a() -> u8 {\n    1\n}"),
        _sample(2, "fn broken( {"),
        _sample(3, "fn long() {\n" + "    x();\n" * 40 + "}"),
        _sample(4, "fn b(x: u8) -> u8 {\n    x\n}"),
    ]
    picked = pick_signatures(samples, 5, seed=0)
    assert sorted(p for p, _ in picked) == [
        "// c/src/lib.rs\nfn a() -> u8 {", "// c/src/lib.rs\nfn b(x: u8) -> u8 {",
    ]  # fmt: skip
    assert pick_signatures(samples, 1, seed=0) == pick_signatures(samples, 1, seed=0)


class _ScriptedTokenizer:
    """Encodes anything to [1]; decodes to a fixed completion (the model's output is ignored)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def convert_tokens_to_ids(self, token: str) -> int:
        return 0

    def encode(self, prompt: str) -> list[int]:
        return [1]

    def decode(self, ids, skip_special_tokens: bool) -> str:
        return self.text


@pytest.mark.parametrize(
    ("text", "closed", "ok"),
    [("\n    1\n}\nmore", True, True), ("\n    let = ;\n}", True, False), ("\n  x", False, False)],
)
def test_complete_signatures_judges_the_cut_function(text: str, closed: bool, ok: bool) -> None:
    (done,) = complete_signatures(
        _model(), _ScriptedTokenizer(text), ["// c/src/lib.rs\nfn f() -> u8 {"], max_new_tokens=3
    )
    assert (done.closed, done.parses) == (closed, ok)
    assert done.completion == (close_body(text) if closed else text)


def test_default_config_fits_the_size_cap() -> None:
    assert NanoConfig().parameter_count() * 4 <= 40_000_000  # the cap on the directory
