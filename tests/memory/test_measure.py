"""The measurement harness: real steps on a small model, the allocator's peak."""

from __future__ import annotations

import pytest
import torch

from coursekit.adapters import AdapterConfig
from coursekit.memory.estimate import estimate
from coursekit.memory.measure import _resident_bytes, build_model, measure
from coursekit.tiny import tiny_qwen2_config
from coursekit.train.config import TrainConfig

CONFIG = tiny_qwen2_config(vocab_size=2048, bos_token_id=None, eos_token_id=None)
TRAIN = TrainConfig(micro_batch_size=2, seq_len=64)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_peak_covers_weights_and_is_close_to_the_estimate():
    adapter = AdapterConfig(rank=8, targets="all-linear")
    result = measure(CONFIG, adapter, TRAIN)
    model = build_model(CONFIG, adapter, TRAIN, attention="sdpa", device="cpu", seed=0)
    assert result.method == "cpu profiler trace" and result.steps == 2
    assert result.peak_bytes > _resident_bytes(model)
    estimated = estimate(CONFIG, adapter, TRAIN).peak_bytes
    assert abs(estimated - result.peak_bytes) / result.peak_bytes < 0.15


def test_sgd_full_fine_tune_with_checkpointing_and_callers_config_untouched():
    train = TrainConfig(
        micro_batch_size=1, seq_len=32, optimizer="sgd", gradient_checkpointing=True
    )
    result = measure(CONFIG, None, train, steps=1, attention="eager")
    assert result.peak_bytes > 0
    assert CONFIG._attn_implementation != "eager"


def test_tied_storage_is_counted_once():
    model = build_model(CONFIG, None, TRAIN, attention="sdpa", device="cpu", seed=0)
    parameters = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    assert _resident_bytes(model) == parameters + buffers  # parameters() dedups the tie


def test_bad_requests():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        measure(CONFIG, None, TRAIN, steps=0)
    with pytest.raises(ValueError, match="adamw-8bit"):
        measure(CONFIG, None, TrainConfig(optimizer="adamw-8bit", seq_len=32))
