"""The variant registry: every variant's formulas match the built layers, run methods derive."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from peft import LoraConfig, get_peft_model

from coursekit.adapters import (
    VARIANTS,
    AdapterConfig,
    Variant,
    adapter_modules,
    apply,
    method_of,
    optimizer_groups,
    register,
    run_methods,
    split_method,
    trainable_count,
)
from coursekit.adapters.lora import LoRALinear
from coursekit.adapters.variants import _VARIANTS, lora_update_variants, peft_variant


def test_builtin_variants_and_derived_run_methods():
    assert list(VARIANTS) == ["lora", "dora", "rslora", "loraplus"]
    assert run_methods() == (
        *("lora", "dora", "rslora", "loraplus"),
        *("qlora", "qdora", "qrslora", "qloraplus"),
        "full",
    )
    assert lora_update_variants() == ("lora", "rslora")


@pytest.mark.parametrize("method", run_methods())
def test_split_method_and_method_of_are_inverse(method):
    parts = split_method(method)
    config = None if parts is None else AdapterConfig(method=parts[0], base_quantization=parts[1])
    assert method_of(config) == method


def test_unknown_run_method_is_named():
    with pytest.raises(ValueError, match=r"method must be one of \[.*'qdora'.*\] \(got 'ia3'\)"):
        split_method("ia3")
    with pytest.raises(ValueError, match="got 'qfull'"):
        split_method("qfull")


@pytest.mark.parametrize("method", list(VARIANTS))
def test_each_layer_has_the_parameters_the_registry_says(method, make_model):
    """trainable(d_in, d_out, r) and parameter_keys describe the layer that build() returns."""
    model = apply(make_model(0), AdapterConfig(method=method, rank=3, targets="all-linear"))
    entry = VARIANTS[method]
    for _, module in adapter_modules(model):
        own = dict(module.named_parameters(recurse=False))
        trainable = {name for name, p in own.items() if p.requires_grad}
        assert trainable == set(entry.parameter_keys)
        expected = entry.trainable(module.in_features, module.out_features, 3)
        assert sum(own[name].numel() for name in trainable) == expected
        assert module.scale == pytest.approx(
            module.alpha / (math.sqrt(3) if entry.rank_stabilized else 3)
        )


@given(rank=st.integers(1, 64), d_in=st.integers(1, 512), d_out=st.integers(1, 512))
def test_formulas_grow_with_rank_and_dora_adds_exactly_one_vector(rank, d_in, d_out):
    lora, dora = VARIANTS["lora"], VARIANTS["dora"]
    assert dora.trainable(d_in, d_out, rank) - lora.trainable(d_in, d_out, rank) == d_out
    for entry in VARIANTS.values():
        assert entry.trainable(d_in, d_out, rank + 1) > entry.trainable(d_in, d_out, rank)
        assert entry.saved_elements(d_out, rank + 1) > entry.saved_elements(d_out, rank)


@pytest.mark.parametrize("method", list(VARIANTS))
def test_peft_flags_read_back_as_the_variant_they_were_written_for(method):
    written = VARIANTS[method].peft_keys
    expected = "lora" if method == "loraplus" else method  # LoRA+ is plain LoRA on disk
    assert peft_variant(written).name == expected


def test_peft_flag_combination_without_a_variant_reads_as_none():
    assert peft_variant({"use_dora": True, "use_rslora": True}) is None


def test_register_refuses_taken_or_bad_names():
    for name in ("lora", "full", "Lora", "my-variant"):
        with pytest.raises(ValueError, match="must be a new lower-case identifier"):
            register(Variant(name=name, summary="", layer=LoRALinear))


def test_a_registered_variant_becomes_a_run_method_and_trains(make_model):
    """Adding a variant is one register() call: config, apply and run methods pick it up."""
    entry = Variant(name="halfb", summary="B at half speed", layer=LoRALinear,
                    lr_scale=lambda name, config: 0.5 if name == "lora_b" else 1.0)  # fmt: skip
    register(entry)
    try:
        assert "halfb" in run_methods() and "qhalfb" in run_methods()
        model = apply(make_model(0), AdapterConfig(method="halfb", rank=2))
        groups = optimizer_groups(model)
        assert [(g["name"], g["lr_scale"]) for g in groups] == [("default", 1.0), ("lora_b", 0.5)]
    finally:
        del _VARIANTS["halfb"]


def test_optimizer_groups_of_a_full_fine_tune_are_one_group(make_model):
    model = make_model(0).requires_grad_(True)
    (group,) = optimizer_groups(model)
    assert group["lr_scale"] == 1.0 and len(group["params"]) == len(list(model.parameters()))


def _peft_loraplus(make_model, ratio):
    """peft's LoRA+ optimizer over a peft twin of the model (the oracle)."""
    from peft.optimizers import create_loraplus_optimizer

    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    theirs = get_peft_model(make_model(0), config)
    optimizer = create_loraplus_optimizer(
        theirs, torch.optim.AdamW, lr=1e-3, loraplus_lr_ratio=ratio, weight_decay=0.0
    )
    return theirs, optimizer


def test_loraplus_groups_match_peft_create_loraplus_optimizer(make_model):
    """Every adapter tensor gets the learning rate peft's LoRA+ helper gives it."""
    from coursekit.train.config import TrainConfig
    from coursekit.train.optim import build_optimizer

    ratio = 8.0
    config = AdapterConfig(method="loraplus", rank=4, alpha=8, loraplus_lr_ratio=ratio)
    ours = apply(make_model(0), config)
    optimizer = build_optimizer(optimizer_groups(ours), TrainConfig(learning_rate=1e-3))
    theirs, peft_optimizer = _peft_loraplus(make_model, ratio)

    def lr_by_shape_and_kind(model, opt, kind_of):
        names = {id(p): n for n, p in model.named_parameters()}
        return sorted(
            (kind_of(names[id(p)]), tuple(p.shape), group["lr"])
            for group in opt.param_groups
            for p in group["params"]
        )

    mine = lr_by_shape_and_kind(ours, optimizer, lambda n: "B" if "lora_b" in n else "A")
    peft = lr_by_shape_and_kind(theirs, peft_optimizer, lambda n: "B" if "lora_B" in n else "A")
    assert mine == peft
    assert {lr for kind, _, lr in mine if kind == "B"} == {1e-3 * ratio}
    assert {lr for kind, _, lr in mine if kind == "A"} == {1e-3}


def test_loraplus_step_equals_peft_step(make_model, input_ids):
    """One AdamW step from equal weights and equal gradients gives equal adapters."""
    from coursekit.train.config import TrainConfig
    from coursekit.train.optim import build_optimizer

    config = AdapterConfig(method="loraplus", rank=4, alpha=8, loraplus_lr_ratio=16.0)
    ours = apply(make_model(0), config)
    optimizer = build_optimizer(optimizer_groups(ours), TrainConfig(learning_rate=1e-3))
    theirs, peft_optimizer = _peft_loraplus(make_model, 16.0)
    peft_params = dict(theirs.named_parameters())
    with torch.no_grad():  # same A (B stays zero in both): copy ours into peft's
        for name, module in adapter_modules(ours):
            prefix = f"base_model.model.{name}"
            peft_params[f"{prefix}.lora_A.default.weight"].copy_(module.lora_a)
    for model, opt in ((ours, optimizer), (theirs, peft_optimizer)):
        logits = model(input_ids).logits
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1), input_ids[:, 1:].flatten()
        )
        loss.backward()
        opt.step()
    for name, module in adapter_modules(ours):
        prefix = f"base_model.model.{name}"
        for ours_key, peft_key in (("lora_a", "lora_A"), ("lora_b", "lora_B")):
            torch.testing.assert_close(
                getattr(module, ours_key), peft_params[f"{prefix}.{peft_key}.default.weight"]
            )
    assert trainable_count(ours) > 0
