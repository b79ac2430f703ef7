"""``RunSpec``: everything a training run depends on, validated before anything is loaded.

Model, data, adapter method and ``AdapterConfig``, and the ``TrainConfig``. It is written to
the run folder as ``config.yaml`` (the layout of ``to_dict``), read back by ``--config`` and
``--resume``, and compared field by field on resume.

Guide: docs/training.md.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from coursekit import codec
from coursekit.adapters import AdapterConfig, run_methods, split_method
from coursekit.loading import DEFAULT_MODEL
from coursekit.train.config import TrainConfig


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """Everything a run depends on; written to ``config.yaml`` and compared on resume."""

    model: str = DEFAULT_MODEL
    """``nano`` (the bundled pretrained model), ``tiny`` (random), a bundled model's name, a hub
    id or a checkpoint directory."""
    data: str = ""
    """Directory with ``train/val/test.jsonl[.gz]``; empty: ``data/corpus`` (else the seed set)."""
    method: str = "lora"
    """A run method of ``coursekit.adapters.run_methods()``: an adapter variant (``lora``,
    ``dora``, ``rslora``, ``loraplus``), ``q`` + a variant for the same on an NF4 base
    (``qlora``), or ``full`` (every weight trains)."""
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    """Rank, alpha, dropout, targets and layers (ignored by ``full``). Its ``method`` and
    ``base_quantization`` are set from ``method``."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The loop's settings."""

    def __post_init__(self) -> None:
        """Validate ``method`` and the curriculum/packing pair; align the adapter with method."""
        codec.check_types(self)
        try:
            parts = split_method(self.method)
        except ValueError:
            raise ValueError(
                f"RunSpec.method must be one of {list(run_methods())} (got {self.method!r})"
            ) from None
        if parts is not None:
            variant, quantization = parts
            aligned = dataclasses.replace(
                self.adapter, method=variant, base_quantization=quantization
            )
            object.__setattr__(self, "adapter", aligned)
        if self.train.curriculum != "none" and self.train.packing:
            raise ValueError(
                f"RunSpec.train.curriculum={self.train.curriculum!r} needs packing=False (a "
                "curriculum step is one example per row); pass --no-packing"
            )

    @property
    def adapter_config(self) -> AdapterConfig | None:
        """The ``AdapterConfig`` to apply (None for ``full``)."""
        return None if self.method == "full" else self.adapter

    def to_dict(self) -> dict[str, Any]:
        """Return the plain dict written to ``config.yaml`` (``coursekit.codec.to_dict``)."""
        return codec.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """Build a spec from ``to_dict``'s layout, coercing values and naming unknown keys."""
        return codec.from_dict(cls, data)

    def differences(self, other: RunSpec) -> dict[str, tuple[Any, Any]]:
        """Return ``{dotted field: (self's, other's)}`` for every setting that differs."""
        return codec.differences(self, other)


def load_spec(path: str | os.PathLike[str]) -> RunSpec:
    """Read a ``config.yaml`` (a run's, or one written by hand) into a ``RunSpec``.

    Raises:
        CoursekitError: unreadable file, or a refused value (named with its file:line).
    """
    return codec.from_yaml(RunSpec, path)
