"""Tests for coursekit.tokenizer: the offline Qwen2.5 tokenizer built from tiktoken ranks."""

from __future__ import annotations

import base64
import json
import shutil
import unicodedata
from pathlib import Path

import pytest
import tiktoken
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from coursekit.errors import CoursekitError
from coursekit.tokenizer import (
    FORMAT_VERSION,
    QWEN2_SPLIT_REGEX,
    QWEN25_CHAT_TEMPLATE,
    QWEN25_SPECIAL_TOKENS,
    TokenizerResourceError,
    _bytes_to_unicode,
    _default_cache_dir,
    _default_ranks_path,
    _merge_pair,
    _read_ranks,
    build_qwen25_tokenizer,
    load_qwen25_tokenizer,
)

HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tok") / "qwen2.5"


@pytest.fixture(scope="module")
def tok(cache_dir: Path):
    """The tokenizer, built once for the whole module by load_qwen25_tokenizer."""
    return load_qwen25_tokenizer(cache_dir)


@pytest.fixture(scope="module")
def ranks() -> dict[bytes, int]:
    return _read_ranks(_default_ranks_path())


@pytest.fixture(scope="module")
def oracle(ranks: dict[bytes, int]) -> tiktoken.Encoding:
    """tiktoken over the same ranks and regex: the reference BPE the merges must reproduce."""
    return tiktoken.Encoding(
        name="qwen2.5-oracle", pat_str=QWEN2_SPLIT_REGEX, mergeable_ranks=ranks, special_tokens={}
    )


# --- goldens -------------------------------------------------------------------------------


def test_golden_hello_world(tok) -> None:
    assert tok.encode("Hello, world!") == [9707, 11, 1879, 0]


def test_golden_chatml_header(tok) -> None:
    # "<|im_start|>system\n" is [151644, 8948, 198] in every Qwen2.5 prompt dump.
    assert tok.encode("<|im_start|>system\n") == [151644, 8948, 198]
    assert tok.encode("<|im_start|>user")[0] == 151644
    assert tok.encode("<|im_start|>assistant") == [151644, 77091]


def test_special_tokens_encode_to_their_ids(tok) -> None:
    for name, token_id in QWEN25_SPECIAL_TOKENS.items():
        assert tok.encode(name) == [token_id]
        assert tok.convert_ids_to_tokens(token_id) == name


def test_vocabulary_size(tok) -> None:
    assert len(QWEN25_SPECIAL_TOKENS) == 22
    assert len(tok) == 151_643 + 22 == 151_665


def test_special_token_settings_match_qwen25(tok) -> None:
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == 151_645
    assert tok.pad_token == "<|endoftext|>" and tok.pad_token_id == 151_643
    assert tok.bos_token is None
    assert tok.model_max_length == 32768
    # Ids 151657..151664 (tool call, FIM, repo) are added but not "special", as in Qwen2.5.
    ids = [151_644, 151_659, *tok.encode("Hello")]
    assert tok.decode(ids, skip_special_tokens=True) == "<|fim_prefix|>Hello"


def test_special_tokens_mapping_is_immutable() -> None:
    with pytest.raises(TypeError):
        QWEN25_SPECIAL_TOKENS["<|new|>"] = 1  # type: ignore[index]


def test_tokenizer_json_has_qwen2_pipeline(cache_dir: Path, tok) -> None:
    data = json.loads((cache_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert data["normalizer"] == {"type": "NFC"}
    split, byte_level = data["pre_tokenizer"]["pretokenizers"]
    assert split["pattern"] == {"Regex": QWEN2_SPLIT_REGEX}
    assert split["behavior"] == "Isolated"
    assert byte_level["type"] == "ByteLevel" and not byte_level["use_regex"]
    assert data["decoder"]["type"] == "ByteLevel"
    merges = data["model"]["merges"]
    assert len(merges) == 151_643 - 256  # one merge per multi-byte token
    assert merges[:3] == [["Ġ", "Ġ"], ["ĠĠ", "ĠĠ"], ["i", "n"]]


# --- round trips and exactness -------------------------------------------------------------


@HYPOTHESIS
@given(text=st.text())
def test_roundtrip_arbitrary_text(tok, text: str) -> None:
    # Qwen2's normalizer is NFC: encoding composes e.g. "e" + U+0301 into "é" first, so the
    # round trip returns the NFC form of the text rather than its original code points.
    assert tok.decode(tok.encode(text)) == unicodedata.normalize("NFC", text)


@HYPOTHESIS
@given(text=st.text())
def test_matches_tiktoken_on_arbitrary_text(tok, oracle: tiktoken.Encoding, text: str) -> None:
    # The recovered merges are exact iff HF's BPE gives tiktoken's ids on every input.
    # (Hypothesis mines string literals such as "<tool_call>"; those are added tokens.)
    assume(not any(name in text for name in QWEN25_SPECIAL_TOKENS))
    assert tok.encode(text) == oracle.encode_ordinary(unicodedata.normalize("NFC", text))


RUST_SNIPPETS = [
    'fn main() {\n    println!("Hello, world!");\n}\n',
    "impl<'a, T: Clone + Send> Iterator for Iter<'a, T> {\n"
    "    type Item = &'a T;\n"
    "    fn next(&mut self) -> Option<Self::Item> { self.inner.next() }\n}\n",
    "#[derive(Debug, Clone, PartialEq)]\npub struct Point { x: f64, y: f64 }\n",
    "let v: Vec<u32> = (0..10).map(|x| x * x).filter(|&x| x % 2 == 0).collect();\n",
    "match r {\n\tOk(v) => v,\n\tErr(e) => return Err(e.into()),\n}\r\n",
    "/// Doc comment with ünïcödé and 中文.\nconst MAX: usize = 1_000_000;\n",
    "async fn fetch() -> Result<(), Box<dyn std::error::Error>> { Ok(()) }",
]
RUST_TOKENS = st.sampled_from(
    [
        "fn", "let", "mut", "pub", "impl", "struct", "enum", "match", "if", "else", "for",
        "while", "loop", "return", "use", "mod", "crate", "self", "Self", "where", "async",
        "await", "dyn", "&", "&mut", "'a", "->", "=>", "::", ";", ",", ".", "?", "!", "{", "}",
        "(", ")", "[", "]", "<", ">", "=", "==", "+=", "|", "||", "#[derive(Debug)]", "//",
        "/*", "*/", '"', "'", "\\n", "0x1F", "1_000", "3.14", "u8", "i64", "String", "Vec",
        "Option", "Result", "println!", "vec!", "unwrap()", "é", "→",
    ]
)  # fmt: skip
RUST_SPACE = st.sampled_from([" ", "  ", "    ", "\n", "\n    ", "\n\n", "\t", "\r\n", ""])
RUST_IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
RUST_SOURCE = st.one_of(
    st.sampled_from(RUST_SNIPPETS),
    st.lists(st.tuples(st.one_of(RUST_TOKENS, RUST_IDENT), RUST_SPACE), max_size=40).map(
        lambda pairs: "".join(word + space for word, space in pairs)
    ),
)


@HYPOTHESIS
@given(source=RUST_SOURCE)
def test_roundtrip_rust_source(tok, oracle: tiktoken.Encoding, source: str) -> None:
    ids = tok.encode(source)
    assert tok.decode(ids) == source  # the snippets are already NFC
    assert ids == oracle.encode_ordinary(source)


def test_merge_pair_replays_bpe_in_rank_order() -> None:
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"bc": 3, b"ab": 4, b"abc": 5}
    # "bc" outranks "ab", so BPE builds a + bc, not ab + c.
    assert _merge_pair(b"abc", 5, ranks) == (b"a", b"bc")
    assert _merge_pair(b"ab", 4, ranks) == (b"a", b"b")


def test_bytes_to_unicode_is_gpt2_table() -> None:
    table = _bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert table[ord("A")] == "A" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"


# --- chat template -------------------------------------------------------------------------


def test_chat_template_system_user_generation_prompt(tok) -> None:
    messages = [
        {"role": "system", "content": "You are a Rust tutor."},
        {"role": "user", "content": "What is a borrow?"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a Rust tutor.<|im_end|>\n"
        "<|im_start|>user\nWhat is a borrow?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_chat_template_default_system_and_assistant_turn(tok) -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. "
        "You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
    )


def test_chat_template_tools_branch(tok) -> None:
    tool = {"type": "function", "function": {"name": "cargo_check", "parameters": {}}}
    call = {"function": {"name": "cargo_check", "arguments": {}}}
    messages = [
        {"role": "user", "content": "Check it"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "ok"},
    ]
    text = tok.apply_chat_template(messages, tools=[tool], tokenize=False)
    assert text.startswith(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
        "assistant.\n\n# Tools\n\nYou may call one or more functions"
    )
    assert '<tools>\n{"type": "function"' in text
    assert '<|im_start|>assistant\n<tool_call>\n{"name": "cargo_check", "arguments": {}}\n' in text
    assert text.endswith("<|im_start|>user\n<tool_response>\nok\n</tool_response><|im_end|>\n")


def test_saved_config_carries_template(cache_dir: Path, tok) -> None:
    config = json.loads((cache_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["chat_template"] == QWEN25_CHAT_TEMPLATE
    assert config["tokenizer_class"] == "Qwen2Tokenizer"


# --- building, loading, caching ------------------------------------------------------------


def test_auto_tokenizer_loads_the_cache(cache_dir: Path, tok) -> None:
    again = AutoTokenizer.from_pretrained(cache_dir)
    assert again.encode("Hello, world!") == [9707, 11, 1879, 0]


def test_cache_is_reused(cache_dir: Path, tok) -> None:
    before = (cache_dir / "tokenizer.json").stat().st_mtime_ns
    load_qwen25_tokenizer(cache_dir)
    assert (cache_dir / "tokenizer.json").stat().st_mtime_ns == before


def test_default_cache_dir_follows_xdg(
    cache_dir: Path, tok, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    expected = tmp_path / "coursekit" / f"qwen2.5-tokenizer-{FORMAT_VERSION}"
    assert _default_cache_dir() == expected
    shutil.copytree(cache_dir, expected)  # pre-seed so the default load needs no build
    assert load_qwen25_tokenizer().encode("Hello") == [9707]


def test_default_cache_dir_ignores_relative_xdg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    assert _default_cache_dir().is_absolute()
    assert _default_cache_dir().parts[-3:-1] == (".cache", "coursekit")


def test_stale_cache_format_triggers_rebuild(cache_dir: Path, tok, tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    shutil.copytree(cache_dir, stale)
    (stale / "coursekit-tokenizer-format.txt").write_text("v0\n", encoding="utf-8")
    # The rebuild is attempted (and fails on the bogus ranks path), proving the cache was rejected.
    with pytest.raises(TokenizerResourceError, match="not found"):
        load_qwen25_tokenizer(stale, ranks_path=tmp_path / "missing.tiktoken")
    assert (stale / "tokenizer.json").is_file()  # a failed rebuild leaves the old cache intact


def test_build_replaces_existing_directory(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "qwen"
    out.mkdir(parents=True)
    (out / "leftover.txt").write_text("old", encoding="utf-8")
    assert build_qwen25_tokenizer(out) == out
    names = sorted(p.name for p in out.parent.iterdir())
    assert names == ["qwen"]  # no staging or old directories left behind
    assert not (out / "leftover.txt").exists()
    assert {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} <= {
        p.name for p in out.iterdir()
    }


# --- bad input -----------------------------------------------------------------------------


def test_missing_ranks_file(tmp_path: Path) -> None:
    with pytest.raises(CoursekitError, match=r"missing\.tiktoken not found"):
        build_qwen25_tokenizer(tmp_path / "out", ranks_path=tmp_path / "missing.tiktoken")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "line", ["IQ==\n", "IQ== zero\n", "not*base64 0\n", "IQ== 0 extra\n"], ids=str.strip
)
def test_corrupt_ranks_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.tiktoken"
    path.write_text("Ig== 1\n" + line, encoding="ascii")
    with pytest.raises(TokenizerResourceError, match=r"bad\.tiktoken:2: expected"):
        build_qwen25_tokenizer(tmp_path / "out", ranks_path=path)


def test_truncated_ranks_file(tmp_path: Path) -> None:
    path = tmp_path / "short.tiktoken"
    lines = [f"{base64.b64encode(bytes([b])).decode()} {b}" for b in range(256)]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    with pytest.raises(TokenizerResourceError, match="holds 256 ranks"):
        load_qwen25_tokenizer(tmp_path / "cache", ranks_path=path)


def test_unreachable_token_is_reported() -> None:
    ranks = {b"a": 0, b"b": 1, b"c": 2, b"abc": 3}
    with pytest.raises(TokenizerResourceError, match="cannot be built"):
        _merge_pair(b"abc", 3, ranks)
