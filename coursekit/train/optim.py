"""Optimizers by name, and the memory the run has peaked at.

``TrainConfig.optimizer`` is dispatched through ``OPTIMIZERS``: AdamW (decoupled weight decay,
arXiv 1711.05101) with fp32 states, AdamW with 8-bit block-wise states (bitsandbytes, arXiv
2110.02861) or SGD without momentum (no state at all).

Guide: docs/training.md.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Sequence
from types import MappingProxyType

import torch

from coursekit.errors import CoursekitError
from coursekit.train.config import TrainConfig


def _adamw(params: Sequence[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def _sgd(params: Sequence[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def _adamw_8bit(
    params: Sequence[torch.nn.Parameter], config: TrainConfig
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
    params: Sequence[torch.nn.Parameter], config: TrainConfig
) -> torch.optim.Optimizer:
    """Return the optimizer ``config.optimizer`` names over ``params`` at the peak rate."""
    return OPTIMIZERS[config.optimizer](params, config)


def peak_memory_bytes(device: torch.device) -> int:
    """Return CUDA's ``max_memory_allocated``, or this process's peak RSS on CPU (bytes).

    On CPU this is ``getrusage(RUSAGE_SELF).ru_maxrss`` (Linux reports KiB): the high-water
    mark of the whole process, libraries and data included, not only tensors.
    """
    if device.type == "cuda":  # pragma: no cover - GPU only
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
