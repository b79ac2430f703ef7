"""The tokenization cache: hits, misses, invalidation, persistence."""

from __future__ import annotations

import dataclasses

from coursekit.data.corpus import Sample
from coursekit.data.prompts import encode_example
from coursekit.data.tokenized import TokenCache, sample_key, tokenizer_fingerprint


class CharTokenizer:
    """One token per character: enough of a tokenizer for ``encode_example``."""

    chat_template = "chatml"

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset
        self.calls = 0

    def get_vocab(self) -> dict[str, int]:
        return {"offset": self.offset}

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True) -> str:
        body = "".join(f"<{m['role']}>{m['content']}" for m in messages)
        return body + ("<assistant>" if add_generation_prompt else "")

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        self.calls += 1
        return {"input_ids": [(ord(c) + self.offset) % 500 + 1 for c in text]}


def sample(name: str, tests: str = "#[test] fn t() {}") -> Sample:
    return Sample(
        id=name, crate="demo", version="0.1.0", license="MIT", path="src/lib.rs",
        function="fn one() -> i32 { 1 }", tests=tests,
    )  # fmt: skip


def test_encode_matches_encode_example_and_is_cached(tmp_path) -> None:
    tokenizer, samples = CharTokenizer(), [sample("a"), sample("b", tests="#[test] fn u() {}")]
    cache = TokenCache(tmp_path)
    first = cache.encode(samples, tokenizer, 512)
    assert first == [encode_example(s, tokenizer, 512) for s in samples]
    calls = tokenizer.calls
    assert cache.encode(samples, tokenizer, 512) == first
    assert tokenizer.calls == calls and cache.encoded == 2
    # a fresh cache reads the file written by the first one
    again = TokenCache(tmp_path)
    assert again.encode(samples, tokenizer, 512) == first and again.encoded == 0


def test_edited_sample_other_tokenizer_or_seq_len_is_re_encoded(tmp_path) -> None:
    cache = TokenCache(tmp_path, persist=False)
    cache.encode([sample("a")], CharTokenizer(), 512)
    cache.encode([sample("a", tests="#[test] fn changed() {}")], CharTokenizer(), 512)
    cache.encode([sample("a")], CharTokenizer(offset=1), 512)
    cache.encode([sample("a")], CharTokenizer(), 256)
    assert cache.encoded == 4
    assert not list(tmp_path.iterdir())  # persist=False writes nothing


def test_examples_without_a_target_are_left_out(tmp_path) -> None:
    assert TokenCache(tmp_path).encode([sample("a")], CharTokenizer(), 20) == []


def test_keys_and_fingerprints() -> None:
    one = sample("a")
    assert sample_key(one) == sample_key(dataclasses.replace(one))
    assert sample_key(one) != sample_key(dataclasses.replace(one, tests="x"))
    assert sample_key(one).startswith("a@")
    assert tokenizer_fingerprint(CharTokenizer()) != tokenizer_fingerprint(CharTokenizer(1))


def test_default_directory_is_under_the_user_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert TokenCache().directory == tmp_path / "coursekit" / "tokenized"
