"""The planner: examples from the README, the rank optimizer and its invariants."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.adapters import AdapterConfig
from coursekit.errors import CoursekitError
from coursekit.memory.estimate import GIB, estimate
from coursekit.memory.planner import (
    RANKS,
    DoesNotFit,
    adapter_for,
    best_rank,
    candidates,
    model_config_from,
    plan,
)
from coursekit.presets import preset_config
from coursekit.tiny import tiny_qwen2_config
from coursekit.train.config import TrainConfig

MODELS = {name: preset_config(f"qwen2.5-coder-{name}") for name in ("0.5b", "7b", "32b")}


def summary(result):
    adapter = result.adapter_config
    return (
        result.method,
        None if adapter is None else adapter.rank,
        result.train_config.micro_batch_size,
        result.train_config.seq_len,
        result.train_config.gradient_checkpointing,
    )


# The worked examples of docs/memory.md (bf16, AdamW, request: 8 × 512 tokens per step).
EXAMPLES = [
    ("0.5b", 8, ("lora", 256, 4, 512, True)),
    ("7b", 8, ("qlora", 16, 1, 512, True)),
    ("7b", 16, ("qlora", 128, 4, 512, True)),
    ("7b", 24, ("lora", 128, 2, 512, True)),
    ("32b", 24, ("qlora", 16, 2, 512, True)),
    ("32b", 80, ("lora", 64, 4, 512, True)),
]


@pytest.mark.parametrize(("model", "gigabytes", "expected"), EXAMPLES)
def test_planner_examples(model, gigabytes, expected):
    result = plan(gigabytes * GIB, MODELS[model])
    assert summary(result) == expected
    assert result.estimate.total_bytes <= gigabytes * GIB
    assert result.train_config.sequences_per_step >= 8
    assert f"{gigabytes:.2f} GiB" in result.describe()


def test_full_fine_tune_of_05b_misses_8gb_by_its_optimizer():
    train = TrainConfig(
        precision="bf16",
        micro_batch_size=1,
        gradient_accumulation=8,
        seq_len=128,
        gradient_checkpointing=True,
    )
    breakdown = estimate(MODELS["0.5b"], None, train)
    assert breakdown.total_bytes > 10 * GIB  # 16 bytes per parameter (ZeRO §3.1) + AdamW step
    assert breakdown.dominant_term == "optimizer_states"
    assert breakdown.optimizer_states == 12 * 494_032_768


@pytest.mark.parametrize(("model", "gigabytes"), [("32b", 8), ("7b", 4)])
def test_does_not_fit_names_minimum_and_dominant_term(model, gigabytes):
    with pytest.raises(DoesNotFit, match="dominated by base_weights") as caught:
        plan(gigabytes * GIB, MODELS[model])
    assert caught.value.minimum_bytes > gigabytes * GIB
    assert caught.value.dominant_term == "base_weights"


def test_methods_can_be_restricted():
    result = plan(80 * GIB, MODELS["0.5b"], methods=("lora",))
    assert result.method == "lora" and result.adapter_config.rank == RANKS[-1]
    assert plan(80 * GIB, MODELS["0.5b"]).method == "full"
    assert plan(80 * GIB, MODELS["0.5b"]).to_dict()["rank"] is None


def test_best_rank_is_the_largest_that_fits():
    train = TrainConfig(precision="bf16", micro_batch_size=1, gradient_checkpointing=True)
    adapter = AdapterConfig(targets="all-linear", base_quantization="nf4")
    rank = best_rank(8 * GIB, MODELS["7b"], adapter, train)
    assert rank in RANKS
    fits = estimate(
        MODELS["7b"], AdapterConfig(rank=rank, targets="all-linear", base_quantization="nf4"), train
    )
    assert fits.total_bytes <= 8 * GIB
    if rank != RANKS[-1]:
        bigger = AdapterConfig(
            rank=RANKS[RANKS.index(rank) + 1], targets="all-linear", base_quantization="nf4"
        )
        assert estimate(MODELS["7b"], bigger, train).total_bytes > 8 * GIB
    with pytest.raises(DoesNotFit, match="qlora"):
        best_rank(4 * GIB, MODELS["7b"], adapter, train)


def test_candidates_keep_the_effective_batch():
    request = TrainConfig(micro_batch_size=8, seq_len=512)
    for _, _, train in candidates(request, ("full",), "qv"):
        assert train.sequences_per_step >= 8
        assert train.seq_len >= 128


@pytest.mark.parametrize("budget", [0, -GIB, math.inf, math.nan, True, "8"])
def test_a_budget_that_is_not_a_finite_positive_number_is_refused(budget):
    with pytest.raises(ValueError, match=r"budget_bytes must be a finite number > 0 \(got "):
        plan(budget, MODELS["0.5b"])


def test_bad_requests():
    with pytest.raises(ValueError, match="methods must be"):
        plan(GIB, MODELS["0.5b"], methods=("prefix-tuning",))
    with pytest.raises(ValueError, match="method must be one of"):
        adapter_for("ia3", 8, "qv")


def test_model_config_from_preset_tiny_and_directory(tmp_path):
    assert model_config_from("qwen2.5-coder-7b").hidden_size == 3584
    assert model_config_from("tiny").hidden_size == 64
    tiny_qwen2_config(hidden_size=96).save_pretrained(tmp_path)
    assert model_config_from(str(tmp_path)).hidden_size == 96
    with pytest.raises(ValueError, match="neither a preset nor a directory"):
        model_config_from("gpt-5")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('{"model_type": "qwen2", ', "not a valid JSON model config"),
        ('{"model_type": "qwen2", "hidden_size": "wide"}', "not a transformers model config"),
        ('{"model_type": "no-such-architecture"}', "not a transformers model config"),
    ],
)
def test_a_broken_config_json_is_named(tmp_path, text, named):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(CoursekitError) as error:
        model_config_from(str(tmp_path))
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'config.json'}: {named}") and "\n" not in message


BUDGETS = st.floats(min_value=0.5, max_value=120.0)


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(sorted(MODELS)), BUDGETS, BUDGETS)
def test_plans_fit_and_more_budget_is_never_worse(model, first, second):
    small, large = sorted((first * GIB, second * GIB))
    try:
        worse = plan(small, MODELS[model])
    except DoesNotFit as error:
        assert error.minimum_bytes > small
        worse = None
    better = None
    try:
        better = plan(large, MODELS[model])
    except DoesNotFit:
        assert worse is None  # a smaller budget cannot fit what a larger one cannot
    for result, budget in ((worse, small), (better, large)):
        if result is not None:
            assert result.estimate.total_bytes <= budget
    if worse is not None:
        assert better is not None and better.score >= worse.score
