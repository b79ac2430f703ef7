from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.data.corpus import load_splits, seed_dir
from coursekit.data.curriculum import (
    PACINGS,
    CurriculumSampler,
    batch_indices,
    difficulty,
    difficulty_basis,
    difficulty_from_losses,
    difficulty_scores,
    linear_pacing,
    root_pacing,
    step_pacing,
)


def _sample(function="fn f() {}", **features):
    return SimpleNamespace(function=function, features=features)


pacing_names = st.sampled_from(sorted(PACINGS))
fractions = st.floats(min_value=0.01, max_value=1.0)


@settings(max_examples=200, deadline=None)
@given(name=pacing_names, total=st.integers(1, 500), c0=fractions, data=st.data())
def test_pacing_is_monotone_bounded_and_reaches_one_at_total(name, total, c0, data):
    pace = PACINGS[name]
    t = data.draw(st.integers(0, total))
    later = data.draw(st.integers(t, 2 * total))
    assert c0 - 1e-12 <= pace(t, total, c0) <= 1.0
    assert pace(t, total, c0) <= pace(later, total, c0)
    assert pace(0, total, c0) == pytest.approx(c0)
    assert pace(total, total, c0) == pytest.approx(1.0)


def test_pacing_formulas():
    assert linear_pacing(5, 10, 0.2) == pytest.approx(0.6)
    assert root_pacing(5, 10, 0.2) == pytest.approx(math.sqrt(5 * 0.96 / 10 + 0.04))
    assert root_pacing(5, 10, 0.2) > linear_pacing(5, 10, 0.2)  # root widens faster early
    assert [step_pacing(t, 10, 0.2) for t in (0, 1, 2, 9, 10)] == pytest.approx(
        [0.2, 0.2, 0.36, 0.84, 1.0]
    )


def test_difficulty_falls_back_to_function_length_on_the_seed_set():
    train = load_splits(seed_dir())["train"]
    result = difficulty_scores(train)
    assert result.basis == ("function_chars",)
    assert len(result.scores) == len(train)
    # one feature, z-scored: mean 0, and the order is the order of the function lengths
    assert sum(result.scores) == pytest.approx(0.0, abs=1e-9)
    by_score = sorted(range(len(train)), key=lambda i: (result.scores[i], i))
    by_length = sorted(range(len(train)), key=lambda i: (len(train[i].function), i))
    assert by_score == by_length


def test_difficulty_combines_complexity_and_length_when_every_sample_has_them():
    samples = [
        _sample(cyclomatic=1, nesting=1, tokens=20, lines=3),
        _sample(cyclomatic=8, nesting=4, tokens=400, lines=40),
        _sample(cyclomatic=3, nesting=2, tokens=90, lines=9),
    ]
    result = difficulty_scores(samples)
    assert result.basis == ("cyclomatic", "nesting", "tokens")
    assert result.scores[0] < result.scores[2] < result.scores[1]
    # tokens missing on one sample: lines is the length measure; bools and NaN do not count
    samples.append(_sample(cyclomatic=2, nesting=True, lines=5, tokens=math.nan))
    assert difficulty_basis(samples) == ("cyclomatic", "lines")


def test_a_constant_feature_contributes_nothing():
    samples = [_sample(cyclomatic=2, lines=n) for n in (1, 10, 100)]
    result = difficulty_scores(samples)
    assert result.basis == ("cyclomatic", "lines")
    lines_only = difficulty_scores([_sample(lines=n) for n in (1, 10, 100)])
    assert result.scores == pytest.approx([s / 2 for s in lines_only.scores])


def test_single_sample_difficulty_is_the_mean_log_feature():
    assert difficulty(_sample(cyclomatic=3, nesting=1, lines=7)) == pytest.approx(
        (math.log(4) + math.log(2) + math.log(8)) / 3
    )
    assert difficulty(_sample("abc")) == pytest.approx(math.log(4))
    with pytest.raises(ValueError, match="at least one sample"):
        difficulty_scores([])


def test_difficulty_from_losses_validates_and_names_the_index():
    assert difficulty_from_losses([2.5, 1.0]).scores == (2.5, 1.0)
    assert difficulty_from_losses([1]).basis == ("model_loss",)
    with pytest.raises(ValueError, match=r"losses\[1\]"):
        difficulty_from_losses([1.0, math.inf])


difficulty_lists = st.lists(
    st.floats(min_value=-100, max_value=100, allow_nan=False), min_size=1, max_size=60
)


@settings(max_examples=150, deadline=None)
@given(
    difficulties=difficulty_lists,
    name=pacing_names,
    total=st.integers(1, 100),
    batch=st.integers(1, 16),
    seed=st.integers(0, 2**32),
    c0=fractions,
    data=st.data(),
)
def test_batches_only_draw_from_the_easiest_pool(difficulties, name, total, batch, seed, c0, data):
    step = data.draw(st.integers(0, total + 5))
    sampler = CurriculumSampler(
        difficulties=difficulties,
        pacing=name,
        total_steps=total,
        batch_size=batch,
        seed=seed,
        start_fraction=c0,
    )
    n = len(difficulties)
    allowed = max(1, math.ceil(PACINGS[name](step, total, c0) * n - 1e-9))
    easiest = sorted(range(n), key=lambda i: (difficulties[i], i))[:allowed]
    indices = sampler.batch(step)
    assert len(indices) == batch
    assert set(indices) <= set(easiest)
    if allowed >= batch:
        assert len(set(indices)) == batch  # no repeats while the pool is large enough


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["none", "linear", "root", "step"]),
    seed=st.integers(0, 2**16),
    resume_at=st.integers(0, 30),
)
def test_deterministic_and_resume_safe(name, seed, resume_at):
    difficulties = [float((7 * i) % 23) for i in range(23)]
    kwargs = dict(pacing=name, total_steps=30, batch_size=4, seed=seed)
    fresh = [batch_indices(difficulties, step=t, **kwargs) for t in range(resume_at + 1)]
    resumed = CurriculumSampler(difficulties=difficulties, **kwargs)  # a new process
    assert resumed.batch(resume_at) == fresh[resume_at]
    assert batch_indices(difficulties, step=resume_at, **kwargs) == fresh[resume_at]


@pytest.mark.parametrize("name", ["none", "linear", "root", "step"])
def test_different_seeds_give_different_orders(name):
    difficulties = list(range(200))
    runs = [
        [
            batch_indices(
                difficulties, pacing=name, step=t, total_steps=10, batch_size=8, seed=seed
            )
            for t in range(10)
        ]
        for seed in (0, 1)
    ]
    assert runs[0] != runs[1]


def test_none_is_a_seeded_permutation_per_epoch():
    sampler = CurriculumSampler(
        difficulties=[0.0] * 10, pacing="none", total_steps=5, batch_size=4, seed=3
    )
    stream = [i for t in range(5) for i in sampler.batch(t)]  # 20 positions: two epochs
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))
    assert stream[:10] != stream[10:]  # each epoch its own permutation
    assert sampler.competence(0) == 1.0 and sampler.pool_size(0) == 10


def test_the_pool_widens_from_the_easiest_fraction():
    sampler = CurriculumSampler(
        difficulties=list(range(100, 0, -1)),  # index 99 is the easiest
        pacing="linear",
        total_steps=10,
        batch_size=5,
        seed=0,
        start_fraction=0.1,
    )
    assert [sampler.pool_size(t) for t in (0, 5, 10, 20)] == [10, 55, 100, 100]
    assert sampler.order[:3] == (99, 98, 97)
    assert all(i >= 90 for i in sampler.batch(0))
    tiny = CurriculumSampler(difficulties=[1.0, 2.0], total_steps=4, batch_size=3, seed=0)
    assert tiny.batch(0) == [0, 0, 0]  # pool of 1 smaller than the batch: with replacement


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"difficulties": []}, "difficulties must hold at least one score (got 0 scores)"),
        ({"pacing": "cosine"}, "pacing must be one of"),
        ({"total_steps": 0}, "total_steps must be >= 1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"start_fraction": 0.0}, "start_fraction must be in"),
    ],
)
def test_invalid_settings_name_field_value_and_rule(kwargs, message):
    settings_ = {"difficulties": [1.0], "total_steps": 10, "batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CurriculumSampler(**settings_)


def test_negative_step_is_rejected():
    sampler = CurriculumSampler(difficulties=[1.0], total_steps=10, batch_size=1)
    with pytest.raises(ValueError, match="step must be >= 0"):
        sampler.batch(-1)


def test_a_pacing_function_draws_exactly_as_the_named_pacing():
    scores = [float((7 * i) % 11) for i in range(20)]
    kwargs = {"difficulties": scores, "total_steps": 10, "batch_size": 3, "seed": 4}
    for name, function in PACINGS.items():
        named = CurriculumSampler(pacing=name, **kwargs)
        mine = CurriculumSampler(pacing=lambda t, T, c0, f=function: f(t, T, c0), **kwargs)
        assert [mine.batch(t) for t in range(12)] == [named.batch(t) for t in range(12)]
        assert [mine.pool_size(t) for t in range(12)] == [named.pool_size(t) for t in range(12)]


@given(st.floats(min_value=-5, max_value=5))
@settings(max_examples=30, deadline=None)
def test_a_pacing_function_pool_stays_within_one_and_n(c):
    sampler = CurriculumSampler(
        difficulties=[0.0, 1.0, 2.0, 3.0], pacing=lambda t, T, c0: c, total_steps=5, batch_size=2
    )
    assert 1 <= sampler.pool_size(0) <= 4
    assert set(sampler.batch(0)) <= set(sampler.order[: sampler.pool_size(0)])


def test_a_pacing_function_returning_nan_is_named():
    sampler = CurriculumSampler(
        difficulties=[0.0, 1.0], pacing=lambda t, T, c0: math.nan, total_steps=5, batch_size=1
    )
    with pytest.raises(ValueError, match="pacing function returned nan at step 3"):
        sampler.batch(3)


def test_a_pacing_that_is_neither_a_name_nor_a_function_is_refused():
    with pytest.raises(ValueError, match="or a function"):
        CurriculumSampler(difficulties=[0.0], pacing="cubic", total_steps=5, batch_size=1)
