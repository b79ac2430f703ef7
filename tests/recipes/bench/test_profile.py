"""``coursekit bench --profile``'s grouping, on tiny: labels, op rules, a profiled step.

No timing assertions: only which groups receive time, and that the shares add up.
"""

from __future__ import annotations

import pytest
import torch

from coursekit.data.corpus import seed_dir
from coursekit.recipes.bench.profile import (
    GROUPS,
    group_events,
    group_of,
    module_labels,
    profile_coursekit,
    scopes,
)

TINY = {"model": "tiny", "data": str(seed_dir()), "batch_size": 1, "seq_len": 128, "rank": 2,
        "lr": 1e-3, "seed": 0}  # fmt: skip


def test_modules_are_labelled_by_what_they_compute(tiny_dir):
    from coursekit.adapters import AdapterConfig, apply
    from coursekit.loading import load_model

    model = apply(load_model(tiny_dir), AdapterConfig(rank=2, alpha=4.0, targets="all-linear"))
    labels = module_labels(model)
    layer = "model.layers.0"
    assert labels[f"{layer}.self_attn"] == "attention" and labels[f"{layer}.mlp"] == "mlp"
    assert labels[f"{layer}.self_attn.q_proj"] == "adapter@base"
    assert labels[f"{layer}.mlp.up_proj"] == "adapter@mlp"
    assert labels["lm_head"] == "lm_head" and labels["model"] == "other"
    plain = module_labels(load_model(tiny_dir))
    assert plain[f"{layer}.self_attn.k_proj"] == "base" and f"{layer}.mlp.up_proj" not in plain


@pytest.mark.parametrize(
    ("label", "op", "shapes", "group"),
    [
        ("adapter@base", "aten::linear", [[1, 9, 64], [2, 64]], "adapter_matmuls"),
        ("adapter@base", "aten::bmm", [[3, 9, 2], [3, 2, 64]], "adapter_matmuls"),
        ("adapter@base", "aten::linear", [[1, 2, 64], [64, 64]], "base_matmuls"),
        ("adapter@mlp", "aten::linear", [[1, 9, 64], [128, 64]], "mlp"),
        ("adapter@mlp", "aten::add", [[1, 9, 64], [1, 9, 64]], "adapter_other"),
        ("attention", "aten::softmax", [], "attention"),
        ("optimizer", "aten::_foreach_mul_", [], "optimizer"),
    ],
)
def test_an_op_is_grouped_by_its_scope_and_its_operands(label, op, shapes, group):
    assert group_of(label, op, shapes, rank=2) == group


def test_backward_ops_follow_their_forward_scope():
    from torch.profiler import ProfilerActivity, profile

    base, adapter = torch.nn.Linear(16, 8), torch.nn.Linear(16, 2, bias=False)
    base.requires_grad_(False)
    x = torch.randn(3, 5, 16)
    profiler = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
    with scopes([(base, "base"), (adapter, "adapter@base")]), profiler as prof:
        (base(x).sum() + adapter(x).sum()).backward()
    seconds = group_events(prof.events(), rank=2)
    assert seconds["base_matmuls"] > 0 and seconds["adapter_matmuls"] > 0
    names = [e.name for e in prof.events()]
    assert any(n.startswith("autograd::engine::evaluate_function: MmBackward") for n in names)
    assert not base._forward_hooks and not base._forward_pre_hooks  # scopes removed after


@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_profiled_step_puts_time_where_the_method_computes(method, tiny_dir):
    result = profile_coursekit(profile_steps=1, method=method, **TINY)
    groups = result["groups"]
    assert list(groups) == list(GROUPS) and result["steps"] == 1
    assert sum(g["fraction"] for g in groups.values()) == pytest.approx(1.0, abs=1e-6)
    for name in ("attention", "lm_head", "base_matmuls", "mlp", "optimizer"):
        assert groups[name]["seconds"] > 0, name
    adapter_time = groups["adapter_matmuls"]["seconds"] + groups["adapter_other"]["seconds"]
    assert (adapter_time > 0) == (method == "lora")
    assert groups["adapter_matmuls"]["seconds"] > 0 or method == "full"
