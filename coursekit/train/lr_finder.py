"""Learning-rate range test: sweep the LR exponentially, smooth the loss, suggest an LR.

The test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks", §3.3; fastai's
``lr_find``) takes one optimizer step per batch with the learning rate growing geometrically,
lr_i = start · (end / start)^(i / (N − 1)), records the loss, and stops once the smoothed loss
exceeds ``diverge_factor`` × the best smoothed loss so far. The model, the optimizer and the
CPU/CUDA random-number generators are restored afterwards (also when the loss raises), so the
test leaves no trace on the run that follows.

The suggestions are pure functions over ``(lrs, losses)`` (fastai's ``valley``, ``steep`` and
``minimum``), dispatched by name through :data:`SUGGESTERS`.

Example:
    >>> import torch
    >>> model = torch.nn.Linear(1, 1)
    >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> x = torch.linspace(-1, 1, 16).unsqueeze(1)
    >>> batches = [(x, 3 * x + 1)] * 4
    >>> result = lr_range_test(model, optimizer, batches,
    ...     lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1]), num_steps=50)
    >>> 1e-7 <= suggest(result, "valley") <= 10
    True

Used by ``coursekit lr-find`` (``coursekit.recipes.lr_find``; enhancement C of docs/course.md,
finding a learning rate before the real run).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from coursekit.errors import CoursekitWarning

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

Suggestion = Literal["valley", "steepest", "minimum"]


@dataclass(frozen=True, kw_only=True)
class LRFinderResult:
    """The learning rates tried and the losses they gave, one entry per optimizer step."""

    lrs: tuple[float, ...]
    """Learning rate of each step, increasing geometrically."""
    losses: tuple[float, ...]
    """Bias-corrected exponential moving average of the loss after each step."""
    raw_losses: tuple[float, ...]
    """The loss of each step as ``loss_fn`` returned it."""
    stopped_early: bool
    """True when the sweep stopped because the smoothed loss diverged (or was not finite)."""

    def __post_init__(self) -> None:
        """Validate that the three sequences are aligned and non-empty."""
        sizes = {len(self.lrs), len(self.losses), len(self.raw_losses)}
        if len(sizes) != 1 or not self.lrs:
            raise ValueError(
                f"LRFinderResult.lrs, .losses and .raw_losses must have one equal, non-zero "
                f"length (got {len(self.lrs)}, {len(self.losses)}, {len(self.raw_losses)})"
            )


def exponential_lrs(start_lr: float, end_lr: float, num_steps: int) -> list[float]:
    """Return lr_i = start · (end / start)^(i / (N − 1)) for i = 0 … N − 1.

    Example:
        >>> [round(lr, 6) for lr in exponential_lrs(1e-3, 1e-1, 3)]
        [0.001, 0.01, 0.1]
    """
    ratio = end_lr / start_lr
    return [start_lr * ratio ** (i / (num_steps - 1)) for i in range(num_steps)]


def smoothed_losses(raw_losses: Sequence[float], smoothing: float) -> list[float]:
    """Return s_i = a_i / (1 − β^{i+1}) with a_i = β a_{i−1} + (1 − β) x_i and a_{−1} = 0.

    Dividing by 1 − β^{i+1} removes the pull towards the zero start (Adam's bias correction,
    Kingma & Ba 2015 §3), so s_0 = x_0 exactly.

    Example:
        >>> smoothed_losses([2.0, 4.0], 0.5)
        [2.0, 3.3333333333333335]
    """
    average, out = 0.0, []
    for i, loss in enumerate(raw_losses):
        average = smoothing * average + (1 - smoothing) * loss
        out.append(average / (1 - smoothing ** (i + 1)))
    return out


def lr_range_test(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[Any],
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
) -> LRFinderResult:
    """Run the LR range test with lr_i = start · (end/start)^(i/(N−1)); restore all state after.

    Args:
        model: the model to train; its trainable parameters, buffers, gradients and
            train/eval modes are restored afterwards (frozen parameters are never stepped).
        optimizer: an optimizer over ``model``'s parameters; its ``state_dict`` (moments,
            step counts, every param group's lr) is restored afterwards.
        batches: the batches to step on; a re-iterable (a list, a DataLoader) is cycled when
            shorter than ``num_steps``, a one-shot iterator ends the sweep when exhausted.
        loss_fn: ``loss_fn(model, batch)`` returns the scalar loss to minimise.
        start_lr: the first learning rate (> 0).
        end_lr: the last learning rate (> ``start_lr``).
        num_steps: optimizer steps of the sweep (≥ 2).
        smoothing: β of the bias-corrected exponential moving average (0 ≤ β < 1).
        diverge_factor: stop once the smoothed loss exceeds this × the best one (> 1).

    Returns:
        The learning rates, smoothed and raw losses of the steps taken.

    Raises:
        ValueError: an argument out of range, or ``batches`` yielded nothing.
    """
    import torch  # here, not at the top: ``import coursekit.train`` stays fast for the CLI

    check_arguments(start_lr, end_lr, num_steps, smoothing, diverge_factor)
    snapshot = _snapshot(model, optimizer)
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=devices):
            model.train()
            lrs = exponential_lrs(start_lr, end_lr, num_steps)
            return _sweep(
                model, optimizer, _cycle(batches), loss_fn, lrs, smoothing, diverge_factor
            )
    finally:
        _restore(model, optimizer, snapshot)


def _sweep(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterator[Any],
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    lrs: Sequence[float],
    smoothing: float,
    diverge_factor: float,
) -> LRFinderResult:
    """Step once per learning rate until the smoothed loss diverges or the batches run out."""
    tried, raw, smooth, average, best, diverged = [], [], [], 0.0, math.inf, False
    for i, (lr, batch) in enumerate(zip(lrs, batches, strict=False)):
        for group in optimizer.param_groups:  # a LoRA+ group keeps its multiple of lr
            group["lr"] = lr * group.get("lr_scale", 1.0)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model, batch)
        loss.backward()
        optimizer.step()
        tried.append(lr)
        raw.append(float(loss.detach()))
        average = smoothing * average + (1 - smoothing) * raw[-1]
        smooth.append(average / (1 - smoothing ** (i + 1)))
        if not math.isfinite(smooth[-1]) or smooth[-1] > diverge_factor * best:
            diverged = True
            break
        best = min(best, smooth[-1])
    if not tried:
        raise ValueError("lr_range_test: batches yielded no batch; pass a non-empty iterable")
    if len(tried) < len(lrs) and not diverged:
        warnings.warn(
            f"lr_range_test: batches ran out after {len(tried)} of {len(lrs)} steps; "
            f"pass a list or DataLoader (re-iterable) to cycle it",
            CoursekitWarning,
            stacklevel=3,
        )
    return LRFinderResult(
        lrs=tuple(tried), losses=tuple(smooth), raw_losses=tuple(raw), stopped_early=diverged
    )


def check_arguments(
    start_lr: float,
    end_lr: float,
    num_steps: int,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
) -> None:
    """Raise ``ValueError`` naming the first argument of ``lr_range_test`` that breaks its rule.

    The recipe (``coursekit lr-find``) calls it before loading anything.
    """
    finite = math.isfinite
    rules = [
        ("start_lr", start_lr, finite(start_lr) and start_lr > 0, "must be > 0 and finite"),
        ("end_lr", end_lr, finite(end_lr) and end_lr > start_lr,
         f"must be finite and > start_lr={start_lr}"),
        ("num_steps", num_steps, num_steps >= 2, "must be >= 2"),
        ("smoothing", smoothing, 0 <= smoothing < 1, "must be in [0, 1)"),
        ("diverge_factor", diverge_factor, diverge_factor > 1, "must be > 1"),
    ]  # fmt: skip
    for name, value, ok, rule in rules:
        if not ok:
            raise ValueError(f"lr_range_test {name} {rule} (got {value!r})")


def _cycle(batches: Iterable[Any]) -> Iterator[Any]:
    """Yield the batches again and again; stop when a pass yields nothing (a spent iterator)."""
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            return


def _changeable(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Return the tensors a sweep can change: trainable parameters and buffers, by name."""
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    return {**trainable, **dict(model.named_buffers())}


def _snapshot(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Copy everything the sweep changes: weights, gradients, mode, optimizer state.

    Only trainable parameters and buffers are copied: a LoRA run copies its adapters, not
    the frozen base model (which no optimizer step touches).
    """
    return {
        "tensors": {name: t.detach().clone() for name, t in _changeable(model).items()},
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "grads": [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()],
        "modes": [m.training for m in model.modules()],
    }


def _restore(model: torch.nn.Module, optimizer: torch.optim.Optimizer, snapshot: dict) -> None:
    """Put back what :func:`_snapshot` copied, in place (the parameters stay the same objects)."""
    for name, tensor in _changeable(model).items():
        tensor.data.copy_(snapshot["tensors"][name])
    optimizer.load_state_dict(snapshot["optimizer"])
    for parameter, grad in zip(model.parameters(), snapshot["grads"], strict=True):
        parameter.grad = grad
    for module, training in zip(model.modules(), snapshot["modes"], strict=True):
        module.training = training


def valley(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """Return the LR half-way down the longest valley of the loss (fastai's ``valley``, v2.5).

    The valley is the longest strictly decreasing subsequence of the losses, found by the
    O(n²) dynamic programme lds[i] = 1 + max{lds[j] : j < i, loss[j] > loss[i]}; it spans
    indices [end − lds[end], end], and the suggestion sits at start + ⌊s⌋ + ⌊s/2⌋ with
    s = (end − start)/3: the middle of its middle third, where the loss is still falling
    steeply but well before the minimum (fastai's default suggestion).

    Example:
        >>> lrs = [10.0**k for k in range(-6, 4)]
        >>> valley(lrs, [5.0, 4.8, 4.5, 4.0, 3.0, 2.0, 1.5, 1.4, 3.0, 9.0])
        0.001
    """
    n = len(losses)
    lds, start, end = [1] * n, 0, 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[end] < lds[i]:
                end, start = i, max(0, i - lds[i])
    third = (end - start) / 3
    return float(lrs[start + int(third) + int(third / 2)])


def steepest(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """Return lr_i at argmin_i (loss_{i+1} − loss_i) / (ln lr_{i+1} − ln lr_i) (fastai's ``steep``).

    The loss falls fastest per decade of learning rate there; a single point is its own answer.

    Example:
        >>> steepest([1e-3, 1e-2, 1e-1, 1.0], [3.0, 2.9, 1.0, 0.9])
        0.01
    """
    if len(lrs) < 2:
        return float(lrs[0])
    slopes = [
        (losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i]))
        for i in range(len(lrs) - 1)
    ]
    return float(lrs[min(range(len(slopes)), key=slopes.__getitem__)])


def minimum_over_10(lrs: Sequence[float], losses: Sequence[float]) -> float:
    """Return lr_{argmin loss} / 10 (fastai's ``minimum``: a decade below the best loss).

    Example:
        >>> minimum_over_10([1e-3, 1e-2, 1e-1], [2.0, 1.0, 5.0])
        0.001
    """
    return float(lrs[min(range(len(losses)), key=losses.__getitem__)]) / 10


SUGGESTERS: Mapping[str, Callable[[Sequence[float], Sequence[float]], float]] = MappingProxyType(
    {"valley": valley, "steepest": steepest, "minimum": minimum_over_10}
)
"""Suggestion name → pure function ``(lrs, losses) -> lr``; ``valley`` is the default."""


def trimmed(result: LRFinderResult) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return (lrs, losses) without the first 10 % and the last 5 points, as fastai suggests on.

    The first steps barely move the weights and the last ones are the divergence; fewer
    points than that keep everything (a short sweep has nothing to spare).
    """
    n = len(result.lrs)
    begin, end = n // 10, n - 5
    if end - begin < 2:
        begin, end = 0, n
    return result.lrs[begin:end], result.losses[begin:end]


Suggester = Callable[[Sequence[float], Sequence[float]], float]
"""A suggestion rule: ``(lrs, losses) -> lr``, like the functions of :data:`SUGGESTERS`."""


def suggest(result: LRFinderResult, method: Suggestion | Suggester = "valley") -> float:
    """Return the learning rate ``method`` picks on the trimmed smoothed curve.

    Args:
        result: the outcome of :func:`lr_range_test`.
        method: a name of :data:`SUGGESTERS`, or a function ``(lrs, losses) -> lr`` of your
            own (Tier C's exercise, notebooks/phase3_core.ipynb), given the same trimmed curve.

    Raises:
        ValueError: ``method`` is neither a key of :data:`SUGGESTERS` nor callable, or a
            function's answer is not a positive, finite learning rate.

    Example:
        >>> result = LRFinderResult(lrs=(1e-3, 1e-2, 1e-1), losses=(3.0, 2.0, 4.0),
        ...     raw_losses=(3.0, 2.0, 4.0), stopped_early=False)
        >>> suggest(result, "minimum"), suggest(result, lambda lrs, losses: lrs[0])
        (0.001, 0.001)
    """
    if callable(method):
        lrs, losses = trimmed(result)
        lr = float(method(lrs, losses))
        if not 0 < lr < math.inf:
            raise ValueError(
                f"the suggester {getattr(method, '__name__', method)!r} returned {lr!r}; a "
                "learning rate must be > 0 and finite (return one of lrs, or a fraction of one)"
            )
        return lr
    if method not in SUGGESTERS:
        raise ValueError(f"suggest method must be one of {list(SUGGESTERS)} (got {method!r})")
    return SUGGESTERS[method](*trimmed(result))


def plot_lr_finder(
    result: LRFinderResult, suggestions: Mapping[str, float] | None = None
) -> Figure:
    """Plot smoothed (and faint raw) loss against the learning rate on a log axis, with marks.

    Args:
        result: the outcome of :func:`lr_range_test`.
        suggestions: ``{label: lr}`` to mark; None marks every method of :data:`SUGGESTERS`.

    Returns:
        A figure with one axes; x = learning rate (log scale), y = loss.
    """
    from matplotlib.figure import Figure  # here: keeps ``import coursekit.train`` fast

    if suggestions is None:
        suggestions = {name: suggest(result, name) for name in SUGGESTERS}
    figure = Figure(figsize=(6.4, 3.6))
    axes = figure.add_subplot()
    axes.plot(result.lrs, result.raw_losses, color="0.75", linewidth=0.8, label="raw loss")
    axes.plot(result.lrs, result.losses, label="smoothed loss")
    for (label, lr), marker in zip(suggestions.items(), "ovs^Dp*", strict=False):
        nearest = min(range(len(result.lrs)), key=lambda i: abs(math.log(result.lrs[i] / lr)))
        axes.plot([lr], [result.losses[nearest]], marker, label=f"{label}: {lr:.2e}")
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss")
    axes.set_title("LR range test" + (" (stopped: diverged)" if result.stopped_early else ""))
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    return figure
