"""The engines of ``coursekit bench`` on tiny: budgets, samples fed, methods, peer helpers.

No timing assertions: each run is checked for what it was fed and for consistent numbers.
"""

from __future__ import annotations

import pytest

from coursekit.data.corpus import seed_dir
from coursekit.recipes.bench.budget import budget_digest, load_data
from coursekit.recipes.bench.child import SUITE_ENGINES
from coursekit.recipes.bench.train_throughput import (
    measure_engine,
    parse_result,
    peer_arguments,
    result_line,
)

TINY = {"model": "tiny", "data": str(seed_dir()), "batch_size": 1, "seq_len": 256, "rank": 2,
        "lr": 1e-3, "seed": 0, "val_samples": 2}  # fmt: skip
"""Settings of every run here: small enough for a few seconds per run."""


def check_run(result, *, steps=None):
    assert result["target_tokens"] > 0 and result["train_seconds"] > 0
    assert result["tokens_per_s"] == result["target_tokens"] / result["train_seconds"]
    assert result["peak_rss_bytes"] > 0 and result["wall_seconds"] >= result["train_seconds"]
    assert 0 < result["val_loss"] < 20 and result["positions"] >= result["target_tokens"]
    if steps is not None:
        assert result["steps"] == steps


PEERS_ARE_SLOW = pytest.mark.slow  # transformers' Trainer import and full-vocabulary logits


@pytest.mark.parametrize(
    "engine", ["coursekit", pytest.param("hf", marks=PEERS_ARE_SLOW),
               pytest.param("trl", marks=PEERS_ARE_SLOW)],
)  # fmt: skip
def test_every_engine_is_fed_the_budget_samples_once(engine, tiny_dir):
    expected = load_data(model="tiny", data=TINY["data"], seq_len=256, seed=0, samples=2)
    result = measure_engine(engine, engines=SUITE_ENGINES, steps=None, samples=2, **TINY)
    check_run(result, steps=2)  # batch 1: one sample per step, whatever the engine
    assert result["samples"] == result["distinct_samples"] == 2
    assert result["samples_digest"] == budget_digest(expected.train)
    assert result["target_tokens"] == sum(e.target_tokens for e in expected.train)


@pytest.mark.parametrize("method", ["qat", "multi"])
def test_coursekit_runs_qat_and_the_joint_multi_adapter_run(method, tiny_dir):
    result = measure_engine("coursekit", engines=SUITE_ENGINES, steps=1, method=method,
                            adapters=3, **TINY)  # fmt: skip
    check_run(result, steps=1)
    adapters = 3 if method == "multi" else 1
    assert result["adapters"] == adapters
    assert result["samples"] == adapters * result["distinct_samples"]


def test_the_joint_run_normalizes_and_clips_each_adapter_alone(tiny_dir):
    import torch

    from coursekit.recipes.bench.coursekit_engine import session

    run = session(steps=1, method="multi", adapters=2, **TINY)
    for p in run.step.params:
        p.grad = torch.ones_like(p)
        p.grad[1] *= 1e-9  # adapter 1 is far below the clipping norm, adapter 0 far above
    norms = run.step.clip(1.0)
    after = torch.stack([p.grad.flatten(1).pow(2).sum(1) for p in run.step.params]).sum(0).sqrt()
    assert after[0] == pytest.approx(1.0, rel=1e-4) and after[1] == pytest.approx(norms[1])


def test_peers_share_one_set_of_training_arguments():
    steps = peer_arguments("out", batch_size=4, lr=1e-3, seed=1, steps=7)
    once = peer_arguments("out", batch_size=4, lr=1e-3, seed=1, steps=None)
    assert steps["max_steps"] == 7 and "num_train_epochs" not in steps
    assert once["num_train_epochs"] == 1 and once["train_sampling_strategy"] == "sequential"
    common = {k: v for k, v in steps.items() if k != "max_steps"}
    assert common.items() <= once.items()
    assert common["max_grad_norm"] == 1.0 and common["lr_scheduler_type"] == "constant"


def test_result_round_trips_through_the_child_stdout():
    result = {"tokens_per_s": 10.0, "val_loss": 1.5}
    stdout = "noise\n" + result_line({"old": 1}) + "\n" + result_line(result) + "\nmore\n"
    assert parse_result(stdout) == result
    assert parse_result("no result here\n") is None


def adapted_names(model, kind):
    """The projection names (``q_proj``…) of the modules of type ``kind`` in ``model``."""
    return {
        name.rsplit(".", 1)[-1] for name, m in model.named_modules() if type(m).__name__ == kind
    }


def test_coursekit_engine_trains_the_target_preset_in_the_run_precision(tiny_dir):
    import torch

    from coursekit.adapters import TARGET_PRESETS
    from coursekit.recipes.bench.coursekit_engine import adapted_model, session

    default = adapted_model("tiny", "lora", rank=2, adapters=1)
    assert adapted_names(default, "LoRALinear") == set(TARGET_PRESETS["qv"])
    assert default.model.embed_tokens.weight.dtype == torch.float32
    run = session(steps=1, targets="all-linear", precision="bf16", **TINY)
    assert adapted_names(run.model, "LoRALinear") == set(TARGET_PRESETS["all-linear"])
    assert run.model.model.embed_tokens.weight.dtype == torch.bfloat16
    run.step()
    assert run.totals()["steps"] == 1 and 0 < run.evaluate() < 20


def test_peer_model_targets_the_preset_and_lists_qlora_among_the_methods(tiny_dir):
    from coursekit.adapters import TARGET_PRESETS
    from coursekit.recipes.bench.train_throughput import peer_model

    peft = peer_model("tiny", "lora", 2, targets="mlp")
    lora = {name.rsplit(".", 1)[-1] for name, m in peft.named_modules() if hasattr(m, "lora_A")}
    assert lora == set(TARGET_PRESETS["mlp"])
    with pytest.raises(ValueError, match=r"\['lora', 'dora', 'full', 'qlora'\] \(got 'qat'\)"):
        peer_model("tiny", "qat", 2)


def test_peer_arguments_follow_the_device_and_the_precision():
    default = peer_arguments("out", batch_size=4, lr=1e-3, seed=1, steps=7)
    assert default["use_cpu"] is True and default["bf16"] is False
    gpu = peer_arguments("out", batch_size=4, lr=1e-3, seed=1, steps=7, precision="bf16",
                         device="cuda")  # fmt: skip
    assert gpu["use_cpu"] is False and gpu["bf16"] is True
