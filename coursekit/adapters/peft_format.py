"""Save and load adapters in peft's on-disk format, so either library reads the other's files.

A peft LoRA adapter directory holds ``adapter_config.json`` (a ``peft.LoraConfig``) and
``adapter_model.safetensors`` with keys ``base_model.model.<module>.lora_A.weight`` (r, d_in),
``….lora_B.weight`` (d_out, r) and, for DoRA, ``….lora_magnitude_vector`` (d_out,), where
``<module>`` is the module's name in the ``Qwen2ForCausalLM`` (``model.layers.0.self_attn.q_proj``).
Names checked against peft 0.21.2 (``PeftModel.save_pretrained``).

Guide: docs/adapters.md. Used in notebooks/phase2_analysis.ipynb (LoRA configuration and
targeting) and by the Phase 3 enhancements (docs/course.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from coursekit.adapters.config import AdapterConfig, BaseQuantization, layer_index
from coursekit.adapters.inject import adapter_modules, apply
from coursekit.adapters.variants import PEFT_FLAGS, VARIANTS, peft_variant
from coursekit.errors import CoursekitError
from coursekit.io import atomic_directory, write_json

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
KEY_PREFIX = "base_model.model."
MUST_MATCH = ("rank", "alpha")
"""Settings a saved adapter must share with the model's adapters to be loaded into them
(besides its on-disk variant)."""

_UNSUPPORTED: MappingProxyType[str, object] = MappingProxyType(
    {
        "bias": "none",
        "lora_bias": False,
        "fan_in_fan_out": False,
        "rank_pattern": {},
        "alpha_pattern": {},
        "modules_to_save": None,
        "layer_replication": None,
        "trainable_token_indices": None,
    }
)
"""peft config fields coursekit cannot honour, with the only value it accepts (or unset)."""


def peft_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """Return the adapter tensors of ``model`` under peft's key names (contiguous CPU copies)."""
    tensors = {}
    for name, module in adapter_modules(model):
        for attribute, suffix in VARIANTS[module.adapter_config.method].parameter_keys.items():
            value = getattr(module, attribute).detach().to("cpu", copy=True)
            tensors[f"{KEY_PREFIX}{name}.{suffix}"] = value.contiguous()
    return tensors


def adapter_config_of(model: nn.Module) -> AdapterConfig:
    """Return the ``AdapterConfig`` that ``apply`` was called with, read off the modules.

    Raises:
        ValueError: ``model`` has no adapters, or they differ in method or hyperparameters.
    """
    modules = list(adapter_modules(model))
    if not modules:
        raise ValueError("model has no adapters; call coursekit.adapters.apply(model, config)")
    configs = {module.adapter_config for _, module in modules}
    if len(configs) > 1:
        raise ValueError(f"model's adapters differ ({len(configs)} settings); peft needs one")
    names = sorted({name.rsplit(".", 1)[-1] for name, _ in modules})
    layers = sorted({i for name, _ in modules if (i := layer_index(name)) is not None})
    all_layers = list(range(getattr(getattr(model, "config", None), "num_hidden_layers", -1)))
    return dataclasses.replace(
        configs.pop(),
        targets=tuple(names),
        layers=None if layers in (all_layers, []) else tuple(layers),
    )


def to_peft_config(config: AdapterConfig, base_model_name_or_path: str | None) -> dict[str, Any]:
    """Return the ``adapter_config.json`` content peft 0.21 needs to rebuild ``config``."""
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model_name_or_path,
        "r": config.rank,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        **{flag: bool(VARIANTS[config.method].peft_keys.get(flag)) for flag in PEFT_FLAGS},
        "target_modules": list(config.target_names),
        "layers_to_transform": None if config.layers is None else list(config.layers),
        "layers_pattern": None,
        "bias": "none",
        "fan_in_fan_out": False,
        "init_lora_weights": True,
        "inference_mode": True,
        "modules_to_save": None,
        "rank_pattern": {},
        "alpha_pattern": {},
        "revision": None,
    }


def save_adapter(
    model: nn.Module,
    directory: str | os.PathLike[str],
    *,
    base_model_name_or_path: str | None = None,
) -> Path:
    """Write the adapters of ``model`` to ``directory`` in peft's format, atomically.

    The files appear all at once (a temporary sibling directory is renamed into place), so a
    crash leaves either the old directory or the new one. Merged adapters are saved as their
    trained A, B (and m); the merge state is not recorded.

    Args:
        model: a model that ``apply`` (or ``load_adapter``) gave adapters.
        directory: where to write; replaced if it exists.
        base_model_name_or_path: recorded for peft; defaults to ``model.name_or_path``.

    Returns:
        The directory, which ``load_adapter`` and ``peft.PeftModel.from_pretrained`` read.
    """
    config = adapter_config_of(model)
    base_name = base_model_name_or_path or getattr(model, "name_or_path", None) or None
    target = Path(directory)
    with atomic_directory(target) as staging:
        write_json(staging / CONFIG_FILE, to_peft_config(config, base_name))
        save_file(peft_state_dict(model), str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
    return target


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise CoursekitError(f"{path} is missing; an adapter directory needs {CONFIG_FILE}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CoursekitError(f"{path} is not valid JSON ({error}); re-save the adapter") from error
    if not isinstance(data, dict):
        raise CoursekitError(f"{path} must hold a JSON object (got {type(data).__name__})")
    return data


def _peft_targets(path: Path, targets: object) -> str | tuple[str, ...]:
    if targets == "all-linear":
        return "all-linear"
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise CoursekitError(
            f"{path}: target_modules must be a list of module names or 'all-linear' (got "
            f"{targets!r}); regex targets are not supported"
        )
    return tuple(targets)


def from_peft_config(
    data: dict[str, Any], path: Path, base_quantization: BaseQuantization = "none"
) -> AdapterConfig:
    """Return the ``AdapterConfig`` equivalent to a peft LoRA config read from ``path``.

    Raises:
        CoursekitError: the file is not a LoRA/DoRA config coursekit can reproduce.
    """
    if data.get("peft_type") != "LORA":
        raise CoursekitError(f"{path}: peft_type must be 'LORA' (got {data.get('peft_type')!r})")
    for field, accepted in _UNSUPPORTED.items():
        if data.get(field) and data[field] != accepted:
            raise CoursekitError(
                f"{path}: {field} must be {accepted!r} (got {data[field]!r}); coursekit does "
                "not support it"
            )
    layers = data.get("layers_to_transform")
    entry = peft_variant(data)
    if entry is None:
        flags = {flag: data.get(flag) for flag in PEFT_FLAGS}
        raise CoursekitError(
            f"{path}: no coursekit adapter variant has {flags}; registered variants: "
            f"{list(VARIANTS)}"
        )
    try:
        return AdapterConfig(
            method=entry.name,
            rank=data.get("r", 8),
            alpha=data.get("lora_alpha", 8),
            dropout=data.get("lora_dropout", 0.0),
            targets=_peft_targets(path, data.get("target_modules")),
            layers=(layers,) if isinstance(layers, int) else layers and tuple(layers),
            base_quantization=base_quantization,
        )
    except ValueError as error:
        raise CoursekitError(f"{path}: {error}") from error


def _read_weights(directory: Path) -> dict[str, Tensor]:
    path = directory / WEIGHTS_FILE
    if not path.is_file():
        raise CoursekitError(f"{path} is missing; an adapter directory needs {WEIGHTS_FILE}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise CoursekitError(f"{path} is not a readable safetensors file ({error})") from error


def _check_keys(path: Path, expected: dict[str, Tensor], found: dict[str, Tensor]) -> None:
    missing, unexpected = sorted(expected.keys() - found), sorted(found.keys() - expected)
    if missing or unexpected:
        raise CoursekitError(
            f"{path} does not fit the model: missing keys {missing[:3]} ({len(missing)} in all), "
            f"unexpected keys {unexpected[:3]} ({len(unexpected)} in all); was it saved for "
            "another model or adapter config?"
        )
    for key, tensor in found.items():
        if tensor.shape != expected[key].shape:
            raise CoursekitError(
                f"{path}: {key} has shape {tuple(tensor.shape)} but the model needs "
                f"{tuple(expected[key].shape)}; was it saved for another model or rank?"
            )


def read_adapter(
    directory: str | os.PathLike[str], base_quantization: BaseQuantization = "none"
) -> tuple[AdapterConfig, dict[str, Tensor]]:
    """Read a peft adapter directory: its ``AdapterConfig`` and its tensors by peft key.

    The one reader of adapter directories (``load_adapter`` and the multi-adapter
    ``load_one_adapter`` both use it), so a bad directory gets the same message everywhere.

    Raises:
        CoursekitError: the directory or a file is missing, unreadable or not a LoRA config
            coursekit can reproduce.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CoursekitError(f"{directory} is not a directory; pass an adapter directory")
    config = from_peft_config(_read_config(directory), directory / CONFIG_FILE, base_quantization)
    return config, _read_weights(directory)


def _stored_as(config: AdapterConfig) -> str:
    """The variant a config reads back as from disk (LoRA+ is stored as plain LoRA)."""
    entry = peft_variant(VARIANTS[config.method].peft_keys)
    return entry.name if entry is not None else config.method


def check_fits(
    directory: Path,
    current: AdapterConfig,
    saved: AdapterConfig,
    expected: dict[str, Tensor],
    found: dict[str, Tensor],
) -> None:
    """Raise unless a saved adapter (``saved``, ``found``) fits the model's adapters.

    It fits when it is stored as the same variant, shares ``MUST_MATCH`` and has exactly the
    expected keys and shapes.

    Raises:
        CoursekitError: naming the differing settings, keys or shapes.
    """
    mine = {"method": _stored_as(current), **{f: getattr(current, f) for f in MUST_MATCH}}
    theirs = {"method": _stored_as(saved), **{f: getattr(saved, f) for f in MUST_MATCH}}
    differing = [field for field in mine if mine[field] != theirs[field]]
    if differing:
        raise CoursekitError(
            f"{directory / CONFIG_FILE}: {differing} differ from the model's adapters "
            f"({[theirs[f] for f in differing]} vs {[mine[f] for f in differing]}); load into "
            "a fresh base model"
        )
    _check_keys(directory / WEIGHTS_FILE, expected, found)


def load_adapter(
    model: nn.Module,
    directory: str | os.PathLike[str],
    *,
    base_quantization: BaseQuantization = "none",
) -> nn.Module:
    """Load an adapter saved by ``save_adapter`` or by peft's ``save_pretrained`` into ``model``.

    A model without adapters gets them first (``apply`` with the file's config); a model that
    has them must match the file's config. Then the tensors are copied in.

    Args:
        model: the base model (or the same model with matching adapters, not merged).
        directory: the adapter directory.
        base_quantization: how to store the base weights of newly injected adapters.

    Raises:
        CoursekitError: a file is missing, unreadable or does not fit the model.
    """
    directory = Path(directory)
    config, tensors = read_adapter(directory, base_quantization)
    if next(adapter_modules(model), None) is None:
        apply(model, config)
    if any(module.merged for _, module in adapter_modules(model)):
        raise CoursekitError(f"cannot load {directory} into a merged model; call unmerge first")
    check_fits(directory, adapter_config_of(model), config, peft_state_dict(model), tensors)
    with torch.no_grad():
        for name, module in adapter_modules(model):
            for attribute, suffix in VARIANTS[module.adapter_config.method].parameter_keys.items():
                target = getattr(module, attribute)
                target.copy_(tensors[f"{KEY_PREFIX}{name}.{suffix}"].to(target))
    return model
