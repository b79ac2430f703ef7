"""The tiny random Qwen2 model: its config and a writer of a checkpoint that loads like a real one.

Qwen2.5-Coder's architecture scaled down to 2 layers of width 64 (with Qwen2.5's vocabulary,
so the offline tokenizer fits), for smoke tests and CPU demos; ``--model tiny``
(:func:`coursekit.loading.resolve_model`) builds it once into the cache.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

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

    Args:
        out_dir: where to write (created; files in it are replaced).
        seed: torch seed for the initialisation (the same seed gives the same weights).
        with_tokenizer: also save the offline Qwen2.5 tokenizer into ``out_dir``.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Example:
        >>> path = tiny_qwen2(tmp_path / "tiny")  # doctest: +SKIP
        >>> load_model(path).config.num_hidden_layers  # doctest: +SKIP
        2
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(tiny_qwen2_config())
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(out)
    if with_tokenizer:
        from coursekit.tokenizer import load_qwen25_tokenizer

        load_qwen25_tokenizer().save_pretrained(out)
    return out
