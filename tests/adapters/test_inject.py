"""Model surgery on a tiny Qwen2: targeting, freezing, parity with peft, merge, training."""

from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from peft import PeftModel
from torch import nn

from coursekit.adapters import (
    AdapterConfig,
    AdapterRankWarning,
    DoRALinear,
    LoRALinear,
    adapter_modules,
    apply,
    count_trainable,
    merge,
    save_adapter,
    trainable_count,
    trainable_parameters,
    unmerge,
)
from coursekit.adapters.variants import VARIANTS
from coursekit.errors import CoursekitWarning

METHODS = list(VARIANTS)

adapter_configs = st.builds(
    AdapterConfig,
    method=st.sampled_from(METHODS),
    rank=st.integers(1, 8),
    alpha=st.floats(0.5, 64),
    targets=st.sampled_from(["qv", "attention", "mlp", "all-linear", ("k_proj", "down_proj")]),
    layers=st.sampled_from([None, (0,), (1,)]),
)


def _loss(model, input_ids):
    logits = model(input_ids).logits  # (b, s, vocab)
    return nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), input_ids[:, 1:].flatten())


def test_apply_replaces_targets_and_freezes_the_rest(make_model, tiny_config):
    config = AdapterConfig(method="dora", rank=4, targets="attention", layers=(1,))
    model = apply(make_model(0), config)
    names = [name for name, _ in adapter_modules(model)]
    assert names == [f"model.layers.1.self_attn.{p}_proj" for p in "qkvo"]
    assert all(isinstance(m, DoRALinear) for _, m in adapter_modules(model))
    trainable = trainable_parameters(model)
    assert all(name.rsplit(".", 1)[-1] in {"lora_a", "lora_b", "magnitude"} for name in trainable)
    assert len(trainable) == 12
    assert trainable_count(model) == count_trainable(tiny_config, config)


def test_apply_shares_the_base_weight_instead_of_copying(make_model):
    model = make_model(0)
    weight = model.model.layers[0].self_attn.q_proj.weight
    apply(model, AdapterConfig(targets="qv"))
    adapted = model.model.layers[0].self_attn.q_proj
    assert isinstance(adapted, LoRALinear)
    assert adapted.weight.data_ptr() == weight.data_ptr()
    assert not adapted.weight.requires_grad and not adapted.bias.requires_grad


def test_targets_matching_nothing_raise(make_model):
    model = apply(make_model(0), AdapterConfig(targets="qv"))
    with pytest.raises(ValueError, match=r"AdapterConfig.targets .*matched no nn.Linear"):
        apply(model, AdapterConfig(targets="qv"))  # already adapted
    with pytest.raises(ValueError, match=r"matched no nn\.Linear"):
        apply(nn.Sequential(nn.Linear(4, 4)), AdapterConfig(targets="all-linear"))


def test_layers_outside_the_model_raise(make_model):
    with pytest.raises(ValueError, match=r"AdapterConfig.layers names layers \[5\]"):
        apply(make_model(0), AdapterConfig(layers=(0, 5)))


def test_rank_above_a_layers_width_warns_once_naming_it(make_model):
    # v_proj maps 64 -> 32 (2 KV heads of 16): rank 33 cannot be reached by B·A there.
    with pytest.warns(AdapterRankWarning) as caught:
        apply(make_model(0), AdapterConfig(rank=33, targets="qv"))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "rank=33" in message and "min(d_in, d_out)=32" in message
    assert "model.layers.0.self_attn.v_proj (64 -> 32) and 1 other" in message
    assert issubclass(AdapterRankWarning, CoursekitWarning)


def test_rank_warning_names_the_narrowest_layer(make_model):
    with pytest.warns(AdapterRankWarning, match=r"=32 of model\.layers\.0\.self_attn\.v_proj"):
        apply(make_model(0), AdapterConfig(rank=65, targets="qv"))  # q 64->64, v 64->32


def test_rank_up_to_every_width_does_not_warn(make_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoursekitWarning)
        apply(make_model(0), AdapterConfig(rank=32, targets="qv"))


def _peft_twin(ours, base, tmp_path):
    save_adapter(ours, tmp_path / "adapter")
    return PeftModel.from_pretrained(base, tmp_path / "adapter", is_trainable=True)


def _peft_name(name: str) -> str:
    suffix = {"lora_a": "lora_A.default.weight", "lora_b": "lora_B.default.weight"}
    stem, _, leaf = name.rpartition(".")
    return f"base_model.model.{stem}." + suffix.get(leaf, "lora_magnitude_vector.default.weight")


@pytest.mark.parametrize("method", METHODS)
def test_gradients_match_peft(method, make_model, randomize, input_ids, tmp_path):
    """Same weights ⇒ same loss and same adapter gradients (fp32; tolerance 1e-5 absolute)."""
    ours = apply(make_model(0), AdapterConfig(method=method, rank=4, targets="all-linear"))
    randomize(ours)
    theirs = _peft_twin(ours, make_model(0), tmp_path)
    loss_ours, loss_theirs = _loss(ours, input_ids), _loss(theirs, input_ids)
    torch.testing.assert_close(loss_ours, loss_theirs, atol=1e-5, rtol=1e-5)
    loss_ours.backward()
    loss_theirs.backward()
    peft_parameters = dict(theirs.named_parameters())
    ours_trainable = trainable_parameters(ours)
    assert len(ours_trainable) == sum(p.requires_grad for p in peft_parameters.values())
    for name, parameter in ours_trainable.items():
        twin = peft_parameters[_peft_name(name)]
        torch.testing.assert_close(parameter.grad, twin.grad, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("method", METHODS)
def test_merged_model_gives_the_same_logits_and_unmerge_restores(
    method, make_model, randomize, input_ids
):
    model = apply(make_model(0), AdapterConfig(method=method, rank=4, targets="all-linear"))
    randomize(model)
    before = {name: p.clone() for name, p in model.named_parameters()}
    with torch.no_grad():
        expected = model(input_ids).logits
        merged = merge(model)(input_ids).logits
        merge(model)  # merging twice is a no-op
        torch.testing.assert_close(model(input_ids).logits, merged)
    torch.testing.assert_close(merged, expected, atol=1e-5, rtol=1e-5)
    unmerge(unmerge(model))
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter, before[name], atol=1e-6, rtol=1e-5, msg=name)


@settings(max_examples=10, derandomize=True, deadline=None)
@given(adapter_configs)
def test_fresh_adapters_give_the_base_logits(make_model, input_ids, config):
    """B = 0 (and DoRA's m = ‖W₀‖) ⇒ the adapted model computes the base model's logits."""
    base = make_model(0)
    with torch.no_grad():
        expected = base(input_ids).logits
        torch.testing.assert_close(apply(base, config)(input_ids).logits, expected)


@settings(max_examples=4, derandomize=True, deadline=None)
@given(adapter_configs)
def test_training_moves_only_the_adapter(make_model, input_ids, config):
    """20 AdamW steps on next-token loss: adapters change, every base tensor is bitwise equal."""
    model = apply(make_model(0), config)
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    adapters = {n: p.clone() for n, p in trainable_parameters(model).items()}
    optimizer = torch.optim.AdamW(trainable_parameters(model).values(), lr=1e-2)
    model.train()
    first = None
    for _ in range(20):
        optimizer.zero_grad()
        loss = _loss(model, input_ids)
        first = first if first is not None else loss.item()
        loss.backward()
        optimizer.step()
    assert loss.item() < first
    for name, parameter in model.named_parameters():
        if name in frozen:
            assert torch.equal(parameter, frozen[name]), name
            assert parameter.grad is None, name
    assert any(not torch.equal(p, adapters[n]) for n, p in trainable_parameters(model).items())
