"""Interop with peft: files saved by either library load in the other with the same logits."""

from __future__ import annotations

import json

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file

from coursekit.adapters import AdapterConfig, apply, load_adapter, merge, save_adapter
from coursekit.adapters.nf4 import NF4Tensor
from coursekit.adapters.peft_format import CONFIG_FILE, WEIGHTS_FILE, adapter_config_of
from coursekit.adapters.variants import VARIANTS
from coursekit.errors import CoursekitError

METHODS = list(VARIANTS)


def _config(method: str, **overrides) -> AdapterConfig:
    fields = {"method": method, "rank": 4, "alpha": 8.0, "targets": "all-linear"} | overrides
    return AdapterConfig(**fields)


@pytest.fixture
def saved(tmp_path, make_model, randomize):
    """A coursekit DoRA adapter on layer 1 only, saved to tmp_path / 'adapter'."""
    model = apply(make_model(0), _config("dora", layers=(1,), targets="qv"))
    randomize(model)
    return model, save_adapter(model, tmp_path / "adapter")


@pytest.mark.parametrize("method", METHODS)
def test_coursekit_adapter_loads_in_peft_with_same_logits(
    method, tmp_path, make_model, randomize, input_ids
):
    ours = apply(make_model(0), _config(method))
    randomize(ours)
    save_adapter(ours, tmp_path / "adapter", base_model_name_or_path="tiny")
    theirs = PeftModel.from_pretrained(make_model(0), tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(
            ours(input_ids).logits, theirs(input_ids).logits, atol=1e-5, rtol=1e-5
        )
    saved = json.loads((tmp_path / "adapter" / CONFIG_FILE).read_text())
    assert saved["use_dora"] is (method == "dora")
    assert saved["use_rslora"] is (method == "rslora")
    assert saved["base_model_name_or_path"] == "tiny"


@pytest.mark.parametrize("method", ["lora", "dora", "rslora"])
def test_peft_adapter_loads_in_coursekit_with_same_logits(method, tmp_path, make_model, input_ids):
    peft_config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "v_proj", "down_proj"],
        layers_to_transform=[0],
        use_dora=method == "dora",
        use_rslora=method == "rslora",
        task_type="CAUSAL_LM",
    )
    theirs = get_peft_model(make_model(0), peft_config)
    torch.manual_seed(3)
    with torch.no_grad():
        for name, parameter in theirs.named_parameters():
            if "lora_B" in name or "magnitude" in name:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    theirs.save_pretrained(tmp_path / "peft")
    ours = load_adapter(make_model(0), tmp_path / "peft")
    assert adapter_config_of(ours).layers == (0,)
    assert adapter_config_of(ours).method == method
    with torch.no_grad():
        torch.testing.assert_close(
            ours(input_ids).logits, theirs.eval()(input_ids).logits, atol=1e-5, rtol=1e-5
        )


def test_load_onto_an_nf4_base(saved, make_model, input_ids):
    model, directory = saved
    qlora = load_adapter(make_model(0), directory, base_quantization="nf4")
    assert isinstance(qlora.model.layers[1].self_attn.q_proj.weight, NF4Tensor)
    with torch.no_grad():
        exact, approximate = model(input_ids).logits, qlora(input_ids).logits
    # Only W₀ is rounded (4 bits, QLoRA §3); the adapter tensors load exactly. Measured: the
    # logit error is ~1% of the largest logit on this model; 20% leaves room for other seeds.
    error = (approximate - exact).abs().max()
    assert 0 < error < 0.2 * exact.abs().max()


def test_saved_keys_and_config_are_peft_names(saved):
    _, directory = saved
    keys = set(load_file(directory / WEIGHTS_FILE))
    prefix = "base_model.model.model.layers.1.self_attn"
    assert f"{prefix}.q_proj.lora_A.weight" in keys
    assert f"{prefix}.v_proj.lora_B.weight" in keys
    assert f"{prefix}.q_proj.lora_magnitude_vector" in keys
    assert len(keys) == 6
    config = json.loads((directory / CONFIG_FILE).read_text())
    assert config["peft_type"] == "LORA" and config["task_type"] == "CAUSAL_LM"
    assert config["target_modules"] == ["q_proj", "v_proj"]
    assert config["layers_to_transform"] == [1] and config["r"] == 4


def test_round_trip_into_a_model_that_already_has_adapters(saved, make_model, input_ids):
    model, directory = saved
    fresh = apply(make_model(0), _config("dora", layers=(1,), targets="qv"))
    load_adapter(fresh, directory)
    with torch.no_grad():
        torch.testing.assert_close(fresh(input_ids).logits, model(input_ids).logits)


def test_save_replaces_an_existing_directory_atomically(saved, tmp_path):
    model, directory = saved
    (directory / "stale.txt").write_text("old")
    save_adapter(model, directory)
    assert sorted(p.name for p in directory.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no temp dirs left behind


def test_save_without_adapters_raises(make_model, tmp_path):
    with pytest.raises(ValueError, match="no adapters"):
        save_adapter(make_model(0), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_all_linear_string_and_int_layer_are_understood(saved, make_model):
    _, directory = saved
    config = json.loads((directory / CONFIG_FILE).read_text())
    config |= {"target_modules": "all-linear", "layers_to_transform": 1, "use_dora": False}
    (directory / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(CoursekitError, match="missing keys"):
        load_adapter(make_model(0), directory)  # all-linear on layer 1 needs 14 tensors


def _edit_config(directory, **changes):
    config = json.loads((directory / CONFIG_FILE).read_text()) | changes
    (directory / CONFIG_FILE).write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"peft_type": "IA3"}, "peft_type must be 'LORA'"),
        ({"bias": "all"}, "bias must be 'none'"),
        ({"rank_pattern": {"q_proj": 8}}, "rank_pattern"),
        ({"modules_to_save": ["lm_head"]}, "modules_to_save must be None"),
        ({"target_modules": ".*proj"}, "regex targets are not supported"),
        ({"target_modules": ["lm_head"]}, "unknown module names"),
        ({"r": 0}, "rank must be >= 1"),
    ],
)
def test_bad_config_names_the_file(saved, make_model, changes, message):
    _, directory = saved
    _edit_config(directory, **changes)
    with pytest.raises(CoursekitError, match=message) as caught:
        load_adapter(make_model(0), directory)
    assert CONFIG_FILE in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must hold a JSON object")],
)
def test_unreadable_config_names_the_file(saved, make_model, content, message):
    _, directory = saved
    (directory / CONFIG_FILE).write_text(content)
    with pytest.raises(CoursekitError, match=message):
        load_adapter(make_model(0), directory)


@pytest.mark.parametrize("name", [CONFIG_FILE, WEIGHTS_FILE])
def test_missing_file_names_it(saved, make_model, name):
    _, directory = saved
    (directory / name).unlink()
    with pytest.raises(CoursekitError, match=f"{name} is missing"):
        load_adapter(make_model(0), directory)


def test_not_a_directory(tmp_path, make_model):
    with pytest.raises(CoursekitError, match="is not a directory"):
        load_adapter(make_model(0), tmp_path / "nowhere")


def test_corrupt_weights_name_the_file(saved, make_model):
    _, directory = saved
    (directory / WEIGHTS_FILE).write_bytes(b"\x00garbage")
    with pytest.raises(CoursekitError, match="not a readable safetensors file"):
        load_adapter(make_model(0), directory)


def test_wrong_shape_is_reported(saved, make_model):
    _, directory = saved
    tensors = load_file(directory / WEIGHTS_FILE)
    key = "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"
    tensors[key] = torch.zeros(4, 65)
    save_file(tensors, directory / WEIGHTS_FILE)
    with pytest.raises(CoursekitError, match=r"has shape \(4, 65\)"):
        load_adapter(make_model(0), directory)


def test_loading_into_merged_or_mismatched_adapters_raises(saved, make_model):
    _, directory = saved
    merged = merge(apply(make_model(0), _config("dora", layers=(1,), targets="qv")))
    with pytest.raises(CoursekitError, match="merged model"):
        load_adapter(merged, directory)
    other = apply(make_model(0), _config("lora", rank=2, layers=(1,), targets="qv"))
    with pytest.raises(CoursekitError, match=r"\['method', 'rank'\] differ"):
        load_adapter(other, directory)


def test_adapters_with_different_settings_cannot_be_saved(make_model, tmp_path):
    model = apply(make_model(0), _config("lora", targets=["q_proj"]))
    apply(model, _config("dora", targets=["v_proj"]))
    with pytest.raises(ValueError, match="adapters differ"):
        save_adapter(model, tmp_path / "x")
