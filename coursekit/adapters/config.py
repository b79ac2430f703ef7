"""What to adapt and how: ``AdapterConfig``, the target presets and ``resolve_targets``.

The seven projections of a Qwen2 decoder layer (``Qwen2Attention`` and ``Qwen2MLP`` in
transformers' ``modeling_qwen2.py``) are the only modules an adapter can target:
``q_proj``, ``k_proj``, ``v_proj``, ``o_proj`` (attention) and ``gate_proj``, ``up_proj``,
``down_proj`` (MLP). A preset names a common subset; LoRA §7.1 (arXiv 2106.09685) adapts only
W_q and W_v, QLoRA (arXiv 2305.14314) §4 finds all linear layers necessary to match full
fine-tuning.

Guide: docs/adapters.md. Used in notebooks/phase2_analysis.ipynb (LoRA configuration and
targeting) and by the Phase 3 enhancements (docs/course.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

from torch import nn

from coursekit import codec
from coursekit.adapters.lowrank import BaseQuantization
from coursekit.adapters.variants import VARIANTS

Preset = Literal["qv", "attention", "mlp", "all-linear"]

ATTENTION_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_PROJECTIONS = ("gate_proj", "up_proj", "down_proj")
KNOWN_TARGETS = ATTENTION_PROJECTIONS + MLP_PROJECTIONS
"""Every module name an adapter can target: the linear layers of a Qwen2 decoder layer."""

TARGET_PRESETS: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "qv": ("q_proj", "v_proj"),
        "attention": ATTENTION_PROJECTIONS,
        "mlp": MLP_PROJECTIONS,
        "all-linear": KNOWN_TARGETS,
    }
)
"""Preset name → module names it targets (read-only)."""

_LAYER_INDEX = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fail(field: str, value: object, rule: str, fix: str) -> ValueError:
    return ValueError(f"AdapterConfig.{field} {rule} (got {value!r}); {fix}")


@dataclass(frozen=True, kw_only=True)
class AdapterConfig:
    """A low-rank adapter for the linear layers of a Qwen2 model (a variant of ``VARIANTS``).

    Example:
        >>> AdapterConfig(rank=16, alpha=32, targets="qv").target_names
        ('q_proj', 'v_proj')
    """

    method: str = "lora"
    """The adapter variant, a key of ``coursekit.adapters.variants.VARIANTS``: ``"lora"``
    (arXiv 2106.09685), ``"dora"`` (arXiv 2402.09353), ``"rslora"`` (scale α/√r, arXiv
    2312.03732) or ``"loraplus"`` (B learns faster, arXiv 2402.12354)."""
    rank: int = 8
    """r, the rank of the update B·A; must be >= 1."""
    alpha: float = 16.0
    """α; the update is scaled by α/r (α/√r for ``rslora``); must be > 0."""
    dropout: float = 0.0
    """Dropout probability on the adapter's input (training only); in [0, 1)."""
    targets: Preset | tuple[str, ...] = "qv"
    """A preset (``"qv"``, ``"attention"``, ``"mlp"``, ``"all-linear"``) or module names."""
    layers: tuple[int, ...] | None = None
    """Indices of the decoder layers to adapt; ``None`` adapts every layer."""
    base_quantization: BaseQuantization = "none"
    """How the frozen base weight is stored: ``"none"`` (as is) or ``"nf4"`` (QLoRA)."""
    loraplus_lr_ratio: float = 16.0
    """λ = η_B / η_A of ``loraplus`` (B's learning rate over A's); ignored by other methods."""

    def __post_init__(self) -> None:
        # Lists become tuples, so that equal configs compare (and hash) equal.
        for name in ("targets", "layers"):
            value = getattr(self, name)
            if isinstance(value, Sequence) and not isinstance(value, str | tuple):
                object.__setattr__(self, name, tuple(value))
        if self.method not in VARIANTS:
            raise _fail("method", self.method, f"must be one of {list(VARIANTS)}", "pick one")
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise _fail("rank", self.rank, "must be >= 1", "use an int such as 8 or 16")
        if not (_is_number(self.alpha) and 0 < self.alpha < math.inf):
            raise _fail(
                "alpha", self.alpha, "must be > 0 and finite", "a common choice is alpha = 2 * rank"
            )
        if not (_is_number(self.dropout) and 0 <= self.dropout < 1):
            raise _fail("dropout", self.dropout, "must be in [0, 1)", "use e.g. 0.0 or 0.05")
        ratio = self.loraplus_lr_ratio
        if not (_is_number(ratio) and 0 < ratio < math.inf):
            raise _fail("loraplus_lr_ratio", ratio, "must be a finite number > 0", "use e.g. 16")
        if self.base_quantization not in get_args(BaseQuantization):
            raise _fail(
                "base_quantization",
                self.base_quantization,
                f"must be one of {get_args(BaseQuantization)}",
                "pick one",
            )
        self._check_targets()
        self._check_layers()
        codec.check_types(self)

    def _check_targets(self) -> None:
        if isinstance(self.targets, str):
            if self.targets not in TARGET_PRESETS:
                raise _fail(
                    "targets",
                    self.targets,
                    f"must be a preset {tuple(TARGET_PRESETS)} or a list of module names",
                    f"pass a preset or names from {KNOWN_TARGETS}",
                )
            return
        if not isinstance(self.targets, tuple):
            raise _fail("targets", self.targets, "must be a preset or a list", "e.g. 'qv'")
        if len(self.targets) == 0:
            raise _fail("targets", self.targets, "must not be empty", "name at least one module")
        unknown = [name for name in self.targets if name not in KNOWN_TARGETS]
        if unknown:
            raise _fail(
                "targets",
                self.targets,
                f"contains unknown module names {unknown}",
                f"use names from {KNOWN_TARGETS}",
            )

    def _check_layers(self) -> None:
        if self.layers is None:
            return
        if not isinstance(self.layers, tuple):
            raise _fail("layers", self.layers, "must be a list of layer indices", "e.g. [0, 1]")
        if len(self.layers) == 0:
            raise _fail("layers", self.layers, "must not be empty", "use None for every layer")
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in self.layers):
            raise _fail("layers", self.layers, "must hold ints >= 0", "use e.g. (0, 1)")
        if len(set(self.layers)) != len(self.layers):
            raise _fail("layers", self.layers, "must not repeat an index", "list each once")

    @property
    def target_names(self) -> tuple[str, ...]:
        """The module names to adapt, in the order of ``KNOWN_TARGETS``."""
        names = TARGET_PRESETS[self.targets] if isinstance(self.targets, str) else self.targets
        return tuple(name for name in KNOWN_TARGETS if name in names)


def layer_index(module_name: str) -> int | None:
    """Return i for a qualified name inside ``…layers.i.…``, else ``None``."""
    found = _LAYER_INDEX.search(module_name)
    return int(found.group(1)) if found else None


def resolve_targets(config: AdapterConfig, model: nn.Module) -> list[str]:
    """Return the qualified names of the ``nn.Linear`` modules of ``model`` that ``config`` targets.

    A module matches when its last name component is one of ``config.target_names`` and, if
    ``config.layers`` is set, it sits inside one of those decoder layers.

    Raises:
        ValueError: nothing matches, or a requested layer index matched no module.
    """
    wanted = set(config.target_names)
    matches = []
    for name, module in model.named_modules():
        in_layers = config.layers is None or layer_index(name) in config.layers
        if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in wanted and in_layers:
            matches.append(name)
    if not matches:
        raise _fail(
            "targets",
            config.targets,
            f"matched no nn.Linear module in the model (layers={config.layers})",
            f"the model's adaptable modules are named {KNOWN_TARGETS}",
        )
    found_layers = {layer_index(name) for name in matches}
    missing = sorted(set(config.layers or ()) - found_layers)
    if missing:
        raise _fail(
            "layers",
            config.layers,
            f"names layers {missing} that the model does not have",
            "use indices below model.config.num_hidden_layers",
        )
    return matches
