"""Ablation grids: expansion, settings by field path, and the statistics over seeds."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from coursekit.experiments.grid import (
    Cell,
    aggregate,
    along_axis,
    expand,
    field_paths,
    get_field,
    group_by_setting,
    setting_label,
    slug,
    table_rows,
    with_settings,
)
from coursekit.train.spec import RunSpec

PATHS = ["adapter.rank", "adapter.alpha", "train.learning_rate", "method", "train.curriculum"]
axes_strategy = st.dictionaries(
    st.sampled_from(PATHS),
    st.lists(st.integers(1, 64), min_size=1, max_size=3, unique=True),
    max_size=3,
)
seeds_strategy = st.lists(st.integers(0, 99), min_size=1, max_size=4, unique=True)
values_strategy = st.lists(st.floats(0.1, 10.0), min_size=2, max_size=8)


# --- expansion -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(axes=axes_strategy, seeds=seeds_strategy)
def test_expansion_has_every_combination_times_every_seed_exactly_once(axes, seeds):
    cells = expand(axes, seeds)
    assert len(cells) == math.prod(len(v) for v in axes.values()) * len(seeds)
    expected = {
        (tuple(zip(axes, combination, strict=True)), seed)
        for combination in itertools.product(*axes.values())
        for seed in seeds
    }
    assert {(c.setting, c.seed) for c in cells} == expected
    assert len({(c.setting, c.seed) for c in cells}) == len(cells)  # none twice
    assert len({c.name for c in cells}) == len(cells)  # one folder per cell
    # seed is the outer loop: each seed's cells are contiguous and in the given seed order
    assert [c.seed for c in cells] == [s for s in seeds for _ in range(len(cells) // len(seeds))]


def test_expansion_order_and_names():
    cells = expand({"adapter.rank": (4, 8), "train.learning_rate": (1e-3,)}, [0, 1])
    assert [c.name for c in cells] == [
        "rank=4,learning_rate=0.001,seed=0",
        "rank=8,learning_rate=0.001,seed=0",
        "rank=4,learning_rate=0.001,seed=1",
        "rank=8,learning_rate=0.001,seed=1",
    ]
    assert expand({}, [3]) == (Cell((), 3),) and expand({}, [3])[0].name == "base,seed=3"


def test_lists_become_tuples_so_cells_are_hashable():
    [cell] = expand({"adapter.targets": [["q_proj", "v_proj"]]}, [0])
    assert cell.setting == (("adapter.targets", ("q_proj", "v_proj")),)
    assert cell.name == "targets=q_proj+v_proj,seed=0" and hash(cell)


@pytest.mark.parametrize(
    ("axes", "seeds", "message"),
    [
        ({"adapter.rank": ()}, [0], "the axis adapter.rank has no values"),
        ({"adapter.rank": (4, 8, 4)}, [0], "the axis adapter.rank list 4 more than once"),
        ({"adapter.rank": (4,)}, [], "at least one seed"),
        ({"adapter.rank": (4,)}, [1, 1], "the seeds list 1 more than once"),
        ({"adapter.rank": (8, "8")}, [0], "the same folder name 'rank=8,seed=0'"),
    ],
)
def test_expansion_refuses_what_cannot_make_distinct_runs(axes, seeds, message):
    with pytest.raises(ValueError, match=message):
        expand(axes, seeds)


def test_labels_use_the_last_name_unless_two_axes_share_it():
    assert setting_label((("adapter.rank", 8),)) == "rank=8"
    both = (("adapter.method", "lora"), ("method", "dora"))
    assert setting_label(both) == "adapter.method=lora,method=dora"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(8, "8"), (2e-4, "0.0002"), (1e-5, "1e-05"), ("q/k v", "q-k-v"), (None, "none"),
     (False, "false"), (("q_proj", "v_proj"), "q_proj+v_proj")],
)  # fmt: skip
def test_slugs_are_safe_folder_names(value, expected):
    assert slug(value) == expected


# --- settings by field path ----------------------------------------------------------------


def test_field_paths_are_the_leaves_of_nested_configs():
    paths = field_paths(RunSpec)
    assert {"model", "method", "adapter.rank", "adapter.targets", "train.seed"} <= set(paths)
    assert "adapter" not in paths and "train" not in paths


def test_with_settings_coerces_like_yaml_and_leaves_the_rest():
    base = RunSpec(model="tiny")
    spec = with_settings(base, {"adapter.rank": 16, "train.learning_rate": "1e-3",
                                "adapter.targets": ["q_proj", "v_proj"]})  # fmt: skip
    assert spec.adapter.rank == 16 and spec.train.learning_rate == 0.001
    assert spec.adapter.targets == ("q_proj", "v_proj")
    assert spec.differences(base).keys() == {"adapter.rank", "train.learning_rate",
                                             "adapter.targets"}  # fmt: skip
    assert get_field(spec, "train.learning_rate") == 0.001 and with_settings(base, {}) == base


def test_with_settings_names_an_unknown_path_and_the_known_ones():
    with pytest.raises(ValueError, match=r"'adapter.rnak' is not a field path of RunSpec; known: "):
        with_settings(RunSpec(), {"adapter.rnak": 4})


def test_with_settings_passes_the_configs_own_refusal_on():
    with pytest.raises(ValueError, match=r"AdapterConfig.rank must be >= 1 \(got 0\)"):
        with_settings(RunSpec(), {"adapter.rank": 0})
    with pytest.raises(ValueError, match=r"RunSpec.train.max_steps must be a whole number"):
        with_settings(RunSpec(), {"train.max_steps": 2.5})


# --- statistics over seeds -----------------------------------------------------------------


def test_the_interval_by_hand():
    # x = 1, 2, 3: x̄ = 2, s = 1, t_{0.975, 2} = 4.3027 (printed table), half = 4.3027/√3
    summary = aggregate([1.0, 2.0, 3.0])
    assert (summary.n, summary.mean, summary.std) == (3, 2.0, 1.0)
    assert summary.half_width == pytest.approx(4.3027 / math.sqrt(3), abs=1e-4)
    assert summary.low == pytest.approx(2 - 2.4841, abs=1e-4)
    assert summary.high == pytest.approx(2 + 2.4841, abs=1e-4)
    # 90%: t_{0.95, 2} = 2.9200
    assert aggregate([1.0, 2.0, 3.0], confidence=0.9).half_width == pytest.approx(
        2.92 / math.sqrt(3), abs=1e-4
    )


def test_one_seed_has_no_spread_and_no_interval():
    summary = aggregate([2.5])
    assert (summary.n, summary.mean, summary.std, summary.low, summary.high) == (
        1, 2.5, None, None, None)  # fmt: skip
    assert summary.half_width is None


@pytest.mark.parametrize(
    ("values", "confidence", "message"),
    [([], 0.95, "at least one value"), ([1.0, math.nan], 0.95, "finite numbers"),
     ([1.0, 2.0], 1.0, r"confidence must be in \(0, 1\)")],
)  # fmt: skip
def test_aggregate_refuses_what_has_no_mean_or_interval(values, confidence, message):
    with pytest.raises(ValueError, match=message):
        aggregate(values, confidence=confidence)


@settings(max_examples=80, deadline=None)
@given(values=values_strategy, confidence=st.floats(0.5, 0.99))
def test_the_interval_contains_the_mean_and_is_symmetric(values, confidence):
    summary = aggregate(values, confidence=confidence)
    assert summary.low <= summary.mean <= summary.high
    assert summary.mean - summary.low == pytest.approx(summary.high - summary.mean)
    assert min(values) - 1e-9 <= summary.mean <= max(values) + 1e-9


@settings(max_examples=60, deadline=None)
@given(values=values_strategy, rng=st.randoms(use_true_random=False))
def test_the_order_of_the_seeds_does_not_matter(values, rng):
    shuffled = list(values)
    rng.shuffle(shuffled)
    assert aggregate(shuffled) == aggregate(values)


@settings(max_examples=60, deadline=None)
@given(value=st.floats(0.1, 10.0), n=st.integers(2, 12))
def test_identical_seeds_have_no_width(value, n):
    summary = aggregate([value] * n)
    assert summary.std == 0.0 and summary.half_width == 0.0


@settings(max_examples=60, deadline=None)
@given(values=values_strategy, copies=st.integers(2, 4))
def test_more_seeds_with_the_same_spread_narrow_the_interval(values, copies):
    assume(max(values) - min(values) > 1e-6)
    # Repeating the sample k times keeps x̄, lowers s by √((k n − k)/(k n − 1)), raises √n and
    # lowers t: the interval must shrink.
    assert aggregate(values * copies).half_width < aggregate(values).half_width


@settings(max_examples=60, deadline=None)
@given(values=values_strategy, low=st.floats(0.5, 0.9), high=st.floats(0.91, 0.99))
def test_a_higher_confidence_never_narrows_the_interval(values, low, high):
    assert (
        aggregate(values, confidence=high).half_width
        >= aggregate(values, confidence=low).half_width
    )


@settings(max_examples=60, deadline=None)
@given(values=values_strategy, scale=st.floats(0.01, 100.0))
def test_scaling_the_metric_scales_its_summary(values, scale):
    plain, scaled = aggregate(values), aggregate([v * scale for v in values])
    assert scaled.mean == pytest.approx(plain.mean * scale)
    assert scaled.half_width == pytest.approx(plain.half_width * scale, abs=1e-9)


def test_a_simulated_95_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = random.Random(0)
    trials = 4000
    covered = 0
    for _ in range(trials):
        summary = aggregate([rng.gauss(2.0, 0.3) for _ in range(3)])
        covered += summary.low <= 2.0 <= summary.high
    # binomial sd at p = 0.95 over 4000 trials is 0.0034: ±0.015 is more than 4 sd
    assert abs(covered / trials - 0.95) < 0.015


# --- groups and tables ---------------------------------------------------------------------


def test_groups_summarise_each_setting_over_its_seeds():
    cells = expand({"adapter.rank": (4, 8)}, seeds=(0, 1, 2))
    metrics = [{"val_loss": 2.0 + cell.seed, "tokens_per_s": None} for cell in cells]
    metrics[1] = {"val_loss": None, "tokens_per_s": 100.0}  # rank 8, seed 0: no val loss
    groups = group_by_setting(zip(cells, metrics, strict=True))
    assert [g.label for g in groups] == ["rank=4", "rank=8"]
    assert all(g.seeds == (0, 1, 2) for g in groups)
    assert groups[0].metrics["val_loss"].mean == 3.0 and groups[0].metrics["val_loss"].n == 3
    assert groups[1].metrics["val_loss"].mean == 3.5 and groups[1].metrics["val_loss"].n == 2
    assert groups[0].metrics["tokens_per_s"] is None  # no seed has it
    assert groups[1].metrics["tokens_per_s"].n == 1


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(0.1, 10.0), min_size=6, max_size=6), rng=st.randoms())
def test_groups_do_not_depend_on_the_order_of_the_cells(values, rng):
    cells = expand({"adapter.rank": (4, 8)}, seeds=(0, 1, 2))
    pairs = [(cell, {"val_loss": value}) for cell, value in zip(cells, values, strict=True)]
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    by_label = {g.label: g.metrics["val_loss"] for g in group_by_setting(pairs)}
    assert {g.label: g.metrics["val_loss"] for g in group_by_setting(shuffled)} == by_label


def test_table_rows_are_flat_with_every_statistic():
    cells = expand({"adapter.targets": [("q_proj", "v_proj")]}, seeds=(0, 1))
    metrics = [{"loss": 1.0}, {"loss": 3.0}]
    rows = table_rows(group_by_setting(zip(cells, metrics, strict=True)), ["loss", "x"])
    assert rows == [{
        "adapter.targets": "q_proj+v_proj", "seeds": 2, "loss_mean": 2.0,
        "loss_std": math.sqrt(2), "loss_low": rows[0]["loss_low"],
        "loss_high": rows[0]["loss_high"], "loss_n": 2,
        "x_mean": None, "x_std": None, "x_low": None, "x_high": None, "x_n": None,
    }]  # fmt: skip
    assert rows[0]["loss_low"] < 2.0 < rows[0]["loss_high"]


def test_along_axis_draws_one_series_per_other_setting():
    cells = expand({"adapter.alpha": (8.0, 16.0), "adapter.rank": (4, 8)}, seeds=(0,))
    groups = group_by_setting((c, {"loss": float(i)}) for i, c in enumerate(cells))
    series = along_axis(groups, "adapter.rank", "loss")
    assert series == {
        "alpha=8.0": [(4, 0.0, None, None), (8, 1.0, None, None)],
        "alpha=16.0": [(4, 2.0, None, None), (8, 3.0, None, None)],
    }
    only = group_by_setting((c, {"loss": 1.0}) for c in expand({"adapter.rank": (4,)}, [0]))
    assert along_axis(only, "adapter.rank", "loss") == {"": [(4, 1.0, None, None)]}
    assert along_axis(only, "adapter.rank", "missing") == {}
