"""The tiny random Qwen2 model: its config and a writer of a checkpoint that loads like a real one.

Qwen2.5-Coder's architecture scaled down to 2 layers of width 64 (with Qwen2.5's vocabulary,
so the offline tokenizer fits), for smoke tests and CPU demos; ``--model tiny``
(:func:`coursekit.loading.resolve_model`) builds it once into the cache.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from coursekit.errors import cannot_write
from coursekit.io import atomic_directory, fsync_dir
from coursekit.presets import PRESETS, qwen2_config


def tiny_qwen2_config(**overrides: Any) -> Qwen2Config:
    """Return a 2-layer Qwen2 config with Qwen2.5's vocabulary for smoke tests.

    d = 64, n_h = 4, n_kv = 2 (grouped-query attention, h_d = 16), d_ff = 128, V = 151,936
    (so the offline Qwen2.5 tokenizer fits), tied embeddings, RoPE θ = 1e6 as in the real model.
    """
    fields: dict[str, Any] = {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 128,
        "max_position_embeddings": 2048,
    }
    fields.update(overrides)
    return qwen2_config(PRESETS["qwen2.5-coder-0.5b"], **fields)


def tiny_qwen2(
    out_dir: str | os.PathLike[str], *, seed: int = 0, with_tokenizer: bool = True
) -> Path:
    """Write a randomly initialised tiny Qwen2 checkpoint that loads like a real one.

    The directory holds ``config.json`` and ``model.safetensors`` (``save_pretrained``) and,
    with ``with_tokenizer``, the offline Qwen2.5 tokenizer, so that
    ``AutoModelForCausalLM.from_pretrained(out_dir)`` and ``AutoTokenizer.from_pretrained``
    take exactly the path a downloaded checkpoint takes. Its weights are random: it is for
    smoke tests and CPU demos, and its generations are noise.

    The files are written to a hidden staging directory first, so a failed write leaves
    ``out_dir`` as it was.

    Args:
        out_dir: where to write (created; files of the same names in it are replaced, other
            files are kept).
        seed: torch seed for the initialisation (the same seed gives the same weights).
        with_tokenizer: also save the offline Qwen2.5 tokenizer into ``out_dir``.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises:
        CoursekitError: ``out_dir`` cannot be written (named, with the reason).

    Example:
        >>> path = tiny_qwen2(tmp_path / "tiny")  # doctest: +SKIP
        >>> load_model(path).config.num_hidden_layers  # doctest: +SKIP
        2
    """
    out = Path(out_dir)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(tiny_qwen2_config())
    finally:
        torch.random.set_rng_state(generator_state)
    tokenizer = None
    if with_tokenizer:
        from coursekit.tokenizer import load_qwen25_tokenizer

        tokenizer = load_qwen25_tokenizer()
    try:
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(out))
        if not out.is_dir():
            with atomic_directory(out) as staging:
                _save(model, tokenizer, staging)
            return out
        staging = Path(tempfile.mkdtemp(prefix=".tiny-", suffix=".tmp", dir=out))
        try:
            _save(model, tokenizer, staging)
            for path in sorted(staging.iterdir()):
                os.replace(path, out / path.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        fsync_dir(out)
    except OSError as error:
        raise cannot_write(out, "the tiny model", error) from None
    return out


def _save(model: Qwen2ForCausalLM, tokenizer: Any, directory: Path) -> None:
    """Write the model (and tokenizer, if any) into ``directory`` with ``save_pretrained``."""
    model.save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
