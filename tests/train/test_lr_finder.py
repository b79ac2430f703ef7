from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from coursekit.errors import CoursekitWarning
from coursekit.train.lr_finder import (
    SUGGESTERS,
    LRFinderResult,
    exponential_lrs,
    lr_range_test,
    minimum_over_10,
    plot_lr_finder,
    smoothed_losses,
    steepest,
    suggest,
    trimmed,
    valley,
)


def _regression():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Dropout(0.1), torch.nn.Linear(8, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    x = torch.randn(32, 2)
    y = x @ torch.tensor([[2.0], [-1.0]]) + 0.5
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)]
    # one real step first, so the optimizer has moments and a step count to restore
    loss_fn = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])  # noqa: E731
    loss_fn(model, batches[0]).backward()
    optimizer.step()
    return model, optimizer, batches, loss_fn


def _state(model, optimizer):
    return (
        copy.deepcopy(model.state_dict()),
        copy.deepcopy(optimizer.state_dict()),
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        [m.training for m in model.modules()],
        torch.get_rng_state(),
    )


def _assert_same(before, after):
    model_a, optim_a, grads_a, modes_a, rng_a = before
    model_b, optim_b, grads_b, modes_b, rng_b = after
    assert model_a.keys() == model_b.keys()
    for key in model_a:
        assert torch.equal(model_a[key], model_b[key]), key
    assert optim_a["param_groups"] == optim_b["param_groups"]
    for index, state in optim_a["state"].items():
        for name, value in state.items():
            assert torch.equal(value, optim_b["state"][index][name]), (index, name)
    assert all(
        (a is None and b is None) or torch.equal(a, b)
        for a, b in zip(grads_a, grads_b, strict=True)
    )
    assert modes_a == modes_b
    assert torch.equal(rng_a, rng_b)


def test_model_optimizer_grads_mode_and_rng_are_restored_bitwise():
    model, optimizer, batches, loss_fn = _regression()
    model.eval()
    before = _state(model, optimizer)
    result = lr_range_test(model, optimizer, batches, loss_fn, num_steps=30, end_lr=1.0)
    _assert_same(before, _state(model, optimizer))
    assert len(result.lrs) >= 2


def test_frozen_layers_and_buffers_come_back_too():
    torch.manual_seed(1)
    frozen = torch.nn.Linear(2, 8).requires_grad_(False)
    model = torch.nn.Sequential(frozen, torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(16, 2)
    loss_fn = lambda m, b: m(b).pow(2).mean()  # noqa: E731
    before = _state(model, optimizer)
    lr_range_test(model, optimizer, [x], loss_fn, num_steps=10, end_lr=1.0)
    _assert_same(before, _state(model, optimizer))  # running mean/var and num_batches_tracked


def test_state_is_restored_when_the_loss_raises_midway():
    model, optimizer, batches, loss_fn = _regression()
    before = _state(model, optimizer)
    calls = []

    def failing(m, batch):
        calls.append(1)
        if len(calls) == 6:
            raise RuntimeError("out of memory (simulated)")
        return loss_fn(m, batch)

    with pytest.raises(RuntimeError, match="simulated"):
        lr_range_test(model, optimizer, batches, failing, num_steps=20)
    _assert_same(before, _state(model, optimizer))


def _scripted(values):
    """A model with one weight and a loss_fn that returns the scripted values in turn."""
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    script = iter(values)
    loss_fn = lambda m, _: (m.weight * 0).sum() + next(script)  # noqa: E731
    return model, optimizer, loss_fn


def test_stops_once_the_smoothed_loss_exceeds_four_times_the_best():
    values = [4.0, 2.0, 1.0, 3.0, 3.75, 4.5, 100.0, 1e6]
    model, optimizer, loss_fn = _scripted(values)
    result = lr_range_test(model, optimizer, [None], loss_fn, num_steps=8, smoothing=0.0)
    # best is 1.0; 3.75 is within 4×, 4.5 is not: the sweep stops there, keeping that point
    assert result.stopped_early
    assert result.raw_losses == (4.0, 2.0, 1.0, 3.0, 3.75, 4.5)
    assert result.losses == result.raw_losses  # β = 0: no smoothing


def test_non_finite_loss_stops_the_sweep():
    model, optimizer, loss_fn = _scripted([1.0, 0.9, math.nan, 0.5])
    result = lr_range_test(model, optimizer, [None], loss_fn, num_steps=4)
    assert result.stopped_early and len(result.lrs) == 3


def test_bias_corrected_ema_exact_values():
    # a_0 = .5, a_1 = 1.25, a_2 = 2.125; divided by 1 − .5, 1 − .25, 1 − .125
    assert smoothed_losses([1.0, 2.0, 3.0], 0.5) == pytest.approx([1.0, 5 / 3, 17 / 7], abs=1e-15)
    assert smoothed_losses([7.0], 0.98) == pytest.approx([7.0])  # s_0 = x_0: no pull to zero
    model, optimizer, loss_fn = _scripted([3.0, 2.0, 2.5, 1.0])
    result = lr_range_test(model, optimizer, [None], loss_fn, num_steps=4, smoothing=0.5)
    assert list(result.losses) == smoothed_losses([3.0, 2.0, 2.5, 1.0], 0.5)


def test_learning_rates_grow_geometrically_between_the_bounds():
    lrs = exponential_lrs(1e-6, 1.0, 7)
    assert lrs[0] == 1e-6 and lrs[-1] == pytest.approx(1.0)
    ratios = [b / a for a, b in itertools.pairwise(lrs)]
    assert ratios == pytest.approx([10.0] * 6)
    model, optimizer, loss_fn = _scripted([1.0] * 7)
    result = lr_range_test(
        model, optimizer, [None], loss_fn, start_lr=1e-6, end_lr=1.0, num_steps=7
    )
    assert list(result.lrs) == lrs and not result.stopped_early


@pytest.mark.parametrize(
    ("kwargs", "culprit"),
    [
        ({"start_lr": 0.0}, "start_lr"),
        ({"start_lr": 1.0, "end_lr": 0.5}, "end_lr"),
        ({"num_steps": 1}, "num_steps"),
        ({"smoothing": 1.0}, "smoothing"),
        ({"diverge_factor": 1.0}, "diverge_factor"),
    ],
)
def test_bad_arguments_name_the_culprit(kwargs, culprit):
    model, optimizer, loss_fn = _scripted([1.0])
    with pytest.raises(ValueError, match=culprit):
        lr_range_test(model, optimizer, [None], loss_fn, **kwargs)


def test_batches_cycle_when_reiterable_and_warn_when_a_spent_iterator_ends():
    model, optimizer, loss_fn = _scripted([1.0] * 20)
    assert len(lr_range_test(model, optimizer, [0, 1, 2], loss_fn, num_steps=10).lrs) == 10
    model, optimizer, loss_fn = _scripted([1.0] * 20)
    with pytest.warns(CoursekitWarning, match="ran out after 3 of 10"):
        result = lr_range_test(model, optimizer, iter([0, 1, 2]), loss_fn, num_steps=10)
    assert len(result.lrs) == 3 and not result.stopped_early
    with pytest.raises(ValueError, match="no batch"):
        lr_range_test(model, optimizer, [], loss_fn, num_steps=10)


def test_result_validates_its_lengths():
    with pytest.raises(ValueError, match="equal, non-zero length"):
        LRFinderResult(lrs=(1.0,), losses=(), raw_losses=(1.0,), stopped_early=False)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    losses=st.lists(finite, min_size=1, max_size=40),
    start=st.floats(min_value=1e-8, max_value=1e-2),
    decades=st.floats(min_value=0.5, max_value=8),
)
def test_suggestions_lie_in_the_swept_range(losses, start, decades):
    lrs = exponential_lrs(start, start * 10**decades, max(2, len(losses)))[: len(losses)]
    for name in ("valley", "steepest"):
        assert lrs[0] <= SUGGESTERS[name](lrs, losses) <= lrs[-1], name
    best = lrs[losses.index(min(losses))]
    assert minimum_over_10(lrs, losses) == best / 10  # exactly
    assert lrs[0] / 10 <= minimum_over_10(lrs, losses) <= lrs[-1] / 10


@settings(max_examples=100, deadline=None)
@given(
    center=st.floats(min_value=-5, max_value=-1),
    curvature=st.floats(min_value=0.05, max_value=5),
    floor=st.floats(min_value=0.1, max_value=10),
)
def test_on_a_u_shaped_curve_valley_and_steepest_sit_left_of_the_minimum(center, curvature, floor):
    lrs = exponential_lrs(1e-7, 10.0, 80)
    losses = [floor + curvature * (math.log10(lr) - center) ** 2 for lr in lrs]
    lr_min = lrs[losses.index(min(losses))]
    assert valley(lrs, losses) <= lr_min
    assert steepest(lrs, losses) <= lr_min
    assert minimum_over_10(lrs, losses) == lr_min / 10


def test_suggesters_on_known_curves():
    lrs = [1e-3, 1e-2, 1e-1, 1.0]
    assert steepest(lrs, [3.0, 2.9, 1.0, 0.9]) == 1e-2
    assert steepest([0.5], [1.0]) == 0.5
    assert valley(lrs, [1.0, 1.0, 1.0, 1.0]) == 1e-3  # no valley: the first point
    assert minimum_over_10(lrs, [2.0, 1.0, 5.0, 3.0]) == 1e-3


def test_suggest_trims_like_fastai_and_rejects_unknown_methods():
    lrs = tuple(exponential_lrs(1e-5, 1.0, 30))
    losses = tuple(float(i) for i in range(30))  # minimum at the very first point
    result = LRFinderResult(lrs=lrs, losses=losses, raw_losses=losses, stopped_early=False)
    kept_lrs, kept_losses = trimmed(result)
    assert kept_lrs == lrs[3:25] and kept_losses == losses[3:25]
    assert suggest(result, "minimum") == lrs[3] / 10
    short = LRFinderResult(
        lrs=lrs[:4], losses=losses[:4], raw_losses=losses[:4], stopped_early=True
    )
    assert trimmed(short) == (lrs[:4], losses[:4])
    with pytest.raises(ValueError, match="valley"):
        suggest(result, "fastest")


def test_plot_has_a_log_axis_and_one_mark_per_suggestion():
    lrs = tuple(exponential_lrs(1e-6, 1.0, 40))
    losses = tuple(2 + (math.log10(lr) + 2) ** 2 / 10 for lr in lrs)
    result = LRFinderResult(lrs=lrs, losses=losses, raw_losses=losses, stopped_early=True)
    figure = plot_lr_finder(result)
    axes = figure.axes[0]
    assert isinstance(figure, Figure) and axes.get_xscale() == "log"
    assert len(axes.lines) == 2 + len(SUGGESTERS)
    assert "diverged" in axes.get_title()
    assert len(plot_lr_finder(result, {"mine": 1e-3}).axes[0].lines) == 3


def test_real_sweep_on_a_tiny_qwen2_suggests_a_finite_lr_within_bounds(make_tiny_qwen2):
    model = make_tiny_qwen2(0, vocab_size=128, max_position_embeddings=64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    pattern = torch.arange(12) % 6 + 3  # a repeating sequence the model can learn
    batches = [(pattern.repeat(2, 1) + shift) % 128 for shift in range(4)]
    loss_fn = lambda m, ids: m(input_ids=ids, labels=ids).loss  # noqa: E731
    before = _state(model, optimizer)
    result = lr_range_test(model, optimizer, batches, loss_fn, start_lr=1e-5, num_steps=30)
    _assert_same(before, _state(model, optimizer))
    for method in SUGGESTERS:
        lr = suggest(result, method)
        assert math.isfinite(lr) and 1e-7 <= lr <= 10.0, (method, lr)
    assert min(result.losses) < result.losses[0]  # the sweep did learn something


def _curve(n: int = 30) -> LRFinderResult:
    lrs = tuple(exponential_lrs(1e-6, 1.0, n))
    losses = tuple(
        3.0 - math.tanh(math.log10(lr) + 3) + (0.1 * i / n) ** 2 for i, lr in enumerate(lrs)
    )
    return LRFinderResult(lrs=lrs, losses=losses, raw_losses=losses, stopped_early=False)


@pytest.mark.parametrize("name", list(SUGGESTERS))
def test_suggest_takes_a_function_and_gives_it_the_trimmed_curve(name):
    result = _curve()
    seen = []

    def mine(lrs, losses):
        seen.append((tuple(lrs), tuple(losses)))
        return SUGGESTERS[name](lrs, losses)

    assert suggest(result, mine) == suggest(result, name)
    assert seen == [trimmed(result)]


@pytest.mark.parametrize("bad", [0.0, -1e-3, math.inf, math.nan])
def test_suggest_refuses_a_function_returning_no_learning_rate(bad):
    with pytest.raises(ValueError, match="must be > 0 and finite"):
        suggest(_curve(), lambda lrs, losses: bad)


def test_suggest_still_refuses_an_unknown_name():
    with pytest.raises(ValueError, match="suggest method must be one of"):
        suggest(_curve(), "fastest")
