"""Fixtures for the adapter tests: tiny random Qwen2 models and peft twins of them."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from coursekit.adapters import adapter_modules
from tests.tiny import tiny_qwen2_config

ADAPTER_SIZES = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "vocab_size": 256,
    "max_position_embeddings": 64,
    "attn_implementation": "eager",
}
"""The adapter tests' sizes of the shared tiny Qwen2 (2 layers, 4 heads, 2 KV heads)."""


@pytest.fixture(autouse=True)
def one_thread():
    """Run each test on one intra-op thread, then restore the setting.

    The tiny matmuls here gain nothing from threads, and on a loaded 2-core machine the
    thread hand-offs made some tests 20x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_config() -> Qwen2Config:
    """Qwen2 shapes scaled down: GQA (4 heads, 2 KV heads) and q/k/v biases, as in Qwen2."""
    return tiny_qwen2_config(**ADAPTER_SIZES)


@pytest.fixture(scope="session")
def make_model(
    make_tiny_qwen2: Callable[..., Qwen2ForCausalLM],
) -> Callable[[int], Qwen2ForCausalLM]:
    """Return seed ↦ a fresh fp32 tiny Qwen2 in eval mode, with non-zero biases.

    transformers initialises biases to zero; random ones make the DoRA bias tests meaningful.
    """
    cache: dict[int, Qwen2ForCausalLM] = {}

    def make(seed: int = 0) -> Qwen2ForCausalLM:
        if seed not in cache:
            model = make_tiny_qwen2(seed, **ADAPTER_SIZES).eval()
            with torch.no_grad():
                for module in model.modules():
                    if isinstance(module, torch.nn.Linear) and module.bias is not None:
                        module.bias.normal_(0, 0.5)
            cache[seed] = model
        return copy.deepcopy(cache[seed])

    return make


@pytest.fixture(scope="session")
def input_ids() -> torch.Tensor:
    """(b=2, s=12) random token ids."""
    return torch.randint(
        0, ADAPTER_SIZES["vocab_size"], (2, 12), generator=torch.Generator().manual_seed(1)
    )


def randomize_adapters(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every adapter non-zero B (and perturbed m), so parity is not trivially true."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, module in adapter_modules(model):
            module.lora_b.copy_(torch.randn(module.lora_b.shape, generator=generator) * 0.1)
            if hasattr(module, "magnitude"):
                noise = torch.rand(module.magnitude.shape, generator=generator) + 0.5
                module.magnitude.mul_(noise)


@pytest.fixture(scope="session")
def randomize() -> Callable[..., None]:
    """The ``randomize_adapters`` helper, as a fixture (test modules cannot import conftest)."""
    return randomize_adapters
