"""Measure the peak memory of a few real training steps: max over time of allocated bytes.

Runs ``steps`` optimizer steps of ``Qwen2ForCausalLM(model_config)`` with coursekit's
adapters applied (``coursekit.adapters.apply``; none for a full fine-tune): each step is
``gradient_accumulation`` × (forward, cross-entropy on random tokens, backward), then the
optimizer step and ``zero_grad(set_to_none=True)``. The optimizer is AdamW with
``foreach=True`` (torch's default on a GPU) or SGD. Two steps by default, so the second runs
with the optimizer states that the first created: the steady-state peak.

What the peak includes:

* **CUDA**: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, taken
  with the model already on the device: every tensor the caching allocator handed out
  (weights, adapters, gradients, optimizer states, activations, temporaries). Not the CUDA
  context nor reserved-but-unused blocks (``estimate``'s overhead term).
* **CPU**: the same quantity, from torch's own allocator trace: ``torch.profiler`` with
  ``profile_memory=True`` records every allocation and free of a tensor's storage as a
  ``[memory]`` event with a signed size; the peak is the bytes of the model's parameters and
  buffers alive before profiling plus the maximum of the running sum of those events. It
  excludes Python objects, library code, the interpreter and the C allocator's own
  fragmentation and caching (which dominate a process's RSS for small models and say
  nothing about training).

Guide: docs/memory.md. Used by ``coursekit memory measure`` and ``coursekit memory validate``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from coursekit.adapters import AdapterConfig, apply
from coursekit.train.config import TrainConfig

DTYPES: MappingProxyType[str, torch.dtype] = MappingProxyType(
    {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
)
"""``TrainConfig.precision`` → the dtype the model is built in. bf16/fp16 here is pure
low-precision training: torch's AdamW keeps its moments in the parameters' dtype and there is
no fp32 master copy, so the measured optimizer states are 4 bytes per trainable parameter
where ``estimate`` counts mixed precision's 12 (ZeRO §3.1); validate in fp32."""


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """The measured peak of a few training steps."""

    peak_bytes: int
    """Peak bytes held by torch's allocator (see the module docstring for what it includes)."""
    method: str
    """How the peak was taken: ``cuda.max_memory_allocated`` or ``cpu profiler trace``."""
    device: str
    """The device the steps ran on."""
    steps: int
    """Optimizer steps run."""


def _optimizer(parameters: list[nn.Parameter], name: str) -> torch.optim.Optimizer:
    builders: dict[str, Callable[[], torch.optim.Optimizer]] = {
        "adamw": lambda: torch.optim.AdamW(parameters, lr=1e-4, foreach=True),
        "sgd": lambda: torch.optim.SGD(parameters, lr=1e-4),
    }
    if name not in builders:
        raise ValueError(
            f"measure supports optimizer adamw or sgd (got {name!r}); estimate covers "
            "adamw-8bit, measure it on a GPU with your trainer instead"
        )
    return builders[name]()


def build_model(
    model_config: Any,
    adapter_config: AdapterConfig | None,
    train_config: TrainConfig,
    *,
    attention: str,
    device: str,
    seed: int,
) -> nn.Module:
    """Return ``Qwen2ForCausalLM(model_config)`` with adapters applied, in training mode."""
    from transformers import Qwen2ForCausalLM

    model_config._attn_implementation = attention
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2ForCausalLM(model_config).to(DTYPES[train_config.precision])
    if adapter_config is not None:
        apply(model, adapter_config)
    if train_config.gradient_checkpointing:
        model.activation_checkpointing_enable({"use_reentrant": False})
    return model.train()


def _steps(
    model: nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor, n: int, accumulate: int
) -> None:
    for micro in range(1, n * accumulate + 1):
        model(input_ids=batch, labels=batch).loss.backward()
        if micro % accumulate == 0:  # gradients stay alive across one step's micro-batches
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


def _resident_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameter and buffer storages, each storage counted once."""
    storages = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def _cpu_peak(run: Callable[[], None]) -> int:
    """Return the maximum running sum of the allocator's [memory] events while ``run`` runs."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        run()
    events = [e for e in profiler.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return peak


def _cuda_peak(run: Callable[[], None], device: str) -> int:  # pragma: no cover - needs a GPU
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    run()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def measure(
    model_config: Any,
    adapter_config: AdapterConfig | None,
    train_config: TrainConfig,
    *,
    steps: int = 2,
    attention: str = "sdpa",
    device: str = "cpu",
    seed: int = 0,
) -> Measurement:
    """Run ``steps`` training steps and return the allocator's peak bytes (module docstring).

    Args:
        model_config: a Qwen2Config; the model is built with random weights (use a small one
            on a CPU).
        adapter_config: the adapter to apply, or None for a full fine-tune.
        train_config: micro_batch_size, seq_len, precision, optimizer, gradient_checkpointing.
        steps: optimizer steps (>= 1); 2 includes the optimizer states in the peak.
        attention: ``"sdpa"`` or ``"eager"``.
        device: ``"cpu"`` or a CUDA device.
        seed: torch seed for the weights and the random tokens.

    Raises:
        ValueError: ``steps`` < 1, or an optimizer measure cannot build (adamw-8bit).
    """
    if steps < 1:
        raise ValueError(f"measure steps must be >= 1 (got {steps}); use 2")
    config = model_config.__class__.from_dict(model_config.to_dict())  # leave the caller's alone
    model = build_model(
        config, adapter_config, train_config, attention=attention, device=device, seed=seed
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(trainable, train_config.optimizer)
    shape = (train_config.micro_batch_size, train_config.seq_len)
    batch = torch.randint(0, config.vocab_size, shape, device=device)

    def run() -> None:
        _steps(model, optimizer, batch, steps, train_config.gradient_accumulation)

    if torch.device(device).type == "cuda":  # pragma: no cover - needs a GPU
        return Measurement(
            peak_bytes=_cuda_peak(run, device),
            method="cuda.max_memory_allocated",
            device=device,
            steps=steps,
        )
    peak = _resident_bytes(model) + _cpu_peak(run)
    return Measurement(peak_bytes=peak, method="cpu profiler trace", device=device, steps=steps)
