"""Checks of the Core exercises: C (an LR suggester) and D (token-normalised accumulation).

C.lr_suggester — ``suggest_lr(lrs, losses) -> lr``, the steepest-descent suggestion
    lr_i* with i* = argmin_i (loss_{i+1} − loss_i) / (ln lr_{i+1} − ln lr_i),
    compared with ``coursekit.train.lr_finder.steepest`` (an equally steep point is accepted).
D.token_normalised_accumulation — ``step_loss(loss_sums, token_counts) -> tensor``,
    L = Σ_j S_j / Σ_j n_j over micro-batches j with summed token loss S_j and n_j targets,
    compared with one batch of all tokens and with the gradient coursekit's loop takes.

Guide: docs/exercises.md.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from types import MappingProxyType

import torch
from hypothesis import strategies as st

from coursekit.exercises.compare import (
    compare_tensors,
    counterexample,
    fail,
    number,
)
from coursekit.exercises.registry import Check
from coursekit.exercises.tinymodel import tiny_batch, tiny_qwen2
from coursekit.train.lr_finder import lr_range_test, steepest, trimmed

Suggester = Callable[[Sequence[float], Sequence[float]], float]


def _numbers(values: Sequence[float]) -> str:
    return "[" + ", ".join(number(v) for v in values) + "]"


def _slopes(lrs: Sequence[float], losses: Sequence[float]) -> list[float]:
    return [
        (losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i]))
        for i in range(len(lrs) - 1)
    ]


def _steepest_problem(suggest_lr: Suggester, lrs: list[float], losses: list[float]) -> str | None:
    """Why ``suggest_lr``'s answer on this curve is wrong, or None when it is a steepest point."""
    yours = suggest_lr(list(lrs), list(losses))
    if hasattr(yours, "item") and not isinstance(yours, int | float):
        yours = yours.item()  # a 0-d tensor or a numpy scalar
    if isinstance(yours, bool) or not isinstance(yours, int | float):
        return f"returns a {type(yours).__name__}, expected a float"
    if len(lrs) == 1:
        ok = math.isclose(yours, lrs[0], rel_tol=1e-6)
        return None if ok else f"returns {number(yours)}, expected {number(lrs[0])}"
    slopes = _slopes(lrs, losses)
    best = min(slopes)
    matches = [i for i, lr in enumerate(lrs[:-1]) if math.isclose(yours, lr, rel_tol=1e-6)]
    if not matches and not any(math.isclose(yours, lr, rel_tol=1e-6) for lr in lrs):
        return f"returns {number(yours)}, which is not one of the learning rates given"
    if any(slopes[i] <= best + 1e-9 * max(1.0, abs(best)) for i in matches):
        return None
    expected = steepest(lrs, losses)
    return f"returns {number(yours)}, expected {number(expected)} (loss falls fastest per ln lr)"


def _curve_failure(suggest_lr: Suggester, lrs: list[float], losses: list[float], check: str):
    problem = _steepest_problem(suggest_lr, lrs, losses)
    if problem is not None:
        raise fail(f"{problem} for lrs={_numbers(lrs)}, losses={_numbers(losses)}", check)


def _lr_worked_example(suggest_lr: Suggester) -> None:
    """The docstring curve of ``steepest``: the fall 2.9 → 1.0 is the steepest."""
    _curve_failure(suggest_lr, [1e-3, 1e-2, 1e-1, 1.0], [3.0, 2.9, 1.0, 0.9], "worked example")


def _lr_uneven_grid(suggest_lr: Suggester) -> None:
    """A grid with uneven steps in ln lr: the steepest fall per ln lr, not per point."""
    lrs, losses = [1e-4, 1e-3, 1.1e-3, 1e-1], [3.0, 2.0, 1.9, 1.0]
    _curve_failure(suggest_lr, lrs, losses, "an uneven grid")


_CURVES = st.lists(
    st.tuples(st.integers(-70, 10), st.integers(0, 100)),
    min_size=2,
    max_size=10,
    unique_by=lambda point: point[0],
).map(lambda points: sorted(points))
"""Curves on a non-geometric grid: lr = 10^(k/10), loss = l/10 (exact decimals in messages)."""


def _curve(points: list[tuple[int, int]]) -> tuple[list[float], list[float]]:
    return [10.0 ** (k / 10) for k, _ in points], [loss / 10 for _, loss in points]


def _lr_random_curves(suggest_lr: Suggester) -> None:
    """Hypothesis: on any curve the answer is a steepest point (non-geometric grids too)."""
    found = counterexample(
        _CURVES,
        lambda points: _steepest_problem(suggest_lr, *_curve(points)) is not None,
        examples=100,
    )
    if found is not None:
        _curve_failure(suggest_lr, *_curve(found), "steepest on random curves")


def _lr_single_point(suggest_lr: Suggester) -> None:
    """A sweep of one point suggests that point."""
    _curve_failure(suggest_lr, [3e-4], [2.0], "a single point")


def _lr_inputs_unchanged(suggest_lr: Suggester) -> None:
    """The suggester reads its inputs and leaves them as they were (tuples work too)."""
    lrs, losses = [1e-4, 1e-3, 1e-2, 1e-1], [2.0, 1.9, 1.0, 4.0]
    kept = (list(lrs), list(losses))
    suggest_lr(lrs, losses)
    if (lrs, losses) != kept:
        raise fail("changes the lists it is given; copy them first", "inputs left unchanged")
    suggest_lr(tuple(lrs), tuple(losses))


def _lr_real_sweep(suggest_lr: Suggester) -> None:
    """As a suggester: the trimmed smoothed curve of a real LR range test on y = 3x + 1."""
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.linspace(-1, 1, 16).unsqueeze(1)  # (16, 1)
    result = lr_range_test(
        model,
        optimizer,
        [(x, 3 * x + 1)] * 4,
        lambda m, batch: torch.nn.functional.mse_loss(m(batch[0]), batch[1]),
        num_steps=40,
    )
    lrs, losses = trimmed(result)
    _curve_failure(suggest_lr, list(lrs), list(losses), "on a real LR range test")


StepLoss = Callable[[Sequence[torch.Tensor], Sequence[int]], torch.Tensor]


def _as_float(value: object, check: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.detach())
    raise fail(f"returns a {type(value).__name__}, expected a scalar torch.Tensor", check)


def _accumulation_scalar(step_loss: StepLoss) -> None:
    """The result is a scalar tensor that carries the gradient of the loss sums."""
    sums = [torch.tensor(2.0, requires_grad=True), torch.tensor(3.0, requires_grad=True)]
    out = step_loss(sums, [1, 3])
    check = "returns a scalar tensor"
    if not isinstance(out, torch.Tensor) or out.dim() != 0:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise fail(f"returns {shape}, expected a 0-dimensional torch.Tensor", check)
    if not out.requires_grad:
        raise fail("returns a tensor without a gradient; keep the loss sums in the graph", check)


def _accumulation_worked_example(step_loss: StepLoss) -> None:
    """Sums (2, 3) over 1 and 3 targets: 5/4 = 1.25, where a mean of means gives 1.5."""
    yours = _as_float(step_loss([torch.tensor(2.0), torch.tensor(3.0)], [1, 3]), "worked example")
    if not math.isclose(yours, 1.25, rel_tol=1e-6):
        trap = " (that is the mean of per-micro-batch means)" if math.isclose(yours, 1.5) else ""
        raise fail(
            f"returns {number(yours)} for loss sums (2.0, 3.0) over 1 and 3 target tokens, "
            f"expected 5/4 = 1.25{trap}",
            "worked example",
        )


_SPLITS = st.lists(st.lists(st.integers(0, 20), min_size=1, max_size=4), min_size=2, max_size=4)
"""Micro-batches of per-token losses (tenths), each with ≥ 1 target token."""


def _split_problem(step_loss: StepLoss, split: list[list[int]]) -> tuple[float, float] | None:
    tokens = [[t / 10 for t in micro] for micro in split]
    sums = [torch.tensor(sum(micro), dtype=torch.float64) for micro in tokens]
    yours = _as_float(step_loss(sums, [len(m) for m in tokens]), "k micro-batches ≡ one batch")
    flat = [t for micro in tokens for t in micro]
    expected = sum(flat) / len(flat)
    return None if math.isclose(yours, expected, rel_tol=1e-6, abs_tol=1e-9) else (yours, expected)


def _accumulation_one_batch(step_loss: StepLoss) -> None:
    """Hypothesis: any split into micro-batches gives the mean over all target tokens."""
    found = counterexample(_SPLITS, lambda split: _split_problem(step_loss, split) is not None)
    if found is not None:
        yours, expected = _split_problem(step_loss, found)  # type: ignore[misc]
        losses = [[t / 10 for t in micro] for micro in found]
        raise fail(
            f"micro-batches with token losses {losses}: yours {number(yours)}, one batch "
            f"{number(expected)}",
            "k micro-batches ≡ one batch",
        )


def _accumulation_empty_micro_batch(step_loss: StepLoss) -> None:
    """A micro-batch whose targets were all masked (0 tokens) adds nothing, and no NaN."""
    sums, counts = [torch.tensor(0.0), torch.tensor(6.0)], [0, 4]
    yours = _as_float(step_loss(sums, counts), "a micro-batch without targets")
    if not math.isclose(yours, 1.5, rel_tol=1e-6):
        raise fail(
            f"returns {number(yours)} for loss sums (0.0, 6.0) over 0 and 4 target tokens, "
            "expected 6/4 = 1.5",
            "a micro-batch without targets",
        )


def _accumulation_gradient(step_loss: StepLoss) -> None:
    """Gradient parity on a tiny Qwen2: micro-batches through ``step_loss`` ≡ one batch."""
    from coursekit.train.loss import TargetLoss

    model = tiny_qwen2()
    loss = TargetLoss(model)
    batches = [tiny_batch(seed, rows=1, answer=answer) for seed, answer in enumerate((2, 9, 5))]
    reference = copy.deepcopy(loss)
    whole = [reference(**batch) for batch in batches]
    n = [int((b["targets"] != -100).sum()) for b in batches]
    (sum(whole) / sum(n)).backward()
    sums = [loss(**batch) for batch in batches]
    out = step_loss(sums, n)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise fail("returns no differentiable tensor", "gradient parity on a tiny Qwen2")
    out.backward()
    ours = dict(reference.named_parameters())
    for name, parameter in loss.named_parameters():
        expected = ours[name].grad
        if expected is None:
            continue
        got = parameter.grad if parameter.grad is not None else torch.zeros_like(expected)
        compare_tensors(
            got, expected, "gradient parity on a tiny Qwen2", what=f"gradient of {name[6:]}"
        )


CHECKS: MappingProxyType[str, tuple[Check, ...]] = MappingProxyType(
    {
        "C.lr_suggester": (
            ("worked example", _lr_worked_example),
            ("an uneven grid", _lr_uneven_grid),
            ("steepest on random curves", _lr_random_curves),
            ("a single point", _lr_single_point),
            ("inputs left unchanged", _lr_inputs_unchanged),
            ("on a real LR range test", _lr_real_sweep),
        ),
        "D.token_normalised_accumulation": (
            ("returns a scalar tensor", _accumulation_scalar),
            ("worked example", _accumulation_worked_example),
            ("k micro-batches ≡ one batch", _accumulation_one_batch),
            ("a micro-batch without targets", _accumulation_empty_micro_batch),
            ("gradient parity on a tiny Qwen2", _accumulation_gradient),
        ),
    }
)
"""Exercise id → its ordered checks."""
