"""The config codec: round trips, diffs, coercion of YAML values, one-line errors."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from coursekit import codec
from coursekit.adapters import KNOWN_TARGETS, TARGET_PRESETS, VARIANTS, AdapterConfig
from coursekit.errors import CoursekitError
from coursekit.train.config import CURRICULA, OPTIMIZERS, PRECISIONS, SCHEDULES, TrainConfig
from coursekit.train.spec import RunSpec, load_spec

finite = {"allow_nan": False, "allow_infinity": False}

adapters = st.builds(
    AdapterConfig,
    method=st.sampled_from(list(VARIANTS)),
    rank=st.integers(1, 256),
    alpha=st.floats(1e-3, 1e3, **finite),
    dropout=st.floats(0, 0.99, **finite),
    targets=st.one_of(
        st.sampled_from(list(TARGET_PRESETS)),
        st.lists(st.sampled_from(KNOWN_TARGETS), min_size=1, unique=True).map(tuple),
    ),
    layers=st.one_of(st.none(), st.lists(st.integers(0, 40), min_size=1, unique=True).map(tuple)),
    base_quantization=st.sampled_from(["none", "nf4"]),
    loraplus_lr_ratio=st.floats(0.01, 100, **finite),
)


@st.composite
def train_configs(draw):
    steps = draw(st.one_of(st.none(), st.integers(1, 10_000)))
    curriculum = draw(st.sampled_from(CURRICULA))
    return TrainConfig(
        max_steps=steps,
        epochs=draw(st.floats(0.01, 10, **finite)) if steps is None else None,
        micro_batch_size=draw(st.integers(1, 64)),
        gradient_accumulation=draw(st.integers(1, 16)),
        learning_rate=draw(st.floats(1e-7, 1.0, **finite)),
        schedule=draw(st.sampled_from(SCHEDULES)),
        warmup_steps=draw(st.integers(0, 100)),
        seq_len=draw(st.integers(8, 4096)),
        packing=curriculum == "none" and draw(st.booleans()),
        seed=draw(st.integers(0, 2**31)),
        curriculum=curriculum,
        precision=draw(st.sampled_from(PRECISIONS)),
        optimizer=draw(st.sampled_from(OPTIMIZERS)),
        gradient_checkpointing=draw(st.booleans()),
    )


specs = st.builds(
    RunSpec,
    model=st.sampled_from(["nano", "tiny", "some/dir"]),
    method=st.sampled_from(["lora", "dora", "qlora", "rslora", "loraplus", "full"]),
    adapter=adapters,
    train=train_configs(),
)


@given(specs)
def test_from_dict_inverts_to_dict_also_through_yaml(spec):
    assert RunSpec.from_dict(spec.to_dict()) == spec
    assert codec.from_dict(RunSpec, yaml.safe_load(codec.to_yaml(spec))) == spec


@given(specs, specs)
def test_differences_are_empty_exactly_when_equal(first, second):
    assert (codec.differences(first, second) == {}) == (first == second)
    assert codec.differences(first, first) == {}


@given(specs, st.data())
def test_one_changed_field_is_the_one_difference(spec, data):
    field = data.draw(st.sampled_from(["seed", "max_grad_norm", "keep_last"]))
    changed = dataclasses.replace(
        spec, train=dataclasses.replace(spec.train, **{field: getattr(spec.train, field) + 1})
    )
    assert list(codec.differences(spec, changed)) == [f"train.{field}"]


def test_layers_survive_the_round_trip_and_show_in_differences():
    """Regression: RunSpec.to_dict once dropped AdapterConfig.layers, hiding it from resume."""
    spec = RunSpec(adapter=AdapterConfig(layers=(0, 1)))
    assert spec.to_dict()["adapter"]["layers"] == [0, 1]
    assert RunSpec.from_dict(spec.to_dict()).adapter.layers == (0, 1)
    assert RunSpec().differences(spec) == {"adapter.layers": (None, [0, 1])}


def test_yaml_strings_are_coerced_to_numbers(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("train:\n  learning_rate: 2e-4\n  max_steps: '20'\nadapter:\n  alpha: '16'\n")
    spec = load_spec(path)
    assert spec.train.learning_rate == 2e-4 and spec.train.max_steps == 20
    assert spec.adapter.alpha == 16.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("train:\n  max_steps: 2.5\n", r":2: RunSpec\.train\.max_steps must be a whole number"),
        ("adapter:\n  rank: 8\n  colour: red\n", r":3: RunSpec\.adapter has no field.*'colour'"),
        ("train:\n  packing: 'yes'\n", r":2: RunSpec\.train\.packing must be true or false"),
        ("adapter:\n  alpha: sixteen\n", r":2: RunSpec\.adapter\.alpha must be a number"),
        ("adapter:\n  alpha: 0\n", r":2: AdapterConfig\.alpha must be > 0"),
        ("adapter:\n  targets: [q_proj, 3]\n", r":2: RunSpec\.adapter\.targets"),
        ("method: ia3\n", r":1: RunSpec\.method must be one of"),
        (
            "train:\n  learning_rate: .inf\n",
            r":2: TrainConfig\.learning_rate must be > 0 and finite",
        ),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("train: [\n", "cannot read the config"),
    ],
)
def test_bad_yaml_values_are_one_line_errors_naming_file_line_and_field(tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(CoursekitError, match=message) as caught:
        load_spec(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TrainConfig(max_steps=2.5), r"TrainConfig\.max_steps must be a whole number"),
        (lambda: TrainConfig(learning_rate="2e-4"), r"must be 0\.0002, not '2e-4'"),
        (lambda: AdapterConfig(alpha="16"), r"AdapterConfig\.alpha must be > 0"),
        (lambda: AdapterConfig(targets=3), r"AdapterConfig\.targets must be a preset or a list"),
        (lambda: RunSpec(train={"seed": 1}), r"RunSpec\.train must be a mapping|RunSpec\.train"),
    ],
)
def test_wrong_types_in_python_are_refused_not_rounded(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_unknown_top_level_key_lists_the_known_fields():
    with pytest.raises(ValueError, match=r"RunSpec has no field\(s\) \['modle'\]; known fields"):
        RunSpec.from_dict({"modle": "nano"})


def test_method_sets_the_adapter_variant_and_base_storage():
    spec = RunSpec(method="qdora", adapter=AdapterConfig(rank=4))
    assert (spec.adapter.method, spec.adapter.base_quantization) == ("dora", "nf4")
    assert spec.adapter_config == spec.adapter
    assert RunSpec(method="full").adapter_config is None


def test_check_rules_names_the_first_failing_field_and_its_value() -> None:
    @dataclasses.dataclass(frozen=True)
    class Box:
        size: int = -1
        name: str = "x"

    codec.check_rules(Box(size=1), [("size", True, "must be >= 0")])
    with pytest.raises(ValueError, match=r"^Box\.size must be >= 0 \(got -1\)$"):
        codec.check_rules(Box(), [("size", False, "must be >= 0"), ("name", False, "unused")])
