"""Per-layer activation accounting: the QLoRA dequantization term against the allocator."""

from __future__ import annotations

import importlib

import pytest
import torch

from coursekit.adapters import AdapterConfig
from coursekit.adapters.nf4 import NF4Tensor
from coursekit.memory.activations import (
    ATTENTIONS,
    DEQUANTIZE_BYTES,
    Attention,
    dequantize_bytes,
    is_adapted,
    trainable_in,
)
from coursekit.tiny import tiny_qwen2_config


def _transient_peak(run) -> int:
    """Return the peak of the running sum of the CPU allocator's events while ``run`` runs."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        run()
    events = [e for e in profiler.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dequantize_peaks_at_dequantize_bytes_per_entry(dtype):
    stored = NF4Tensor.from_float(torch.randn(256, 512))
    peak = _transient_peak(lambda: stored.dequantize(dtype))
    # The allocator rounds sizes and the (16,) table and scales add a little: within 2%.
    assert peak == pytest.approx(DEQUANTIZE_BYTES * 256 * 512, rel=0.02)


def test_dequantize_bytes_uses_the_largest_nf4_target_and_is_zero_otherwise():
    config = tiny_qwen2_config(hidden_size=64, intermediate_size=128)
    qlora = AdapterConfig(targets="all-linear", base_quantization="nf4")
    assert dequantize_bytes(config, qlora) == DEQUANTIZE_BYTES * 64 * 128  # gate/up/down
    assert dequantize_bytes(config, AdapterConfig(targets="all-linear")) == 0
    assert dequantize_bytes(config, None) == 0


def test_layer_helpers_and_the_public_names_estimate_still_exports():
    adapter = AdapterConfig(targets="qv", layers=(1,))
    assert not is_adapted(0, adapter) and is_adapted(1, adapter) and is_adapted(0, None)
    assert trainable_in(0, adapter) == frozenset() and "norm" in trainable_in(0, None)
    estimate_module = importlib.import_module("coursekit.memory.estimate")  # not the function
    assert estimate_module.ATTENTIONS == ATTENTIONS and estimate_module.Attention is Attention
