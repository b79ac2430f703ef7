"""Multi-adapter LoRA: per-example routing, joint ≡ separate training, save/load of one adapter."""

from __future__ import annotations

import threading

import pytest
import torch
from transformers import Qwen2ForCausalLM

from coursekit.adapters.config import AdapterConfig
from coursekit.adapters.inject import apply
from coursekit.adapters.multi import (
    MultiLoRALinear,
    adapter_indices,
    apply_multi,
    extract_adapter,
    load_one_adapter,
    multi_adapter_config,
    multi_adapter_loss,
    multi_modules,
    save_one_adapter,
)
from coursekit.adapters.nf4 import NF4Tensor
from coursekit.adapters.peft_format import load_adapter
from coursekit.errors import CoursekitError
from tests.tiny import make_tiny_qwen2

VOCAB = 64
CONFIG = AdapterConfig(rank=4, alpha=8.0, targets="all-linear")


def tiny_qwen2(seed: int = 0) -> Qwen2ForCausalLM:
    """The shared 2-layer, 32-wide random Qwen2 (litgpt-style test model); q/k/v carry biases."""
    return make_tiny_qwen2(
        seed, vocab_size=VOCAB, max_position_embeddings=64, tie_word_embeddings=True
    ).eval()


def _randomize_b(model: torch.nn.Module, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "lora_b"):
                module.lora_b.copy_(torch.randn(module.lora_b.shape, generator=generator) * 0.1)


def _ids(batch: int, seed: int = 3, length: int = 12) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def _single_adapter_model(multi: torch.nn.Module, index: int) -> torch.nn.Module:
    """A plain LoRA model (coursekit.adapters.apply) holding adapter ``index`` of ``multi``."""
    single = apply(tiny_qwen2(), CONFIG)
    tensors = dict(multi.named_modules())
    with torch.no_grad():
        for name, module in single.named_modules():
            if hasattr(module, "lora_a"):
                module.lora_a.copy_(tensors[name].lora_a[index])
                module.lora_b.copy_(tensors[name].lora_b[index])
    return single


def test_zero_b_gives_the_base_model_for_any_routing():
    base, multi = tiny_qwen2(), apply_multi(tiny_qwen2(), CONFIG, n_adapters=3)
    ids, indices = _ids(4), torch.tensor([0, 2, 1, 2])
    with torch.no_grad(), adapter_indices(multi, indices):
        torch.testing.assert_close(multi(input_ids=ids).logits, base(input_ids=ids).logits)


def test_each_example_gets_only_its_adapter():
    multi = apply_multi(tiny_qwen2(), CONFIG, n_adapters=3)
    _randomize_b(multi)
    ids, indices = _ids(5), torch.tensor([2, 0, 1, 0, 2])
    with torch.no_grad(), adapter_indices(multi, indices):
        logits = multi(input_ids=ids).logits
    for k in range(3):
        single = _single_adapter_model(multi, k)
        with torch.no_grad():
            expected = single(input_ids=ids[indices == k]).logits
        torch.testing.assert_close(logits[indices == k], expected, rtol=1e-5, atol=1e-5)


def _train_jointly(multi, ids, indices, steps):
    optimizer = torch.optim.AdamW([p for p in multi.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        with adapter_indices(multi, indices):
            logits = multi(input_ids=ids).logits
        multi_adapter_loss(logits, ids, indices, n_adapters=3).backward()
        optimizer.step()
        optimizer.zero_grad()


def _train_alone(single, ids, steps):
    optimizer = torch.optim.AdamW([p for p in single.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        single(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def test_adapters_trained_together_equal_adapters_trained_alone():
    multi = apply_multi(tiny_qwen2(), CONFIG, n_adapters=3).train()
    singles = [_single_adapter_model(multi, k).train() for k in range(3)]  # same initial A, B
    ids, indices = _ids(6), torch.tensor([0, 1, 2, 2, 1, 0])
    _train_jointly(multi, ids, indices, steps=10)
    for k, single in enumerate(singles):
        _train_alone(single, ids[indices == k], steps=10)
    # Each adapter's loss term and gradient are mathematically those of its solo run, and
    # AdamW keeps per-entry state, so only fp32 summation order differs (bmm vs matmul, one
    # batch vs three). After 10 AdamW steps of lr 1e-2 the measured gap is 2.4e-6; atol 1e-5
    # is 1/1000 of one step's change, so a leak between adapters (e.g. a mean over the joint
    # batch, which scales each gradient by its share) would fail it.
    modules = dict(multi.named_modules())
    for k, single in enumerate(singles):
        for name, module in single.named_modules():
            if hasattr(module, "lora_a"):
                torch.testing.assert_close(
                    modules[name].lora_a[k], module.lora_a, atol=1e-5, rtol=0
                )
                torch.testing.assert_close(
                    modules[name].lora_b[k], module.lora_b, atol=1e-5, rtol=0
                )
    assert any(m.lora_b.abs().max() > 1e-3 for _, m in multi_modules(multi))  # it did train


def test_loss_for_one_adapter_is_the_transformers_loss():
    model = tiny_qwen2()
    ids = _ids(3)
    labels = ids.clone()
    labels[0, :5] = -100
    with torch.no_grad():
        output = model(input_ids=ids, labels=labels)
    ours = multi_adapter_loss(output.logits, labels, torch.zeros(3, dtype=torch.long), 1)
    torch.testing.assert_close(ours, output.loss)


def test_saved_adapter_loads_into_a_plain_base_model(tmp_path):
    multi = apply_multi(tiny_qwen2(), CONFIG, n_adapters=2)
    _randomize_b(multi)
    ids = _ids(2)
    save_one_adapter(multi, 1, tmp_path / "adapter1")
    single = load_adapter(tiny_qwen2(), tmp_path / "adapter1")
    with torch.no_grad(), adapter_indices(multi, torch.tensor([1, 1])):
        expected = multi(input_ids=ids).logits
    with torch.no_grad():
        torch.testing.assert_close(single(input_ids=ids).logits, expected, rtol=1e-5, atol=1e-5)
    other = apply_multi(tiny_qwen2(), CONFIG, n_adapters=2)
    load_one_adapter(other, 0, tmp_path / "adapter1")
    for key, value in extract_adapter(multi, 1).items():
        torch.testing.assert_close(extract_adapter(other, 0)[key], value)


def test_extracted_keys_are_the_peft_keys_of_a_single_adapter_model():
    multi = apply_multi(tiny_qwen2(), CONFIG, n_adapters=2)
    tensors = extract_adapter(multi, 0)
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in tensors
    assert tensors["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"].shape == (32, 4)
    assert len(tensors) == 2 * 7 * 2  # two layers, seven projections, A and B


def test_config_is_read_back_including_a_layer_subset():
    multi = apply_multi(tiny_qwen2(), AdapterConfig(rank=2, targets="qv", layers=(1,)), 2)
    config = multi_adapter_config(multi)
    assert config.layers == (1,) and config.target_names == ("q_proj", "v_proj")
    assert multi_adapter_config(apply_multi(tiny_qwen2(), CONFIG, 2)).layers is None


def test_nf4_base_and_dropout_are_supported():
    config = AdapterConfig(rank=4, alpha=8.0, dropout=0.1, base_quantization="nf4")
    multi = apply_multi(tiny_qwen2(), config, n_adapters=2)
    layer = multi.model.layers[0].self_attn.q_proj
    assert isinstance(layer, MultiLoRALinear) and isinstance(layer.weight, NF4Tensor)
    assert "n_adapters=2" in repr(layer)
    with adapter_indices(multi, torch.tensor([0, 1])):
        assert multi(input_ids=_ids(2)).logits.shape == (2, 12, VOCAB)


def test_routing_is_required_and_cleared_and_refuses_to_nest():
    multi = apply_multi(tiny_qwen2(), CONFIG, n_adapters=2)
    with pytest.raises(RuntimeError, match="adapter_indices"):
        multi(input_ids=_ids(1))
    indices = torch.tensor([0])
    with (
        pytest.raises(RuntimeError, match="already active"),
        adapter_indices(multi, indices),
        adapter_indices(multi, indices),
    ):
        pass  # pragma: no cover - the inner context manager raises first
    with pytest.raises(KeyError), adapter_indices(multi, indices):
        raise KeyError("the indices are cleared even when the body raises")
    assert all(module.indices is None for _, module in multi_modules(multi))


def test_two_threads_with_their_own_models_route_independently():
    models = [apply_multi(tiny_qwen2(), CONFIG, n_adapters=2) for _ in range(2)]
    for seed, model in enumerate(models):
        _randomize_b(model, seed)
    ids, results = _ids(2), {}

    def work(k):
        with torch.no_grad(), adapter_indices(models[k], torch.tensor([k, k])):
            results[k] = models[k](input_ids=ids).logits

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for k in range(2):
        with torch.no_grad(), adapter_indices(models[k], torch.tensor([k, k])):
            torch.testing.assert_close(results[k], models[k](input_ids=ids).logits)


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        (torch.tensor([0.0]), "1-D integer tensor"),
        (torch.tensor([[0]]), "1-D integer tensor"),
        (torch.tensor([2]), r"in 0\.\.1"),
    ],
)
def test_bad_indices_raise_value_error(indices, message):
    multi = apply_multi(tiny_qwen2(), CONFIG, n_adapters=2)
    with pytest.raises(ValueError, match=message), adapter_indices(multi, indices):
        pass  # pragma: no cover - raises on entry


def test_one_index_per_example_is_required():
    multi = apply_multi(tiny_qwen2(), CONFIG, n_adapters=2)
    with (
        pytest.raises(ValueError, match="one index per example"),
        adapter_indices(multi, torch.tensor([0])),
    ):
        multi(input_ids=_ids(2))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n_adapters must be an int >= 1"):
        apply_multi(tiny_qwen2(), CONFIG, n_adapters=0)
    with pytest.raises(ValueError, match="method must be 'lora'"):
        apply_multi(tiny_qwen2(), AdapterConfig(method="dora"), n_adapters=2)
    with pytest.raises(ValueError, match="no multi-adapter layers"):
        extract_adapter(tiny_qwen2(), 0)
    with pytest.raises(ValueError, match=r"index must lie in 0\.\.1"):
        extract_adapter(apply_multi(tiny_qwen2(), CONFIG, n_adapters=2), 2)


def test_loading_a_mismatched_or_missing_adapter_raises(tmp_path):
    save_one_adapter(apply_multi(tiny_qwen2(), CONFIG, n_adapters=2), 0, tmp_path / "rank4")
    other_rank = apply_multi(tiny_qwen2(), AdapterConfig(rank=2, targets="all-linear"), 2)
    with pytest.raises(CoursekitError, match=r"\['rank', 'alpha'\] differ"):
        load_one_adapter(other_rank, 0, tmp_path / "rank4")
    with pytest.raises(CoursekitError, match="is not a directory"):
        load_one_adapter(other_rank, 0, tmp_path / "missing")
