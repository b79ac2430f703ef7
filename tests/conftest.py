"""Shared fixtures: a private cache directory for the whole session, tiny models."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    """The tiny random Qwen2 checkpoint (with tokenizer), built once per session."""
    from coursekit.loading import resolve_model

    return Path(resolve_model("tiny"))


@pytest.fixture(scope="session")
def make_tiny_qwen2() -> Callable[..., Any]:
    """The one tiny random Qwen2 factory: ``(seed, *, vocab_size, **sizes) -> fresh model``.

    See :func:`tests.tiny.make_tiny_qwen2`; code outside a test imports that function.
    """
    from tests.tiny import make_tiny_qwen2

    return make_tiny_qwen2


@pytest.fixture(scope="session")
def rustc() -> Path:
    """The Rust compiler the sandboxed tests compile with; the test is skipped without one."""
    from coursekit.evaluate.rust import RustNotFoundError, find_rustc

    try:
        return find_rustc()
    except RustNotFoundError as error:
        pytest.skip(f"rustc is needed: {error}")
