from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coursekit.train.config import TrainConfig


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_steps": 0}, r"TrainConfig\.max_steps must be >= 1 or None \(got 0\)"),
        ({"max_steps": None}, "exactly one of max_steps and epochs"),
        ({"epochs": 1.0}, "exactly one of max_steps and epochs"),
        ({"max_steps": None, "epochs": 0.0}, r"TrainConfig\.epochs must be > 0"),
        ({"micro_batch_size": 0}, r"micro_batch_size must be >= 1"),
        ({"gradient_accumulation": 0}, r"gradient_accumulation must be >= 1"),
        ({"learning_rate": 0.0}, r"learning_rate must be > 0"),
        ({"schedule": "step"}, r"schedule must be one of"),
        ({"warmup_steps": -1}, r"warmup_steps must be >= 0"),
        ({"seq_len": 4}, r"seq_len must be >= 8"),
        ({"keep_last": 0}, r"keep_last must be >= 1"),
        ({"curriculum": "hard-first"}, r"curriculum must be one of"),
        ({"precision": "fp8"}, r"precision must be one of"),
        ({"optimizer": "lion"}, r"optimizer must be one of"),
    ],
)
def test_invalid_settings_name_the_field_and_value(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_epochs_instead_of_steps():
    config = TrainConfig(max_steps=None, epochs=0.5)
    assert config.epochs == 0.5 and config.max_steps is None


def test_dict_round_trip_and_unknown_keys():
    config = TrainConfig(micro_batch_size=2, gradient_accumulation=8)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.sequences_per_step == 16
    with pytest.raises(ValueError, match=r"no field\(s\) \['learning_rat'\]"):
        TrainConfig.from_dict({"learning_rat": 1e-3})


def test_differences_lists_every_changed_field():
    a = TrainConfig()
    b = TrainConfig(learning_rate=1e-3, seed=1)
    assert a.differences(b) == {"learning_rate": (2e-4, 1e-3), "seed": (0, 1)}
    assert a.differences(a) == {}


@given(
    micro=st.integers(1, 64),
    accumulation=st.integers(1, 64),
    lr=st.floats(1e-7, 1.0),
    warmup=st.integers(0, 1000),
)
def test_valid_configs_round_trip(micro, accumulation, lr, warmup):
    config = TrainConfig(
        micro_batch_size=micro,
        gradient_accumulation=accumulation,
        learning_rate=lr,
        warmup_steps=warmup,
    )
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.sequences_per_step == micro * accumulation
