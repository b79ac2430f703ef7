"""Hidden checks of Tier B: ``lora_trainable_count``, against coursekit's counts.

``lora_trainable_count(model_config, rank, targets) -> int``: the trainable parameters of
LoRA of rank r on the projections named in ``targets`` (e.g. the MLP's ``gate_proj``,
``up_proj``, ``down_proj``) of every decoder layer of a Qwen2 with ``model_config`` (a
``transformers.Qwen2Config``): Σ over layers and targets of r·(d_in + d_out), with the
shapes of ``coursekit.adapters.count.projection_shapes`` (grouped-query k/v, ``head_dim``).
B has no ``coursekit.check`` exercise: these checks are its own.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st
from transformers import Qwen2Config

from coursekit.adapters import AdapterConfig, apply
from coursekit.adapters.config import KNOWN_TARGETS, MLP_PROJECTIONS
from coursekit.adapters.count import count_trainable
from coursekit.adapters.inject import trainable_count
from coursekit.exercises.compare import counterexample, fail
from coursekit.exercises.tinymodel import tiny_qwen2
from coursekit.workspace.tiers import TIERS

ID = "B.lora_trainable_count"
EXPORTS, SIGNATURE = TIERS["B"].exports, TIERS["B"].signature

Count = Callable[..., int]


def _answer(count: Count, config: Qwen2Config, rank: int, targets: tuple[str, ...], check: str):
    value = count(config, rank, tuple(targets))
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(f"returned {type(value).__name__} {value!r}, not an int", check)
    return value


def _expect(value: int, expected: int, what: str, check: str) -> None:
    if value != expected:
        raise fail(f"{what}: yours {value:,}, expected {expected:,}", check)


def _tiny_mlp(count: Count) -> None:
    """The MLP targets of a tiny Qwen2 at r = 4: what ``apply`` really makes trainable."""
    model = tiny_qwen2()
    expected = trainable_count(apply(model, AdapterConfig(rank=4, alpha=8, targets="mlp")))
    value = _answer(count, model.config, 4, MLP_PROJECTIONS, "tiny Qwen2, MLP targets")
    _expect(value, expected, "gate/up/down at r = 4, 2 layers", "tiny Qwen2, MLP targets")


def _grouped_query(count: Count) -> None:
    """k_proj and v_proj have kv_heads·head_dim outputs (4 heads, 2 KV heads), not hidden."""
    model = tiny_qwen2()
    expected = trainable_count(apply(model, AdapterConfig(rank=2, targets=("k_proj", "v_proj"))))
    value = _answer(count, model.config, 2, ("k_proj", "v_proj"), "grouped-query k and v")
    _expect(value, expected, "k/v at r = 2", "grouped-query k and v")


def _qwen_coder(count: Count) -> None:
    """Qwen2.5-Coder-0.5B's sizes (config.json), all seven projections at r = 16: 8,798,208."""
    config = Qwen2Config(hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, intermediate_size=4864)  # fmt: skip
    value = _answer(count, config, 16, KNOWN_TARGETS, "Qwen2.5-Coder-0.5B, all linear")
    expected = count_trainable(config, AdapterConfig(rank=16, targets="all-linear"))
    _expect(value, expected, "all seven projections at r = 16", "Qwen2.5-Coder-0.5B, all linear")


_CASES = st.tuples(
    st.integers(1, 4),  # heads per KV head
    st.integers(1, 3),  # KV heads
    st.sampled_from((2, 4, 8)),  # head_dim
    st.integers(1, 3),  # layers
    st.integers(1, 96),  # intermediate
    st.integers(1, 64),  # rank
    st.lists(st.sampled_from(KNOWN_TARGETS), min_size=1, max_size=7, unique=True),
)
"""A random Qwen2 shape, rank and target subset."""


def _config(case: tuple) -> Qwen2Config:
    group, kv_heads, head_dim, layers, intermediate, _, _ = case
    heads = group * kv_heads
    return Qwen2Config(hidden_size=heads * head_dim, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv_heads,
                       intermediate_size=intermediate)  # fmt: skip


def _random(count: Count) -> None:
    """Hypothesis: any heads, KV heads, layers, intermediate size, rank and targets."""

    def wrong(case: tuple) -> bool:
        value = count(_config(case), case[5], tuple(case[6]))
        expected = count_trainable(_config(case), AdapterConfig(rank=case[5], targets=case[6]))
        return value != expected

    found = counterexample(_CASES, wrong, examples=60)
    if found is not None:
        config, rank, targets = _config(found), found[5], tuple(found[6])
        check = (
            f"random shapes: hidden {config.hidden_size}, {config.num_attention_heads} heads, "
            f"{config.num_key_value_heads} KV heads, intermediate {config.intermediate_size}, "
            f"{config.num_hidden_layers} layers, r = {rank}, targets {list(targets)}"
        )
        value = count(config, rank, targets)
        _expect(value, count_trainable(config, AdapterConfig(rank=rank, targets=targets)),
                "count", check)  # fmt: skip


CHECKS = (
    ("tiny Qwen2, MLP targets", _tiny_mlp),
    ("grouped-query k and v", _grouped_query),
    ("Qwen2.5-Coder-0.5B, all linear", _qwen_coder),
    ("random shapes and targets", _random),
)
