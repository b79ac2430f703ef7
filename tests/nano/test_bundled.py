"""The committed Qwen2.5-Coder-nano: size, loading, architecture, and claims that could fail.

The claims are measured here on data committed with the repository (the corpus's function and
test text), independently of the numbers the build wrote into the model card.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from coursekit.data.corpus import load_splits
from coursekit.loading import load_model, load_tokenizer, repo_root, resolve_model
from coursekit.nano.evaluate import perplexity, unigram_perplexity
from coursekit.nano.text import rows, sample_rows, token_stream
from coursekit.recipes.bench.nano_vs_random import pretrained_vs_random
from coursekit.recipes.phase1_baseline import baseline_spec
from coursekit.tokenizer import QWEN25_CHAT_TEMPLATE, QWEN25_SPECIAL_TOKENS

NANO = repo_root() / "data" / "models" / "qwen2.5-coder-nano"
BASE = repo_root() / "data" / "models" / "qwen2.5-coder-nano-base"


def test_nano_is_the_bundled_default_and_fits_the_size_cap() -> None:
    assert Path(resolve_model("nano")) == NANO == Path(resolve_model("nano-instruct"))
    assert Path(resolve_model("nano-base")) == BASE
    for directory in (NANO, BASE):
        assert sum(p.stat().st_size for p in directory.iterdir()) <= 40_000_000
    assert baseline_spec().model == "nano"
    tuned = json.loads((NANO / "build.json").read_text())
    assert tuned["stage"] == "instruct" and tuned["base"] == "data/models/qwen2.5-coder-nano-base"


def test_loads_through_the_auto_classes_in_under_two_seconds() -> None:
    AutoTokenizer.from_pretrained(NANO)  # warm the imports, as a notebook's first cell does
    tick = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(NANO)
    tokenizer = AutoTokenizer.from_pretrained(NANO)
    assert time.perf_counter() - tick < 2.0
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert len(tokenizer) == model.config.vocab_size


@pytest.mark.parametrize("name", ["nano", "nano-base"])
def test_has_qwen2_coders_architecture_and_tokenizer(name: str) -> None:
    model = load_model(name)
    config = model.config
    assert (config.num_key_value_heads, config.tie_word_embeddings) == (2, True)
    assert config.rope_parameters["rope_theta"] == 1e6 and config.hidden_act == "silu"
    attention = model.model.layers[0].self_attn
    assert all(getattr(attention, p).bias is not None for p in ("q_proj", "k_proj", "v_proj"))
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert type(model.model.norm).__name__ == "Qwen2RMSNorm"
    params = sum(p.numel() for p in model.parameters())
    assert 3_000_000 <= params <= 8_000_000
    tokenizer = load_tokenizer(name)
    assert tokenizer.chat_template == QWEN25_CHAT_TEMPLATE
    vocab = config.vocab_size
    assert [tokenizer.convert_tokens_to_ids(t) for t in QWEN25_SPECIAL_TOKENS] == list(
        range(vocab - 22, vocab)
    )
    report = json.loads((BASE / "build.json").read_text())
    assert report["pretrain"]["parameters"] == params
    assert f"{params:,}" in (BASE / "README.md").read_text()


@pytest.fixture(scope="module")
def heldout() -> tuple:
    """Corpus text the model never trained on (validation + test crates), and training text."""
    tokenizer = load_tokenizer("nano-base")
    splits = load_splits(repo_root() / "data" / "corpus")
    text = lambda samples: [f"{s.context}\n{s.function}\n{s.tests}" for s in samples]  # noqa: E731
    held = token_stream(text([*splits["val"], *splits["test"]]), tokenizer)
    train = token_stream(text(splits["train"]), tokenizer)
    return tokenizer, sample_rows(rows(held, 256), 48, seed=0), train


@pytest.mark.heavy
def test_heldout_perplexity_is_far_below_the_unigram_baseline(heldout: tuple) -> None:
    """Falsifiable: a model that learnt only token frequencies would score the baseline."""
    _, picked, train = heldout
    model = load_model("nano-base")
    model_ppl = perplexity(model, picked)
    unigram_ppl = unigram_perplexity(train, picked, vocab_size=model.config.vocab_size)
    assert model_ppl < unigram_ppl / 5, (model_ppl, unigram_ppl)


@pytest.mark.heavy
def test_lora_from_nano_beats_lora_from_a_random_nano(tmp_path: Path) -> None:
    """Falsifiable: the same LoRA budget from random weights must end clearly worse."""
    spec = baseline_spec(model="nano", steps=10, eval_every=10, seq_len=256)
    result = pretrained_vs_random(
        spec, tmp_path, max_train_examples=32, max_val_examples=16, device="cpu"
    )
    pretrained, random = result["pretrained"], result["random"]
    assert pretrained["val_loss_end"] < random["val_loss_end"] - 1.0, result
    assert pretrained["val_examples"] == random["val_examples"]
