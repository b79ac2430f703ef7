"""Hand-checked numbers and invariants of the memory estimate."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.adapters import AdapterConfig
from coursekit.adapters.nf4 import bits_per_parameter
from coursekit.memory.estimate import (
    GIB,
    OPTIMIZER_STATE_BYTES,
    PRECISION_BYTES,
    Overhead,
    base_weight_bytes,
    estimate,
    parameter_count,
)
from coursekit.presets import count_parameters, meta_model, preset_config
from coursekit.tiny import tiny_qwen2_config
from coursekit.train.config import TrainConfig

QWEN_05B = preset_config("qwen2.5-coder-0.5b")
BF16 = TrainConfig(precision="bf16", micro_batch_size=1, seq_len=512)


def small(**overrides):
    fields = {"hidden_size": 128, "num_hidden_layers": 2, "vocab_size": 4096}
    return tiny_qwen2_config(**(fields | overrides))


def test_05b_bf16_weights_are_988065536_bytes():
    assert parameter_count(QWEN_05B) == 494_032_768
    assert estimate(QWEN_05B, None, BF16).base_weights == 988_065_536


@pytest.mark.parametrize("config", [QWEN_05B, small(tie_word_embeddings=False)])
def test_parameter_count_matches_the_meta_model(config):
    assert parameter_count(config) == count_parameters(meta_model(config))


@pytest.mark.parametrize(
    ("targets", "count"), [("qv", 1_081_344), ("attention", 2_162_688), ("all-linear", 8_798_208)]
)
def test_adapter_terms_use_the_adapters_count(targets, count):
    breakdown = estimate(QWEN_05B, AdapterConfig(rank=16, targets=targets), BF16)
    assert breakdown.adapter_weights == 2 * count
    assert breakdown.gradients == 2 * count
    assert breakdown.optimizer_states == 12 * count  # fp32 moments + fp32 master copy


def test_nf4_base_costs_4127_bits_per_quantized_weight():
    adapter = AdapterConfig(rank=16, targets="all-linear", base_quantization="nf4")
    dense = base_weight_bytes(QWEN_05B, None, 2)
    quantized = base_weight_bytes(QWEN_05B, adapter, 2)
    projections = 24 * (896 * 896 + 2 * 896 * 128 + 896 * 896 + 3 * 896 * 4864)
    saved_bits = 8 * (dense - quantized)
    assert bits_per_parameter() == pytest.approx(4.127, abs=5e-4)
    assert saved_bits / projections == pytest.approx(16 - bits_per_parameter(), abs=1e-3)


@pytest.mark.parametrize("optimizer", ["adamw", "adamw-8bit", "sgd"])
def test_optimizer_states_per_trainable_parameter(optimizer):
    train = TrainConfig(optimizer=optimizer, precision="bf16")
    breakdown = estimate(QWEN_05B, AdapterConfig(rank=16), train)
    assert breakdown.optimizer_states == round(1_081_344 * (OPTIMIZER_STATE_BYTES[optimizer] + 4))
    fp32 = estimate(QWEN_05B, AdapterConfig(rank=16), TrainConfig(optimizer=optimizer))
    assert fp32.optimizer_states == round(1_081_344 * OPTIMIZER_STATE_BYTES[optimizer])


def test_fp16_costs_two_bytes_per_element_like_bf16():
    fp16 = estimate(QWEN_05B, None, TrainConfig(precision="fp16", micro_batch_size=1))
    assert fp16.base_weights == 988_065_536  # 2 bytes per parameter, not fp32's 4
    assert fp16.optimizer_states == 12 * 494_032_768  # fp32 moments + fp32 master copy
    assert PRECISION_BYTES["fp16"] == 2


def test_full_fine_tune_trains_every_parameter():
    breakdown = estimate(QWEN_05B, None, BF16)
    assert breakdown.adapter_weights == 0
    assert breakdown.gradients == 988_065_536
    assert breakdown.optimizer_states == 12 * 494_032_768  # 2 + 2 + 12 bytes: ZeRO §3.1


def test_logits_dominate_with_qwens_vocabulary():
    train = TrainConfig(micro_batch_size=4, precision="bf16", gradient_checkpointing=True)
    breakdown = estimate(QWEN_05B, AdapterConfig(rank=8), train)
    assert breakdown.logits == 3 * 4 * 512 * 151_936 * 4  # fp32 even in bf16
    assert breakdown.peak_phase == "head"
    assert breakdown.dominant_term == "logits"


def test_eager_attention_stores_the_scores():
    train = TrainConfig(micro_batch_size=2, seq_len=1024)
    sdpa = estimate(small(), AdapterConfig(), train, attention="sdpa")
    eager = estimate(small(), AdapterConfig(), train, attention="eager")
    scores = 2 * 1024 * 4 * 1024 * 4  # b · s · n_h · s · fp32
    assert eager.activations - sdpa.activations >= 2 * scores // 2


def test_checkpointing_stores_less():
    train = TrainConfig(micro_batch_size=8, seq_len=512)
    plain = estimate(QWEN_05B, AdapterConfig(), train)
    checkpointed = estimate(
        QWEN_05B, AdapterConfig(), TrainConfig(micro_batch_size=8, gradient_checkpointing=True)
    )
    assert checkpointed.activations < plain.activations / 5
    assert checkpointed.peak_bytes < plain.peak_bytes


def test_accumulation_keeps_gradients_alive():
    one = estimate(QWEN_05B, None, BF16)
    many = estimate(
        QWEN_05B,
        None,
        TrainConfig(precision="bf16", micro_batch_size=1, seq_len=512, gradient_accumulation=4),
    )
    assert dict(many.live_at_peak)["gradients"] == many.gradients
    assert many.peak_bytes >= one.peak_bytes


def test_layers_subset_and_dora_and_bf16_norm_copies():
    every = estimate(small(), AdapterConfig(method="dora", targets="all-linear"), BF16)
    some = estimate(small(), AdapterConfig(method="dora", targets="all-linear", layers=(1,)), BF16)
    assert some.activations < every.activations
    assert some.adapter_weights * 2 == every.adapter_weights
    nf4_some = AdapterConfig(targets="all-linear", layers=(1,), base_quantization="nf4")
    nf4_every = AdapterConfig(targets="all-linear", base_quantization="nf4")
    dense = base_weight_bytes(small(), None, 2)
    saved_some = dense - base_weight_bytes(small(), nf4_some, 2)
    assert saved_some * 2 == dense - base_weight_bytes(small(), nf4_every, 2)


def test_breakdown_is_consistent_and_serializable():
    breakdown = estimate(QWEN_05B, AdapterConfig(rank=16), BF16)
    data = json.loads(json.dumps(breakdown.to_dict()))
    assert sum(data["live_at_peak"].values()) == data["peak_bytes"]
    assert data["total_bytes"] == breakdown.peak_bytes + breakdown.overhead
    assert breakdown.overhead == Overhead().bytes_for(breakdown.peak_bytes)
    assert 0.5 < breakdown.total_bytes / GIB < 8


def test_bad_inputs_name_the_fix():
    with pytest.raises(ValueError, match="attention must be one of"):
        estimate(QWEN_05B, None, BF16, attention="flash")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"Overhead\.fragmentation must be in"):
        Overhead(fragmentation=1.5)
    with pytest.raises(ValueError, match=r"Overhead\.context_bytes must be >= 0"):
        Overhead(context_bytes=-1)
    with pytest.raises(ValueError, match="layers"):
        estimate(small(), AdapterConfig(layers=(5,)), BF16)


CONFIGS = st.fixed_dictionaries(
    {
        "hidden_size": st.sampled_from([64, 128, 256]),
        "num_hidden_layers": st.integers(1, 4),
        "intermediate_size": st.sampled_from([128, 256, 1024]),
        "vocab_size": st.sampled_from([512, 4096, 32768]),
        "tie_word_embeddings": st.booleans(),
    }
)
SETTINGS = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["lora", "dora", "qlora", "full"]),
        "targets": st.sampled_from(["qv", "attention", "mlp", "all-linear"]),
        "precision": st.sampled_from(["fp32", "bf16", "fp16"]),
        "optimizer": st.sampled_from(["adamw", "adamw-8bit", "sgd"]),
        "gc": st.booleans(),
        "accumulation": st.sampled_from([1, 4]),
        "attention": st.sampled_from(["sdpa", "eager"]),
    }
)


def _breakdown(config, setting, *, rank, batch, seq):
    adapter = None
    if setting["method"] != "full":
        adapter = AdapterConfig(
            method="dora" if setting["method"] == "dora" else "lora",
            rank=rank,
            targets=setting["targets"],
            base_quantization="nf4" if setting["method"] == "qlora" else "none",
        )
    train = TrainConfig(
        micro_batch_size=batch,
        seq_len=seq,
        precision=setting["precision"],
        optimizer=setting["optimizer"],
        gradient_checkpointing=setting["gc"],
        gradient_accumulation=setting["accumulation"],
    )
    return estimate(tiny_qwen2_config(**config), adapter, train, attention=setting["attention"])


def _peak(config, setting, *, rank, batch, seq):
    return _breakdown(config, setting, rank=rank, batch=batch, seq=seq).total_bytes


@settings(max_examples=50, deadline=None)
@given(CONFIGS, SETTINGS, st.integers(1, 64), st.integers(1, 8), st.integers(8, 1024))
def test_fp16_and_bf16_estimates_are_equal_and_below_fp32(config, setting, rank, batch, seq):
    """fp16 and bf16 are both 2 bytes per element; fp32 (4) never costs less."""
    half, bf16, fp32 = (
        _breakdown(config, setting | {"precision": p}, rank=rank, batch=batch, seq=seq)
        for p in ("fp16", "bf16", "fp32")
    )
    assert half == bf16
    assert half.base_weights < fp32.base_weights


@settings(max_examples=150, deadline=None)
@given(
    CONFIGS,
    SETTINGS,
    st.integers(1, 128),
    st.integers(1, 64),
    st.integers(1, 16),
    st.integers(1, 8),
    st.integers(8, 2048),
    st.integers(1, 512),
)
def test_estimate_never_decreases_as_rank_batch_or_seq_grow(
    config, setting, rank, more_rank, batch, more_batch, seq, more_seq
):
    base = _peak(config, setting, rank=rank, batch=batch, seq=seq)
    assert _peak(config, setting, rank=rank + more_rank, batch=batch, seq=seq) >= base
    assert _peak(config, setting, rank=rank, batch=batch + more_batch, seq=seq) >= base
    assert _peak(config, setting, rank=rank, batch=batch, seq=seq + more_seq) >= base
