"""Multi-adapter LoRA (Tier G): N adapters on one frozen base, y_i = W₀x_i + b + s·B_k A_k x_i.

Each example i of a batch carries an adapter index k(i) ∈ {0..N−1} and gets only its adapter's
update: y_i = W₀x_i + b + s·B_{k(i)}·A_{k(i)}·x_i (LoRA, arXiv 2106.09685, applied per example as
in S-LoRA, arXiv 2311.03285, and Punica, arXiv 2310.18547). The N pairs live stacked in one
(N, r, d_in) and one (N, d_out, r) parameter; a forward gathers each example's pair and uses two
batched matmuls. One forward and one backward train all N adapters at once and read W₀ once.
Gathering copies r·(d_in + d_out) numbers per example, small next to the activations at
course sizes; sorting the batch by adapter and running one matmul per group would avoid it.

Routing. Hugging Face models do not pass extra arguments down to their linear layers, so the
indices are set on the modules for the duration of one forward by a context manager::

    with adapter_indices(model, torch.tensor([0, 2, 1, 0])):
        loss = multi_adapter_loss(model(input_ids=ids).logits, ids, indices, n_adapters=3)
    loss.backward()  # backward needs no indices: autograd kept the gathered A and B

The indices are state on the model for the length of the ``with`` block, like ``.training``:
the context manager refuses to nest and always clears them, but it is not a lock, so do not
run routed forwards of one model object from two threads at once; give each thread its own
model object (they can share the frozen base tensors).

Independence. A_k, B_k receive gradient only from examples routed to k. With the loss
Σ_k mean_{i: k(i)=k} ℓ_i (``multi_adapter_loss``) each adapter's gradient is exactly the one it
would get if trained alone on its examples, so joint training equals N separate runs (AdamW's
states are per parameter entry, hence per adapter, too); tests/adapters/test_multi.py checks it.

Shape legend: b batch, s seq, d_in input features, d_out output features, r rank, N adapters.

Used in docs/quantization-and-multi-adapter.md (Tier G) and benchmarks/multi_adapter.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import save
from torch import Tensor, nn

from coursekit.adapters.config import AdapterConfig, layer_index, resolve_targets
from coursekit.adapters.inject import replace_linears
from coursekit.adapters.lowrank import BaseQuantization, base_linear, init_adapter
from coursekit.adapters.peft_format import (
    CONFIG_FILE,
    KEY_PREFIX,
    WEIGHTS_FILE,
    check_fits,
    read_adapter,
    to_peft_config,
)
from coursekit.adapters.variants import VARIANTS, lora_update_variants
from coursekit.io import atomic_open, write_json

PARAMETER_KEYS = VARIANTS["lora"].parameter_keys
"""Each of the N adapters is saved as a plain LoRA adapter (peft's key suffixes)."""


class MultiLoRALinear(nn.Module):
    """y_i = W₀x_i + b + s·B_{k(i)}·A_{k(i)}·dropout(x_i): N LoRA adapters, one per example.

    Attributes:
        weight: frozen W₀, (d_out, d_in) Parameter, or NF4Tensor with ``base_quantization``.
        bias: frozen b, (d_out,), or ``None``.
        lora_a: trainable A_1..A_N stacked, (N, r, d_in); each initialised like LoRA's A.
        lora_b: trainable B_1..B_N stacked, (N, d_out, r); zero, so all start at W₀.
        scale: s = α/r, or α/√r with ``use_rslora``.
        indices: (b,) adapter index per example while inside ``adapter_indices``, else None.
    """

    def __init__(
        self,
        base: nn.Linear,
        *,
        n_adapters: int,
        rank: int,
        alpha: float,
        dropout: float = 0.0,
        use_rslora: bool = False,
        base_quantization: BaseQuantization = "none",
    ) -> None:
        super().__init__()
        init_adapter(
            self, base, rank=rank, alpha=alpha, dropout=dropout, use_rslora=use_rslora,
            base_quantization=base_quantization, n_adapters=n_adapters,
        )  # fmt: skip
        self.n_adapters = n_adapters
        self.indices: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        """Map (b, …, d_in) → (b, …, d_out), adding example i's own adapter k(i)."""
        if self.indices is None:
            raise RuntimeError(
                "MultiLoRALinear needs one adapter index per example; run the forward inside "
                "`with coursekit.adapters.multi.adapter_indices(model, indices):`"
            )
        if self.indices.numel() != x.shape[0]:
            raise ValueError(
                f"adapter_indices holds {self.indices.numel()} indices but the batch has "
                f"{x.shape[0]} examples; pass one index per example"
            )
        out = base_linear(x, self.weight, self.bias)  # (b, …, d_out); no dense NF4 copy saved
        tokens = self.dropout(x).reshape(x.shape[0], -1, self.in_features)  # (b, s, d_in)
        lora_a = self.lora_a[self.indices].to(x.dtype)  # (b, r, d_in)
        lora_b = self.lora_b[self.indices].to(x.dtype)  # (b, d_out, r)
        hidden = torch.bmm(tokens, lora_a.transpose(1, 2))  # (b, s, r)
        delta = torch.bmm(hidden, lora_b.transpose(1, 2)) * self.scale  # (b, s, d_out)
        return out + delta.reshape(out.shape)

    def extra_repr(self) -> str:
        """Describe the shapes and hyperparameters for ``print(model)``."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"n_adapters={self.n_adapters}, rank={self.rank}, alpha={self.alpha}, "
            f"use_rslora={self.use_rslora}, base_quantization={self.base_quantization!r}"
        )


def apply_multi(model: nn.Module, config: AdapterConfig, n_adapters: int) -> nn.Module:
    """Swap each targeted ``nn.Linear`` for a ``MultiLoRALinear`` with ``n_adapters`` adapters.

    Everything else is frozen; the model is changed in place and returned. Targets are
    resolved as ``coursekit.adapters.apply`` resolves them, and all N adapters share
    ``config``'s rank, α, dropout and targets.

    Raises:
        ValueError: ``n_adapters`` < 1, ``config.method`` is not a LoRA-layer variant
            (``lora_update_variants()``: lora, rslora), or the targets match nothing.
    """
    if isinstance(n_adapters, bool) or not isinstance(n_adapters, int) or n_adapters < 1:
        raise ValueError(f"n_adapters must be an int >= 1 (got {n_adapters!r}); use e.g. 4")
    if config.method not in lora_update_variants():
        raise ValueError(
            f"AdapterConfig.method must be 'lora' for apply_multi (got {config.method!r}; it "
            f"takes {lora_update_variants()}); multi-adapter DoRA and LoRA+ are not "
            "implemented, set method='lora'"
        )
    names = resolve_targets(config, model)
    model.requires_grad_(False)
    return replace_linears(
        model,
        names,
        lambda linear: MultiLoRALinear(
            linear,
            n_adapters=n_adapters,
            rank=config.rank,
            alpha=config.alpha,
            dropout=config.dropout,
            use_rslora=VARIANTS[config.method].rank_stabilized,
            base_quantization=config.base_quantization,
        ),
    )


def multi_modules(model: nn.Module) -> Iterator[tuple[str, MultiLoRALinear]]:
    """Yield (qualified name, module) for every ``MultiLoRALinear`` in ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, MultiLoRALinear):
            yield name, module


def _modules_or_raise(model: nn.Module) -> list[tuple[str, MultiLoRALinear]]:
    modules = list(multi_modules(model))
    if not modules:
        raise ValueError("model has no multi-adapter layers; call apply_multi(model, config, n)")
    return modules


@contextlib.contextmanager
def adapter_indices(model: nn.Module, indices: Tensor) -> Iterator[None]:
    """Route example i of every forward inside the block to adapter ``indices[i]``.

    Args:
        model: a model prepared by ``apply_multi``.
        indices: (b,) integer tensor, one adapter index in 0..N−1 per example.

    Raises:
        ValueError: indices are not a 1-D integer tensor in range.
        RuntimeError: the model is already inside ``adapter_indices`` (nested use).
    """
    modules = _modules_or_raise(model)
    n_adapters = modules[0][1].n_adapters
    if indices.ndim != 1 or indices.is_floating_point() or indices.is_complex():
        raise ValueError(
            f"indices must be a 1-D integer tensor (got {indices.dtype}, shape "
            f"{tuple(indices.shape)}); pass one adapter index per example"
        )
    if indices.numel() and not 0 <= int(indices.min()) <= int(indices.max()) < n_adapters:
        raise ValueError(f"indices must lie in 0..{n_adapters - 1} (got {indices.tolist()})")
    if any(module.indices is not None for _, module in modules):
        raise RuntimeError(
            "adapter_indices is already active on this model; do not nest it, and give each "
            "thread its own model object"
        )
    try:
        for _, module in modules:
            module.indices = indices.to(module.lora_a.device, torch.long)
        yield
    finally:
        for _, module in modules:
            module.indices = None


def multi_adapter_loss(
    logits: Tensor, labels: Tensor, indices: Tensor, n_adapters: int, ignore_index: int = -100
) -> Tensor:
    """Return Σ_k mean_{tokens of examples with k(i)=k} CE: the sum of per-adapter LM losses.

    Next-token cross-entropy as in transformers' causal-LM loss (logits at t predict labels at
    t+1, ``ignore_index`` skipped, computed in fp32); each adapter's term is the loss it would
    see if trained alone on its examples, so the sum trains all N independently.

    Args:
        logits: (b, s, V) model outputs.
        labels: (b, s) target token ids.
        indices: (b,) adapter index per example.
        n_adapters: N.
        ignore_index: label value that marks a token without loss (padding, prompt).
    """
    shifted = logits[:, :-1].float()  # (b, s−1, V)
    targets = labels[:, 1:]  # (b, s−1)
    token_loss = nn.functional.cross_entropy(
        shifted.transpose(1, 2), targets, ignore_index=ignore_index, reduction="none"
    )  # (b, s−1)
    valid = (targets != ignore_index).float()  # (b, s−1)
    routing = nn.functional.one_hot(indices.long(), n_adapters).float()  # (b, N)
    loss_sum = routing.T @ (token_loss * valid).sum(dim=1)  # (N,)
    token_count = routing.T @ valid.sum(dim=1)  # (N,)
    return (loss_sum / token_count.clamp(min=1)).sum()


def extract_adapter(model: nn.Module, index: int) -> dict[str, Tensor]:
    """Return adapter ``index`` alone as peft's state dict (``…lora_A.weight``, ``…lora_B.weight``).

    The keys are those ``coursekit.adapters.save_adapter`` writes for a single-adapter model
    with the same targets, so ``load_adapter`` reads the result into a plain base model.
    """
    modules = _modules_or_raise(model)
    if not 0 <= index < modules[0][1].n_adapters:
        raise ValueError(f"index must lie in 0..{modules[0][1].n_adapters - 1} (got {index})")
    tensors = {}
    for name, module in modules:
        for attribute in ("lora_a", "lora_b"):
            value = getattr(module, attribute)[index].detach().to("cpu", copy=True)
            tensors[f"{KEY_PREFIX}{name}.{PARAMETER_KEYS[attribute]}"] = value.contiguous()
    return tensors


def multi_adapter_config(model: nn.Module) -> AdapterConfig:
    """Return the ``AdapterConfig`` each of the model's N adapters follows (read off modules)."""
    modules = _modules_or_raise(model)
    first = modules[0][1]
    names = sorted({name.rsplit(".", 1)[-1] for name, _ in modules})
    layers = sorted({i for name, _ in modules if (i := layer_index(name)) is not None})
    n_layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    return AdapterConfig(
        method="rslora" if first.use_rslora else "lora",
        rank=first.rank,
        alpha=first.alpha,
        dropout=getattr(first.dropout, "p", 0.0),
        targets=tuple(names),
        layers=None if layers in (list(range(n_layers or 0)), []) else tuple(layers),
        base_quantization=first.base_quantization,
    )


def save_one_adapter(model: nn.Module, index: int, directory: str | Path) -> Path:
    """Write adapter ``index`` in peft's format; ``coursekit.adapters.load_adapter`` reads it.

    Each file is written atomically (``coursekit.io.atomic_open``); the directory is created.
    """
    tensors = extract_adapter(model, index)
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    base_name = getattr(model, "name_or_path", None) or None
    write_json(target / CONFIG_FILE, to_peft_config(multi_adapter_config(model), base_name))
    with atomic_open(target / WEIGHTS_FILE, "wb") as handle:
        handle.write(save(tensors, metadata={"format": "pt"}))
    return target


@torch.no_grad()
def load_one_adapter(model: nn.Module, index: int, directory: str | Path) -> nn.Module:
    """Copy a single saved adapter (``save_one_adapter`` or peft's) into slot ``index``.

    Raises:
        CoursekitError: the files are missing, unreadable or do not fit the model's adapters.
    """
    directory = Path(directory)
    expected = extract_adapter(model, index)
    config, tensors = read_adapter(directory)
    check_fits(directory, multi_adapter_config(model), config, expected, tensors)
    for name, module in multi_modules(model):
        for attribute in ("lora_a", "lora_b"):
            key = f"{KEY_PREFIX}{name}.{PARAMETER_KEYS[attribute]}"
            getattr(module, attribute)[index].copy_(tensors[key])
    return model
