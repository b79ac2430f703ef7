from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from coursekit import loading
from coursekit.errors import CoursekitError, ModelNotFoundError
from coursekit.loading import load_model, load_tokenizer, model_summary, resolve_model
from coursekit.presets import count_parameters
from coursekit.tiny import tiny_qwen2


def test_tiny_name_resolves_to_a_cached_checkpoint_with_tokenizer(tiny_dir):
    assert resolve_model("tiny") == str(tiny_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") == 151645
    model = load_model("tiny")
    logits = model(torch.tensor([[9707, 11, 1879, 0]])).logits
    assert logits.shape == (1, 4, 151936)
    assert not model.training


def test_load_model_nf4_quantizes_the_base_with_bitsandbytes(tiny_dir):
    import bitsandbytes as bnb

    model = load_model(tiny_dir, quantization="nf4")
    q_proj = model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, bnb.nn.Linear4bit)
    assert q_proj.weight.quant_type == "nf4"
    assert q_proj.weight.quant_state.nested  # double quantization of the absmax scales
    logits = model(torch.tensor([[1, 2, 3]])).logits
    assert torch.isfinite(logits).all()


def test_load_model_rejects_unknown_quantization(tiny_dir):
    with pytest.raises(ValueError, match="quantization"):
        load_model(tiny_dir, quantization="int3")


def test_missing_model_offline_says_how_to_fetch_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match=r"hf download Qwen/Qwen2\.5-Coder-0\.5B-Instruct"):
        load_model("qwen2.5-coder-0.5b")
    with pytest.raises(ModelNotFoundError, match="--model tiny"):
        load_tokenizer("Qwen/Qwen2.5-Coder-7B-Instruct")


def test_missing_model_with_reachable_hub_reports_the_hub_error(monkeypatch):
    monkeypatch.setattr(loading, "hub_reachable", lambda *a, **k: True)

    def refuse(*args, **kwargs):
        raise OSError("404 repository not found")

    monkeypatch.setattr(loading.AutoModelForCausalLM, "from_pretrained", refuse)
    with pytest.raises(ModelNotFoundError, match="could not be loaded from the hub: 404"):
        load_model("someone/not-a-model")


def test_a_directory_that_is_not_a_checkpoint_is_named(tmp_path):
    with pytest.raises(CoursekitError, match=str(tmp_path)):
        load_model(tmp_path)


def test_hub_reachable_honours_offline_and_sockets(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert loading.hub_reachable() is False
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    class Connection:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(loading.socket, "create_connection", lambda *a, **k: Connection())
    assert loading.hub_reachable() is True

    def fail(*args, **kwargs):
        raise OSError("unreachable")

    monkeypatch.setattr(loading.socket, "create_connection", fail)
    assert loading.hub_reachable() is False


def test_resolve_model_names(monkeypatch, tmp_path):
    assert resolve_model("qwen2.5-coder-7b") == "Qwen/Qwen2.5-Coder-7B-Instruct"
    assert resolve_model("org/custom") == "org/custom"
    root = tmp_path / "data" / "models"
    (root / "not-a-model").mkdir(parents=True)
    monkeypatch.setattr(loading, "repo_root", lambda: tmp_path)
    with pytest.raises(CoursekitError, match=r"qwen2.5-coder-nano is missing; restore it with"):
        resolve_model("nano")
    (root / "qwen2.5-coder-nano").mkdir()
    (root / "qwen2.5-coder-nano" / "config.json").write_text("{}")
    assert loading.bundled_models() == {"qwen2.5-coder-nano": root / "qwen2.5-coder-nano"}
    assert resolve_model("nano") == resolve_model("qwen2.5-coder-nano")
    assert resolve_model("nano") == str(root / "qwen2.5-coder-nano")


def test_no_bundled_models_directory(monkeypatch, tmp_path):
    monkeypatch.setattr(loading, "repo_root", lambda: tmp_path)
    assert loading.bundled_models() == {}


def test_cache_root_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert loading.cache_root() == tmp_path / "coursekit"


def test_concurrent_tiny_build_keeps_the_winner(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("winner")
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "x").write_text("loser")
    loading._replace_dir(staging, target)
    assert (target / "keep").read_text() == "winner" and not staging.exists()


def test_load_tokenizer_falls_back_to_the_offline_qwen_tokenizer(tmp_path):
    path = tiny_qwen2(tmp_path / "bare", with_tokenizer=False)
    tokenizer = load_tokenizer(path)
    assert tokenizer("Hello, world!")["input_ids"] == [9707, 11, 1879, 0]


def test_a_bare_checkpoint_with_a_small_vocabulary_names_the_missing_tokenizer(tmp_path):
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(loading.resolve_model("nano") + "/config.json", bare / "config.json")
    with pytest.raises(CoursekitError, match=r"no tokenizer files, and its vocabulary \(8192\)"):
        load_tokenizer(bare)


def test_model_summary_describes_the_architecture(tiny_dir):
    summary = model_summary(load_model(tiny_dir), load_tokenizer(tiny_dir))
    assert summary["num_hidden_layers"] == 2
    assert summary["num_key_value_heads"] == 2
    assert summary["tokenizer_size"] == 151665
    assert summary["total_parameters"] == count_parameters(load_model(tiny_dir))
    assert summary["dtype"] == "float32"


def test_a_checkpoint_with_a_broken_config_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CoursekitError, match="not a loadable checkpoint"):
        load_model(tmp_path)


def _copy_checkpoint(source, target):
    import shutil

    target.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(source / name, target / name)
    return target


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda data: data[: len(data) // 2], "truncated safetensors file"),
        (lambda data: data + b"\0" * 16, "oversized safetensors file"),
        (lambda data: data[:5], "truncated safetensors file (5 bytes)"),
        (lambda data: data[:8] + b"{not json" + data[17:], "corrupt safetensors header"),
    ],
    ids=["half", "longer", "five-bytes", "bad-header"],
)
def test_a_damaged_weights_file_is_named(tiny_dir, tmp_path, damage, named):
    checkpoint = _copy_checkpoint(tiny_dir, tmp_path / "m")
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    with pytest.raises(CoursekitError) as error:
        load_model(checkpoint)
    message = str(error.value)
    assert message.startswith(f"{weights}: {named}") and "\n" not in message
    assert "download the model again" in message


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('{"model_type": "qwen2", ', "not a valid JSON model config"),
        ("[1, 2]", "holds a JSON list"),
    ],
)
def test_an_unparsable_config_is_named(tiny_dir, tmp_path, text, named):
    checkpoint = _copy_checkpoint(tiny_dir, tmp_path / "m")
    (checkpoint / "config.json").write_text(text)
    with pytest.raises(CoursekitError) as error:
        load_model(checkpoint)
    assert str(error.value).startswith(f"{checkpoint / 'config.json'}: {named}")


def test_check_checkpoint_passes_a_complete_checkpoint(tiny_dir):
    assert loading.check_checkpoint(tiny_dir) == tiny_dir
