"""The nano tokenizer: Qwen2's pipeline and added tokens, trained with `tokenizers`."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from coursekit.nano.tokenizer import train_tokenizer
from coursekit.tokenizer import QWEN25_CHAT_TEMPLATE, QWEN25_SPECIAL_TOKENS

DOCS = ["pub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n"] * 30 + [
    "impl Stack {\n    fn push(&mut self, x: i64) { self.items.push(x); }\n}\n"
] * 30


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tokenizer(DOCS, tmp_path_factory.mktemp("tok") / "nano", vocab_size=320)


def test_loads_as_qwen2_with_qwens_added_tokens_last(trained: Path) -> None:
    tok = AutoTokenizer.from_pretrained(trained)
    assert type(tok).__name__ == "Qwen2Tokenizer" and len(tok) == 320
    ids = [tok.convert_tokens_to_ids(name) for name in QWEN25_SPECIAL_TOKENS]
    assert ids == list(range(298, 320))  # Qwen's order, after the base vocabulary
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|endoftext|>")
    assert tok.chat_template == QWEN25_CHAT_TEMPLATE
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert chat.startswith("<|im_start|>system\n") and "<|im_start|>user\nhi<|im_end|>" in chat
    assert tok.encode("<|im_start|>") == [tok.convert_tokens_to_ids("<|im_start|>")]


def test_learns_merges_and_splits_digits_like_qwen2(trained: Path) -> None:
    tok = AutoTokenizer.from_pretrained(trained)
    assert "Ġfn" in tok.get_vocab()  # merges were learnt, spelled byte-level
    assert len(tok.encode(DOCS[0])) < 0.6 * len(DOCS[0].encode())
    assert tok.tokenize("x123") == ["x", "1", "2", "3"]  # \p{N} one digit at a time


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_round_trips_any_nfc_text(trained: Path, text: str) -> None:
    tok = _cached(trained)
    normal = unicodedata.normalize("NFC", text)
    assert tok.decode(tok.encode(normal)) == normal


_TOKENIZERS: dict[Path, object] = {}


def _cached(path: Path):
    if path not in _TOKENIZERS:
        _TOKENIZERS[path] = AutoTokenizer.from_pretrained(path)
    return _TOKENIZERS[path]


def test_too_small_vocabulary_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"vocab_size must be >= 279 .* \(got 100\)"):
        train_tokenizer(DOCS, tmp_path / "t", vocab_size=100)
    assert not (tmp_path / "t").exists()
