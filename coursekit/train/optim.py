"""Optimizers by name, and the memory the run has peaked at.

``TrainConfig.optimizer`` is dispatched through ``OPTIMIZERS``: AdamW (decoupled weight decay,
arXiv 1711.05101) with fp32 states, AdamW with 8-bit block-wise states (bitsandbytes, arXiv
2110.02861) or SGD without momentum (no state at all). The optimizer receives named parameter
groups (``coursekit.adapters.optimizer_groups``), each at ``lr_scale`` × the run's learning rate,
so that an adapter variant can train some parameters faster (LoRA+ trains B at λ·η).

Guide: docs/training.md.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

import torch

from coursekit.errors import CoursekitError
from coursekit.train.config import TrainConfig

Groups = Sequence[dict[str, Any]]
"""Optimizer parameter groups: ``{"name", "params", "lr_scale", "lr"}`` each."""


def _adamw(params: Groups, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def _sgd(params: Groups, config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def _adamw_8bit(
    params: Groups, config: TrainConfig
) -> torch.optim.Optimizer:  # pragma: no cover - needs a bitsandbytes backend (CUDA)
    try:
        from bitsandbytes.optim import AdamW8bit

        return AdamW8bit(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    except (ImportError, RuntimeError) as error:
        raise CoursekitError(
            f"TrainConfig.optimizer='adamw-8bit' needs a working bitsandbytes ({error}); "
            "use optimizer='adamw'"
        ) from error


OPTIMIZERS: MappingProxyType[str, Callable[..., torch.optim.Optimizer]] = MappingProxyType(
    {"adamw": _adamw, "sgd": _sgd, "adamw-8bit": _adamw_8bit}
)
"""``TrainConfig.optimizer`` → a function (params, config) → optimizer."""


def build_optimizer(
    groups: Sequence[dict[str, Any]] | Sequence[torch.nn.Parameter], config: TrainConfig
) -> torch.optim.Optimizer:
    """Return the optimizer ``config.optimizer`` names over ``groups`` at the peak rate.

    Args:
        groups: named parameter groups with an ``lr_scale`` (``optimizer_groups(model)``), or
            plain parameters (one group at scale 1). Group g's learning rate is
            η_g = ``lr_scale``_g · ``config.learning_rate``; schedules multiply every η_g alike.
        config: the run's optimizer, learning rate and weight decay.
    """
    if groups and not isinstance(groups[0], dict):
        groups = [{"name": "default", "params": list(groups), "lr_scale": 1.0}]
    scaled = [{**group, "lr": config.learning_rate * group["lr_scale"]} for group in groups]
    return OPTIMIZERS[config.optimizer](scaled, config)


def peak_memory_bytes(device: torch.device) -> int:
    """Return CUDA's ``max_memory_allocated``, or this process's peak RSS on CPU (bytes).

    On CPU this is ``getrusage(RUSAGE_SELF).ru_maxrss`` (Linux reports KiB): the high-water
    mark of the whole process, libraries and data included, not only tensors.
    """
    if device.type == "cuda":  # pragma: no cover - GPU only
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
