"""Where a coursekit training step spends its time: ``torch.profiler`` over a few steps, grouped.

``coursekit bench --profile`` runs ``profile_coursekit`` in a child process per method: one
warm-up step, then ``profile_steps`` steps under ``torch.profiler`` (CPU, shapes recorded).
Every op's *self* time goes to one group:

- ``attention``: the attention core (RoPE, scaled dot-product, softmax, head reshapes);
- ``lm_head``: the LM head and the loss (target gather, cross-entropy);
- ``adapter_matmuls``: matmuls of an adapter layer whose second operand has the rank r in
  its last two dimensions (x·Aᵀ, h·Bᵀ, B·A);
- ``adapter_other``: the rest of an adapter layer's own work: scale and add, DoRA's norm,
  NF4 dequantization of the base, QAT's fake quantization, multi-adapter gathers, Python;
- ``base_matmuls``: the frozen q, k, v, o projection matmuls (plain or inside an adapter);
- ``mlp``: the MLP block (gate, up, down matmuls, SiLU, product);
- ``optimizer``: the optimizer step and the gradient clipping;
- ``other``: the rest of the step's wall time: embedding, norms, residual adds, batch
  collation, autograd bookkeeping, Python between ops.

How: forward hooks open a ``record_function`` scope ``bench:<label>`` around each labelled
module (the innermost scope wins), and the optimizer step and clipping calls are wrapped in
``bench:optimizer``. A backward op inherits the group of the forward op that created its
autograd node, matched through the profiler's sequence numbers (the
``autograd::engine::evaluate_function`` events carry the forward op's ``sequence_nr``).
The profiler adds its own overhead per op, so the profiled step is slower than a timed one;
the shares, not the seconds, are the finding.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch

GROUPS: tuple[str, ...] = (
    "attention", "lm_head", "adapter_matmuls", "adapter_other", "base_matmuls", "mlp",
    "optimizer", "other",
)  # fmt: skip
"""The groups, in report order."""
PREFIX = "bench:"
"""Name prefix of the profiler scopes this module opens."""
MATMULS = frozenset({"aten::linear", "aten::matmul", "aten::mm", "aten::addmm", "aten::bmm",
                     "aten::baddbmm", "aten::einsum"})  # fmt: skip
"""Ops counted as matmuls inside an adapter layer."""
BACKWARD = "autograd::engine::evaluate_function: "
"""Name prefix of the profiler's backward-node events."""


def module_labels(model: torch.nn.Module) -> dict[str, str]:
    """Return {qualified module name: scope label} for the modules that open a scope.

    Labels: ``attention`` (``…Attention``, ``…RotaryEmbedding``), ``mlp`` (``…MLP``),
    ``lm_head``, ``other`` (the ``Qwen2Model`` body, so that its loose ops are not counted
    in a wrapping scope), ``base`` (a plain linear layer inside attention) and
    ``adapter@<parent group>`` for an adapter layer (anything with ``lora_a``), where the
    parent group (``base`` in attention, ``mlp`` in the MLP) receives its base matmul.

    Example:
        >>> from coursekit.tiny import tiny_qwen2
        >>> labels = module_labels(tiny_qwen2())  # doctest: +SKIP
        >>> labels["model.layers.0.self_attn.q_proj"]  # doctest: +SKIP
        'base'
    """
    labels: dict[str, str] = {}
    for name, module in model.named_modules():
        kind = type(module).__name__
        parent = _parent_label(labels, name)
        if hasattr(module, "lora_a"):
            labels[name] = f"adapter@{'mlp' if parent == 'mlp' else 'base'}"
        elif kind.endswith(("Attention", "RotaryEmbedding")):
            labels[name] = "attention"
        elif kind.endswith("MLP"):
            labels[name] = "mlp"
        elif name.endswith("lm_head"):
            labels[name] = "lm_head"
        elif kind == "Qwen2Model":
            labels[name] = "other"
        elif isinstance(module, torch.nn.Linear) and parent == "attention":
            labels[name] = "base"
    return labels


def _parent_label(labels: dict[str, str], name: str) -> str | None:
    """Return the label of ``name``'s nearest labelled ancestor."""
    while "." in name:
        name = name.rsplit(".", 1)[0]
        if name in labels:
            return labels[name]
    return labels.get("") if name else None


@contextlib.contextmanager
def scopes(
    modules: Iterable[tuple[torch.nn.Module, str]], calls: Iterable[tuple[Any, str]] = ()
) -> Iterator[None]:
    """Open ``bench:<label>`` around each module's forward and ``bench:optimizer`` around calls.

    Args:
        modules: (module, label) pairs.
        calls: (object, method name) pairs wrapped for the block (instance attributes,
            restored after it).
    """
    handles, wrapped = [], []
    for module, label in modules:
        opened: list[Any] = []

        def enter(mod, args, name=PREFIX + label, opened=opened):
            opened.append(torch.autograd.profiler.record_function(name).__enter__())

        def leave(mod, args, output, opened=opened):
            opened.pop().__exit__(None, None, None)

        handles += [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]
    for owner, method in calls:
        original = getattr(owner, method)
        wrapped.append((owner, method, owner.__dict__.get(method)))
        setattr(owner, method, _scoped(original, PREFIX + "optimizer"))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for owner, method, before in wrapped:
            if before is None:
                delattr(owner, method)
            else:
                setattr(owner, method, before)


def _scoped(function: Any, name: str) -> Any:
    @functools.wraps(function)
    def call(*args, **kwargs):
        with torch.autograd.profiler.record_function(name):
            return function(*args, **kwargs)

    return call


def has_rank(shapes: Sequence[Sequence[int]], rank: int) -> bool:
    """Return True when the second operand has ``rank`` in its last two dimensions.

    Example:
        >>> has_rank([[2, 5, 64], [8, 64]], 8), has_rank([[2, 8, 64], [32, 64]], 8)
        (True, False)
    """
    return len(shapes) > 1 and len(shapes[1]) >= 2 and rank in shapes[1][-2:]


def group_of(label: str, top_op: str | None, shapes: Sequence[Sequence[int]], rank: int) -> str:
    """Return the group of an op in scope ``label`` whose outermost op in the scope is ``top_op``.

    Example:
        >>> group_of("adapter@mlp", "aten::linear", [[2, 5, 64], [8, 64]], 8)
        'adapter_matmuls'
        >>> group_of("adapter@mlp", "aten::linear", [[2, 5, 64], [96, 64]], 8)
        'mlp'
        >>> group_of("adapter@base", "aten::mul", [[2, 5, 64], []], 8)
        'adapter_other'
        >>> group_of("base", "aten::linear", [], 8)
        'base_matmuls'
    """
    if label.startswith("adapter@"):
        if top_op in MATMULS:
            return "adapter_matmuls" if has_rank(shapes, rank) else _GROUP[label[8:]]
        return "adapter_other"
    return _GROUP.get(label, "other")


_GROUP = {"base": "base_matmuls", "attention": "attention", "mlp": "mlp", "lm_head": "lm_head",
          "optimizer": "optimizer", "other": "other"}  # fmt: skip


def group_events(events: Sequence[Any], rank: int) -> dict[str, float]:
    """Return {group: self seconds} over profiler ``events`` (``prof.events()``).

    A forward op takes the group of its innermost ``bench:`` scope and of its outermost op
    below that scope (``group_of``); an op inside a backward node takes its forward op's
    group (same ``sequence_nr``); anything else is ``other``. A scope's own self time (the
    Python of the module) goes to its label's group, ``adapter_other`` for adapter layers.
    """
    forward: dict[int, Any] = {}
    for event in events:
        if event.sequence_nr >= 0 and _backward_node(event) is None:
            forward.setdefault(event.sequence_nr, event)
    seconds = dict.fromkeys(GROUPS, 0.0)
    for event in events:
        node = _backward_node(event)
        if node is not None:
            source = forward.get(node.sequence_nr)
            group = _forward_group(source, rank) if source is not None else "other"
        else:
            group = _forward_group(event, rank)
        seconds[group] += event.self_cpu_time_total / 1e6
    return seconds


def _backward_node(event: Any) -> Any:
    """Return the ``evaluate_function`` event ``event`` runs in (itself included), or None."""
    while event is not None:
        if event.name.startswith(BACKWARD):
            return event
        event = event.cpu_parent
    return None


def _forward_group(event: Any, rank: int) -> str:
    """Return the group of a forward op (or scope) from its innermost scope and top op."""
    if event.name.startswith(PREFIX):
        label = event.name[len(PREFIX) :]
        return "adapter_other" if label.startswith("adapter@") else _GROUP.get(label, "other")
    top = event
    parent = event.cpu_parent
    while parent is not None and not parent.name.startswith(PREFIX):
        top, parent = parent, parent.cpu_parent
    if parent is None:
        return "other"
    return group_of(parent.name[len(PREFIX) :], top.name, top.input_shapes or [], rank)


def profile_coursekit(*, profile_steps: int = 3, **settings: Any) -> dict[str, Any]:
    """Profile ``profile_steps`` coursekit steps after one warm-up step; return the groups.

    Args:
        profile_steps: steps under the profiler.
        **settings: ``coursekit_engine.session``'s keywords; its budget is replaced by
            ``profile_steps`` + 1 steps.

    Returns:
        ``steps``, ``step_seconds`` (wall time per profiled step), and ``groups``: per group
        ``seconds`` (per step) and ``fraction`` of the step; ``other`` is the step's wall time
        less every other group.
    """
    from torch.profiler import ProfilerActivity, profile

    from coursekit.recipes.bench.coursekit_engine import session

    budget = {**settings, "steps": profile_steps + 1, "samples": None}
    run = session(**budget)
    labels = module_labels(run.model)
    modules = [(m, labels[n]) for n, m in run.model.named_modules() if n in labels]
    modules.append((run.loss_module, "lm_head"))
    run.step()  # warm-up: allocations, thread pool, first-call caches
    profiler = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
    with scopes(modules, run.optimizer_calls), profiler as prof:
        started = time.perf_counter()
        for _ in range(profile_steps):
            run.step()
        wall = time.perf_counter() - started
    seconds = group_events(prof.events(), settings.get("rank", 8))
    seconds["other"] = max(0.0, wall - sum(v for k, v in seconds.items() if k != "other"))
    groups = {g: {"seconds": seconds[g] / profile_steps, "fraction": seconds[g] / wall}
              for g in GROUPS}  # fmt: skip
    return {"steps": profile_steps, "step_seconds": wall / profile_steps, "groups": groups}
