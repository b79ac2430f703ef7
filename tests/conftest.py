"""Shared fixtures: a private cache directory for the whole session, tiny models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    """The tiny random Qwen2 checkpoint (with tokenizer), built once per session."""
    from coursekit.loading import resolve_model

    return Path(resolve_model("tiny"))
