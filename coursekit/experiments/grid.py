r"""Ablation grids: cells from axes × seeds, settings by field path, statistics over seeds.

A grid varies fields of a frozen config, each named by its dotted path (``adapter.rank``,
``train.learning_rate``), over a list of values: an **axis**. Its **cells** are every
combination of the axes' values, each run once per seed, so

    |cells| = |seeds| · Π_a |values_a|.

The cells of one combination (a **setting**) differ only in their seed; a metric is summarised
over them by the mean x̄, the sample standard deviation s (n − 1 in the denominator) and the
two-sided interval

    x̄ ± t_{(1+c)/2, n−1} · s / √n

with Student's t quantile at confidence c (0.95: a 95% interval for the mean over seeds,
:func:`coursekit.experiments.stats.t_quantile`). One seed gives no spread and no interval.

This module is a component: it knows configs only through :mod:`coursekit.codec`. The
recipe that runs a grid is :mod:`coursekit.recipes.ablate`.

Example:
    >>> cells = expand({"adapter.rank": (4, 8)}, seeds=(0, 1))
    >>> [cell.name for cell in cells]
    ['rank=4,seed=0', 'rank=8,seed=0', 'rank=4,seed=1', 'rank=8,seed=1']
    >>> summary = aggregate([1.0, 2.0, 3.0])
    >>> summary.mean, summary.std, round(summary.low, 4), round(summary.high, 4)
    (2.0, 1.0, -0.4841, 4.4841)

Guide: docs/experiments.md ("Rank ablation (Tier A)").
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from coursekit import codec
from coursekit.experiments.stats import mean_and_std, t_quantile

C = TypeVar("C")

Setting = tuple[tuple[str, Any], ...]
"""A setting: ``((field path, value), ...)`` in axis order."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")


def field_paths(cls: type) -> tuple[str, ...]:
    """Return the dotted path of every leaf field of the config class ``cls``.

    Nested configs are walked (``adapter.rank``); a nested config is not itself a leaf.

    Example:
        >>> from coursekit.train.spec import RunSpec
        >>> paths = field_paths(RunSpec)
        >>> "adapter.rank" in paths and "train.seed" in paths and "adapter" not in paths
        True
    """
    hints = typing.get_type_hints(cls)
    paths: list[str] = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            paths += [f"{field.name}.{path}" for path in field_paths(hint)]
        else:
            paths.append(field.name)
    return tuple(paths)


def get_field(config: Any, path: str) -> Any:
    """Return the value at the dotted ``path`` of ``config`` (``adapter.rank``).

    Example:
        >>> from coursekit.train.spec import RunSpec
        >>> get_field(RunSpec(), "adapter.rank")
        8
    """
    value = config
    for name in path.split("."):
        value = getattr(value, name)
    return value


def with_settings(base: C, settings: Mapping[str, Any]) -> C:
    """Return ``base`` with each dotted field path of ``settings`` set to its value.

    The values go through :func:`coursekit.codec.from_dict`, so they are coerced as a YAML file's
    are (``"2e-4"`` → 0.0002, a list → a tuple) and the config validates the result.

    Raises:
        ValueError: a path that is not a leaf field of ``base`` (named, with the known ones),
            or a value the config refuses (its own one-line message).

    Example:
        >>> from coursekit.train.spec import RunSpec
        >>> spec = with_settings(RunSpec(), {"adapter.rank": 16, "train.learning_rate": "1e-3"})
        >>> spec.adapter.rank, spec.train.learning_rate
        (16, 0.001)
    """
    known = field_paths(type(base))
    data = codec.to_dict(base)
    for path, value in settings.items():
        if path not in known:
            raise ValueError(
                f"{path!r} is not a field path of {type(base).__name__}; known: {list(known)}"
            )
        *parents, leaf = path.split(".")
        section = data
        for name in parents:
            section = section[name]
        section[leaf] = freeze(value)
    return codec.from_dict(type(base), data)


def freeze(value: Any) -> Any:
    """Return ``value`` with every list turned into a tuple, recursively (hashable settings).

    Example:
        >>> freeze(["q_proj", ["v_proj"]])
        ('q_proj', ('v_proj',))
    """
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def slug(value: Any) -> str:
    """Return ``value`` as a piece of a folder name: only ``A-Za-z0-9._+-``.

    Floats are written by ``repr`` (distinct floats stay distinct), ``None`` as ``none``,
    booleans as ``true``/``false``, sequences joined by ``+``; other characters become ``-``.

    Example:
        >>> slug(2e-4), slug(("q_proj", "v_proj")), slug("a/b"), slug(None), slug(True)
        ('0.0002', 'q_proj+v_proj', 'a-b', 'none', 'true')
    """
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "+".join(slug(item) for item in value)
    return _UNSAFE.sub("-", str(value))


def setting_label(setting: Setting) -> str:
    """Return ``"rank=8,lr=..."``: each path's last name (the full path where two collide).

    Example:
        >>> setting_label((("adapter.rank", 8), ("train.learning_rate", 0.001)))
        'rank=8,learning_rate=0.001'
        >>> setting_label(())
        'base'
    """
    if not setting:
        return "base"
    leaves = [path.rpartition(".")[2] for path, _ in setting]
    names = [
        leaf if leaves.count(leaf) == 1 else path
        for leaf, (path, _) in zip(leaves, setting, strict=True)
    ]
    return ",".join(
        f"{name}={slug(value)}" for name, (_, value) in zip(names, setting, strict=True)
    )


@dataclass(frozen=True)
class Cell:
    """One run of a grid: a setting and a seed."""

    setting: Setting
    """``((field path, value), ...)``, in axis order."""
    seed: int
    """The run's seed."""

    @property
    def name(self) -> str:
        """The run folder's name, e.g. ``rank=8,seed=1``."""
        return f"{setting_label(self.setting)},seed={self.seed}"


def expand(axes: Mapping[str, Sequence[Any]], seeds: Sequence[int]) -> tuple[Cell, ...]:
    """Return every cell of ``axes`` × ``seeds``: seed by seed, axes varying last-fastest.

    The seed is the outer loop, so a grid stopped half-way has whole sweeps of the axes for
    its first seeds. No axes give one cell per seed (the base setting).

    Raises:
        ValueError: an axis without values, a value listed twice, no seed, a seed listed
            twice, or two cells whose folder names coincide (values equal after
            :func:`slug`, such as ``8`` and ``"8"``).

    Example:
        >>> [c.name for c in expand({"adapter.rank": (4, 8), "adapter.alpha": (16.0,)}, [0])]
        ['rank=4,alpha=16.0,seed=0', 'rank=8,alpha=16.0,seed=0']
    """
    values = {path: tuple(freeze(v) for v in items) for path, items in axes.items()}
    for path, items in values.items():
        if not items:
            raise ValueError(f"the axis {path} has no values; list at least one")
        _refuse_repeats(items, f"the axis {path}")
    if not seeds:
        raise ValueError("a grid needs at least one seed")
    _refuse_repeats(tuple(seeds), "the seeds")
    settings = [
        tuple(zip(values, combination, strict=True))
        for combination in itertools.product(*values.values())
    ]
    cells = tuple(Cell(setting, seed) for seed in seeds for setting in settings)
    names: dict[str, Cell] = {}
    for cell in cells:
        if cell.name in names:
            raise ValueError(
                f"the settings {dict(names[cell.name].setting)} and {dict(cell.setting)} give "
                f"the same folder name {cell.name!r}; list each value once, in one spelling"
            )
        names[cell.name] = cell
    return cells


def _refuse_repeats(items: tuple[Any, ...], what: str) -> None:
    repeated = sorted({repr(item) for item in items if items.count(item) > 1})
    if repeated:
        raise ValueError(f"{what} list {', '.join(repeated)} more than once; list each once")


@dataclass(frozen=True, kw_only=True)
class Aggregate:
    """A metric over the seeds of one setting: x̄, s and x̄ ± t_{(1+c)/2,n−1}·s/√n."""

    n: int
    """Seeds with a value."""
    mean: float
    """x̄, the mean over seeds."""
    std: float | None
    """s, the sample standard deviation (n − 1); None for one seed."""
    low: float | None
    """The interval's lower end; None for one seed."""
    high: float | None
    """The interval's upper end; None for one seed."""
    confidence: float
    """c, the interval's two-sided confidence."""

    @property
    def half_width(self) -> float | None:
        """t_{(1+c)/2,n−1}·s/√n, or None for one seed."""
        return None if self.high is None else self.high - self.mean


def aggregate(values: Sequence[float], *, confidence: float = 0.95) -> Aggregate:
    """Return the mean, sample std and two-sided Student t interval of ``values``.

    The interval is x̄ ± t_{(1+c)/2, n−1}·s/√n (module docstring); its ends are None for one
    value. The mean and std are exact up to one rounding, so the order of the values never
    changes the result.

    Raises:
        ValueError: no values, a value that is not a finite number, or ``confidence`` outside
            (0, 1).

    Example:
        >>> aggregate([2.0]).std is None, aggregate([2.0, 2.0]).high
        (True, 2.0)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1) (got {confidence!r})")
    numbers = [float(v) for v in values]
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"aggregate needs finite numbers (got {list(values)!r})")
    mean, std = mean_and_std(numbers)
    if std is None:
        return Aggregate(n=1, mean=mean, std=None, low=None, high=None, confidence=confidence)
    n = len(numbers)
    half = t_quantile((1 + confidence) / 2, n - 1) * std / math.sqrt(n)
    return Aggregate(n=n, mean=mean, std=std, low=mean - half, high=mean + half,
                     confidence=confidence)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Group:
    """The cells of one setting and their metrics summarised over seeds."""

    setting: Setting
    """``((field path, value), ...)``, in axis order."""
    seeds: tuple[int, ...]
    """The seeds of the setting's cells, in grid order."""
    metrics: Mapping[str, Aggregate | None]
    """Metric name → its summary over the seeds that have it (None: no cell has it)."""

    @property
    def label(self) -> str:
        """``rank=8``: the setting as in its cells' folder names."""
        return setting_label(self.setting)


def group_by_setting(
    results: Iterable[tuple[Cell, Mapping[str, float | None]]], *, confidence: float = 0.95
) -> tuple[Group, ...]:
    """Summarise each metric over the seeds of each setting, settings in first-seen order.

    A metric a cell lacks (None, or missing) is left out of that setting's summary, whose
    ``n`` then counts the seeds that have it.

    Example:
        >>> cells = expand({"adapter.rank": (4,)}, seeds=(0, 1))
        >>> [group] = group_by_setting(zip(cells, [{"val_loss": 2.0}, {"val_loss": 3.0}]))
        >>> group.label, group.seeds, group.metrics["val_loss"].mean
        ('rank=4', (0, 1), 2.5)
    """
    seeds: dict[Setting, list[int]] = {}
    values: dict[Setting, dict[str, list[float]]] = {}
    for cell, metrics in results:
        seeds.setdefault(cell.setting, []).append(cell.seed)
        found = values.setdefault(cell.setting, {})
        for name, value in metrics.items():
            found.setdefault(name, [])
            if value is not None:
                found[name].append(value)
    return tuple(
        Group(
            setting=setting,
            seeds=tuple(seeds[setting]),
            metrics=MappingProxyType(
                {
                    name: aggregate(items, confidence=confidence) if items else None
                    for name, items in values[setting].items()
                }
            ),
        )
        for setting in seeds
    )


def table_rows(groups: Sequence[Group], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Return one flat row per group, the layout of the ablation's ``table.csv``.

    A row holds the group's field paths, ``seeds``, then per metric ``<metric>_mean``,
    ``_std``, ``_low``, ``_high`` and ``_n`` (None where there is none).

    Example:
        >>> cells = expand({"adapter.rank": (4,)}, seeds=(0, 1))
        >>> groups = group_by_setting(zip(cells, [{"loss": 2.0}, {"loss": 4.0}]))
        >>> row = table_rows(groups, ["loss"])[0]
        >>> row["adapter.rank"], row["seeds"], row["loss_mean"], row["loss_n"]
        (4, 2, 3.0, 2)
    """
    rows = []
    for group in groups:
        row: dict[str, Any] = {path: slug(value) if isinstance(value, tuple) else value
                               for path, value in group.setting}  # fmt: skip
        row["seeds"] = len(group.seeds)
        for name in metrics:
            summary = group.metrics.get(name)
            for key in ("mean", "std", "low", "high", "n"):
                row[f"{name}_{key}"] = None if summary is None else getattr(summary, key)
        rows.append(row)
    return rows


def along_axis(
    groups: Sequence[Group], axis: str, metric: str
) -> dict[str, list[tuple[Any, float, float | None, float | None]]]:
    """Return ``metric`` against ``axis``: one series per setting of the other axes.

    Each series is a list of ``(x, mean, low, high)`` in grid order, the input of
    :func:`coursekit.display.plots.interval_figure`; a series' label is the other axes'
    setting (``""`` when ``axis`` is the only one). Groups without the metric are left out.

    Example:
        >>> cells = expand({"adapter.rank": (4, 8), "adapter.alpha": (8.0, 16.0)}, seeds=(0,))
        >>> groups = group_by_setting((c, {"loss": float(i)}) for i, c in enumerate(cells))
        >>> along_axis(groups, "adapter.rank", "loss")
        {'alpha=8.0': [(4, 0.0, None, None), (8, 2.0, None, None)],
         'alpha=16.0': [(4, 1.0, None, None), (8, 3.0, None, None)]}
    """
    series: dict[str, list[tuple[Any, float, float | None, float | None]]] = {}
    for group in groups:
        summary = group.metrics.get(metric)
        if summary is None:
            continue
        rest = tuple((path, value) for path, value in group.setting if path != axis)
        label = setting_label(rest) if rest else ""
        x = dict(group.setting)[axis]
        series.setdefault(label, []).append((x, summary.mean, summary.low, summary.high))
    return series
