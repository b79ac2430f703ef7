"""``RunSpec``: everything a training run depends on, validated before anything is loaded.

Model, data, adapter method and ``AdapterConfig``, and the ``TrainConfig``. It is written to
the run folder as ``config.yaml`` (the layout of ``to_dict``), read back by ``--config`` and
``--resume``, and compared field by field on resume.

Guide: docs/training.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from coursekit.adapters import AdapterConfig
from coursekit.errors import CoursekitError
from coursekit.loading import DEFAULT_MODEL
from coursekit.train.config import TrainConfig

Method = Literal["lora", "dora", "qlora", "full"]
METHODS: tuple[str, ...] = ("lora", "dora", "qlora", "full")


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """Everything a run depends on; written to ``config.yaml`` and compared on resume."""

    model: str = DEFAULT_MODEL
    """``nano`` (the bundled pretrained model), ``tiny`` (random), a bundled model's name, a hub
    id or a checkpoint directory."""
    data: str = ""
    """Directory with ``train/val/test.jsonl[.gz]``; empty: ``data/corpus`` (else the seed set)."""
    method: Method = "lora"
    """``lora``, ``dora``, ``qlora`` (LoRA on an NF4 base) or ``full`` (every weight trains)."""
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    """Rank, alpha, dropout and targets (ignored by ``full``; method comes from ``method``)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The loop's settings."""

    def __post_init__(self) -> None:
        """Validate ``method`` and the curriculum/packing pair; nested configs validated."""
        if self.method not in METHODS:
            raise ValueError(f"RunSpec.method must be one of {list(METHODS)} (got {self.method!r})")
        if self.train.curriculum != "none" and self.train.packing:
            raise ValueError(
                f"RunSpec.train.curriculum={self.train.curriculum!r} needs packing=False (a "
                "curriculum step is one example per row); pass --no-packing"
            )

    @property
    def adapter_config(self) -> AdapterConfig | None:
        """The ``AdapterConfig`` to apply, with method and base storage from ``method``."""
        if self.method == "full":
            return None
        method = "dora" if self.method == "dora" else "lora"
        quantization = "nf4" if self.method == "qlora" else "none"
        return _replace(self.adapter, method=method, base_quantization=quantization)

    def to_dict(self) -> dict[str, Any]:
        """Return the plain dict written to ``config.yaml``."""
        adapter = {k: getattr(self.adapter, k) for k in ("rank", "alpha", "dropout", "use_rslora")}
        targets = self.adapter.targets
        adapter["targets"] = targets if isinstance(targets, str) else list(targets)
        return {
            "model": self.model,
            "data": self.data,
            "method": self.method,
            "adapter": adapter,
            "train": self.train.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """Build a spec from ``to_dict``'s layout (a ``config.yaml``), naming unknown keys."""
        unknown = sorted(set(data) - {"model", "data", "method", "adapter", "train"})
        if unknown:
            raise ValueError(f"run config has unknown key(s) {unknown}; see docs/training.md")
        adapter = dict(data.get("adapter") or {})
        if isinstance(adapter.get("targets"), list):
            adapter["targets"] = tuple(adapter["targets"])
        return cls(
            model=str(data.get("model", DEFAULT_MODEL)),
            data=str(data.get("data", "")),
            method=data.get("method", "lora"),
            adapter=AdapterConfig(**adapter),
            train=TrainConfig.from_dict(dict(data.get("train") or {})),
        )

    def differences(self, other: RunSpec) -> dict[str, tuple[Any, Any]]:
        """Return ``{dotted field: (self's, other's)}`` for every setting that differs."""
        mine, theirs = _flatten(self.to_dict()), _flatten(other.to_dict())
        return {
            k: (mine.get(k), theirs.get(k)) for k in mine | theirs if mine.get(k) != theirs.get(k)
        }


def _replace(config: AdapterConfig, **changes: Any) -> AdapterConfig:
    from dataclasses import replace

    return replace(config, **changes)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_spec(path: str | os.PathLike[str]) -> RunSpec:
    """Read a ``config.yaml`` (a run's, or one written by hand) into a ``RunSpec``."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise CoursekitError(f"{path}: cannot read the run config ({error})") from error
    if not isinstance(data, dict):
        raise CoursekitError(f"{path}: a run config must be a YAML mapping")
    return RunSpec.from_dict(data)
