"""The fixture crates' corpus and the micro nano config (also used by tests/recipes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coursekit.corpus.build import BuildConfig, build_corpus
from coursekit.corpus.sources import discover_crates
from coursekit.nano.config import NanoConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crates"
MICRO = NanoConfig(
    vocab_size=300, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
    num_key_value_heads=1, intermediate_size=32, max_position_embeddings=64, seq_len=16,
    micro_batch_size=2, steps=4, warmup_steps=1, eval_every=2, eval_rows=2, heldout_rows=4,
)  # fmt: skip


@pytest.fixture(scope="package")
def fixture_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus of the fixture crates: ``mini`` trains, ``macros`` and ``props`` are held out."""
    out = tmp_path_factory.mktemp("nano-corpus")
    config = BuildConfig(tokens=False, verify="none", val_fraction=0.3, test_fraction=0.0)
    build_corpus(discover_crates([FIXTURES]), out, config)
    return out
