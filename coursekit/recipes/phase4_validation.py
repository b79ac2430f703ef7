"""Phase 4, validation: the recipe behind ``notebooks/phase4_validation.ipynb``.

Every number the Phase 4 notebook shows is measured by these functions on the machine the
notebook runs on:

- :func:`rank_claim`: the course's first falsification test, "a higher rank does not
  decrease quality", on a grid of fine-tunes over ranks × seeds (the ablation recipe), or on
  the learner's own Tier A grid folder when there is one;
- :func:`memory_claim`: the second, "the memory estimate bounds actual use within 20%",
  estimate against measured peaks on a grid of small models;
- :func:`before_after`: the Phase 1 baseline and the same run with the learner's
  enhancement (config fields changed), trained back to back in one invocation so that both
  see the same machine and load: validation loss, speed, memory, trainable parameters and,
  optionally, the evaluation funnel of the tests each writes;
- :func:`key_metrics_figure` and :func:`results_markdown`: the figure and the numbers
  ``ENHANCEMENT.md`` quotes.

Guide: docs/course.md ("Phase 4"); the claims' rules: docs/experiments.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit.experiments import grid
from coursekit.experiments.memory_bound import memory_estimate_bounds_use
from coursekit.experiments.rank import rank_does_not_decrease_quality
from coursekit.experiments.verdict import Verdict
from coursekit.recipes.ablate import AblationConfig, AblationResult, load_ablation, run_ablation
from coursekit.recipes.phase1_baseline import baseline_spec, run_baseline
from coursekit.train.spec import RunSpec

COMPARED: tuple[tuple[str, str, bool], ...] = (
    ("val_loss_end", "validation loss (nats/token)", False),
    ("tokens_per_second", "target tokens / s", True),
    ("peak_memory_bytes", "peak memory (bytes)", False),
    ("trainable_parameters", "trainable parameters", False),
    ("train_seconds", "training seconds", False),
)
"""(metric of ``run_baseline``, label, higher is better) compared before and after."""


def rank_claim(
    output: str | os.PathLike[str],
    *,
    model: str = "nano",
    data: str = "",
    max_train_examples: int = 256,
    max_val_examples: int = 64,
    ranks: Sequence[int] = (4, 8, 16),
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 8,
    tolerance: float = 0.10,
    isolate: bool = False,
    log: Callable[[str], None] = print,
) -> tuple[Verdict, AblationResult]:
    """Judge "a higher rank does not decrease quality" on fine-tunes over ranks × seeds.

    Each rank r′ is compared with the previous rank r on the seeds' mean validation losses
    m′, m: falsified when m′ − (1+τ)·m exceeds the seeds' spread (a one-sided Welch test of
    the claim's boundary, :func:`coursekit.experiments.rank.rank_does_not_decrease_quality`).

    The runs train and validate on the Phase 1 baseline's seeded subsets of ``data`` (at
    most ``max_train_examples`` / ``max_val_examples``, written to ``output/data``), so the
    claim is judged on the data Phase 1 used, in minutes rather than the full split's hour.

    When ``output`` already holds a grid (``ablation.yaml``, e.g. the learner's
    ``coursekit ablate --output runs/tier-a``), that grid is continued and judged, and the
    other arguments are ignored; otherwise a grid of Tier A's base run (the Phase 1 baseline)
    with ``steps`` steps is trained there. Finished runs are kept, so a re-run is cheap.

    Returns:
        The verdict and the grid's result (its table, report and figures).

    Example:
        >>> verdict, grid_result = rank_claim("runs/rank-claim")  # doctest: +SKIP
        >>> verdict.status  # doctest: +SKIP
        'NOT FALSIFIED'
    """
    out = Path(output)
    if (out / "ablation.yaml").is_file():
        config = load_ablation(out / "ablation.yaml")
    else:
        subsets = write_subsets(data, out / "data", max_train_examples, max_val_examples, seed=0)
        base = grid.with_settings(
            AblationConfig().base,
            {"model": model, "data": str(subsets), "train.max_steps": steps,
             "train.eval_every": steps},
        )  # fmt: skip
        config = AblationConfig(base=base, axes={"adapter.rank": tuple(ranks)}, seeds=tuple(seeds))
    result = run_ablation(config, out, isolate=isolate, log=log)
    return rank_does_not_decrease_quality(losses_by_rank(result), tolerance), result


def write_subsets(
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    max_train: int,
    max_val: int,
    *,
    seed: int,
) -> Path:
    """Write the Phase 1 baseline's seeded train/val subsets of ``data`` (and its test split).

    The subsets are :func:`coursekit.recipes.phase1_baseline.subset`'s, the ones
    ``run_baseline`` trains and validates on with the same limits and seed.

    Example:
        >>> import tempfile
        >>> from coursekit.data.corpus import load_splits, seed_dir
        >>> where = write_subsets(seed_dir(), tempfile.mkdtemp(), 8, 2, seed=0)
        >>> {name: len(rows) for name, rows in load_splits(where).items()}
        {'train': 8, 'val': 2, 'test': 6}
    """
    from coursekit.data.corpus import default_corpus_dir, load_splits, write_corpus
    from coursekit.recipes.phase1_baseline import subset

    splits = load_splits(Path(data) if data else default_corpus_dir())
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    limits = {"train": max_train, "val": max_val, "test": len(splits["test"])}
    for name, limit in limits.items():
        write_corpus(target / f"{name}.jsonl", subset(splits[name], limit, seed))
    return target


def losses_by_rank(result: AblationResult) -> dict[int, list[float]]:
    """Return rank → the validation losses of its seeds, from a grid's cells.

    Raises:
        ValueError: the grid does not vary ``adapter.rank``.

    Example:
        >>> cells = ({"setting": {"adapter.rank": 4}, "metrics": {"val_loss": 2.5}},
        ...          {"setting": {"adapter.rank": 4}, "metrics": {"val_loss": 2.4}})
        >>> losses_by_rank(AblationResult(cells=cells, groups=(), files={}))
        {4: [2.5, 2.4]}
    """
    losses: dict[int, list[float]] = {}
    for cell in result.cells:
        if "adapter.rank" not in cell["setting"]:
            raise ValueError(
                f"the grid's cells set {sorted(cell['setting'])}, not adapter.rank; "
                "a rank claim needs a grid over adapter.rank"
            )
        losses.setdefault(int(cell["setting"]["adapter.rank"]), []).append(
            float(cell["metrics"]["val_loss"])
        )
    return losses


def memory_claim(points: Sequence[Any] | None = None, *, tolerance: float = 0.20) -> Verdict:
    """Judge "the memory estimate bounds actual use within 20%" on measured training steps.

    For each configuration, E = ``coursekit.memory.estimate``'s peak and M the peak that
    ``coursekit.memory.measure`` counts over real forward/backward/optimizer steps: the
    claim holds when M ≤ E ≤ (1+τ)·M for every configuration (``reading="bound"``).

    Args:
        points: grid points of :mod:`coursekit.recipes.memory_validate` (default: its
            ``FAST_GRID``: LoRA, DoRA with gradient checkpointing, a full fine-tune).
        tolerance: τ.

    Example:
        >>> memory_claim().status  # doctest: +SKIP
        'FALSIFIED'
    """
    from coursekit.recipes.memory_validate import FAST_GRID, validate

    rows = validate(FAST_GRID if points is None else points)
    return memory_estimate_bounds_use(
        {row.name: row.estimated_bytes for row in rows},
        {row.name: row.measured_bytes for row in rows},
        tolerance,
    )


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """The baseline and the enhanced run, measured back to back."""

    changes: Mapping[str, Any]
    """Field path of ``RunSpec`` → the enhanced run's value (``{"method": "dora"}``)."""
    before: Mapping[str, float]
    """The baseline's metrics (``run_baseline``'s, plus ``eval_*`` funnel rates)."""
    after: Mapping[str, float]
    """The enhanced run's metrics, the same keys."""
    run_dirs: tuple[Path, Path] = field(default=(Path(), Path()))
    """The two run folders (before, after)."""

    def rows(self) -> list[dict[str, Any]]:
        """Return one row per compared metric: before, after, after/before and the winner."""
        rows = []
        names = [(key, label, up) for key, label, up in COMPARED if key in self.before]
        names += [
            (k, k.replace("eval_", "tests: "), True) for k in self.before if k.startswith("eval_")
        ]
        for key, label, higher_is_better in names:
            old, new = float(self.before[key]), float(self.after[key])
            ratio = new / old if old else None
            better = new > old if higher_is_better else new < old
            verdict = "after" if better else ("equal" if new == old else "before")
            rows.append({"metric": label, "before": old, "after": new, "after/before": ratio,
                         "better": verdict})  # fmt: skip
        return rows

    def to_markdown(self) -> str:
        """Return the rows as a Markdown table (4 significant digits)."""
        changed = ", ".join(f"{k} = {v}" for k, v in self.changes.items())
        lines = [f"Before: the Phase 1 baseline. After: the same run with {changed}.", "",
                 "| metric | before | after | after/before | better |",
                 "|---|---|---|---|---|"]  # fmt: skip
        for row in self.rows():
            ratio = "–" if row["after/before"] is None else f"{row['after/before']:.3g}"
            lines.append(f"| {row['metric']} | {row['before']:.4g} | {row['after']:.4g} | "
                         f"{ratio} | {row['better']} |")  # fmt: skip
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def before_after(
    changes: Mapping[str, Any],
    output_dir: str | os.PathLike[str],
    *,
    spec: RunSpec | None = None,
    eval_limit: int = 0,
    **options: Any,
) -> Comparison:
    """Train the baseline and the enhanced run back to back; return their metrics.

    Both runs use the same data subset, seed, steps and machine, so the difference is the
    enhancement's (and noise: speed varies by a few percent between runs on a shared
    machine; losses are deterministic on CPU).

    Args:
        changes: field path → value for the enhanced run, e.g. ``{"method": "dora"}``,
            ``{"adapter.targets": "all"}``, ``{"train.curriculum": "linear"}``.
        output_dir: gets ``before/`` and ``after/`` (each ``run_baseline``'s output).
        spec: the baseline (default: :func:`coursekit.recipes.phase1_baseline.baseline_spec`).
        eval_limit: also run the evaluation funnel (``coursekit eval``) on this many
            verified validation functions per run (0: none; it takes ~10 s per function).
        **options: ``run_baseline``'s options (``max_train_examples``, ``generate`` ...).

    Raises:
        ValueError: a field path or value the run refuses (named).
    """
    base = spec or baseline_spec()
    enhanced = grid.with_settings(base, changes)
    out = Path(output_dir)
    options = {"generate": 0, **options}
    metrics, dirs = [], []
    for name, run_spec in (("before", base), ("after", enhanced)):
        result = run_baseline(run_spec, out / name, **options)
        values = dict(result.metrics)
        if eval_limit:
            values |= _funnel(run_spec, result.run_dir, eval_limit)
        metrics.append(values)
        dirs.append(result.run_dir)
    return Comparison(changes=dict(changes), before=metrics[0], after=metrics[1],
                      run_dirs=(dirs[0], dirs[1]))  # fmt: skip


def _funnel(spec: RunSpec, run_dir: Path, limit: int) -> dict[str, float]:
    """Run the evaluation funnel on a run's adapter; return ``eval_<stage>`` rates."""
    from coursekit.recipes.evaluate import EvalSpec, run_eval

    evaluation = EvalSpec(model=spec.model, adapter=str(run_dir / "adapter"), data=spec.data,
                          split="val", limit=limit, mutants=0)  # fmt: skip
    summary = run_eval(evaluation, run_dir.parent / f"eval-val-{limit}")
    return {f"eval_{stage}": rate["rate"] for stage, rate in summary["funnel"].items()}


def key_metrics_figure(comparison: Comparison, rank_verdict: Verdict | None = None) -> Any:
    """Return a figure: after/before per metric (a bar per metric; 1 = unchanged).

    With ``rank_verdict``, a second panel draws the seed-mean validation loss per rank.
    """
    import matplotlib.pyplot as plt

    rows = [r for r in comparison.rows() if r["after/before"] is not None]
    panels = 2 if rank_verdict is not None else 1
    figure, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.6), squeeze=False)
    ax = axes[0][0]
    colours = ["tab:green" if r["better"] == "after" else "tab:grey" for r in rows]
    ax.barh([r["metric"] for r in rows], [r["after/before"] for r in rows], color=colours)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("after / before (green: the enhancement is better)")
    ax.set_title("Enhancement against the Phase 1 baseline")
    if rank_verdict is not None:
        ax = axes[0][1]
        steps = rank_verdict.evidence
        ranks = [steps[0]["rank_from"]] + [s["rank_to"] for s in steps]
        means = [steps[0]["mean_from"]] + [s["mean_to"] for s in steps]
        ax.plot(ranks, means, marker="o")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("LoRA rank r")
        ax.set_ylabel("mean validation loss")
        ax.set_title(f"Rank claim: {rank_verdict.status}")
    figure.tight_layout()
    return figure


def results_markdown(comparison: Comparison, verdicts: Sequence[Verdict]) -> str:
    """Return the "Results" section ``ENHANCEMENT.md`` quotes: the table and each verdict.

    Example:
        >>> from coursekit.experiments.falsify import falsify
        >>> c = Comparison(changes={"method": "dora"}, before={"val_loss_end": 2.0},
        ...                after={"val_loss_end": 1.9})
        >>> print(results_markdown(c, [falsify("loss < 3", 1.9, 3.0)]).splitlines()[4])
        | validation loss (nats/token) | 2 | 1.9 | 0.95 | after |
    """
    parts = [comparison.to_markdown()]
    for verdict in verdicts:
        parts.append(f"- **{verdict.status}**: {verdict.claim}")
    return "\n".join([parts[0], "", *parts[1:]])


def enhancement_check(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check ``ENHANCEMENT.md`` as ``coursekit workspace check`` does: words and sections.

    Returns:
        ``{"path", "exists", "words", "in_bounds", "problems"}``: prose words (code blocks
        and comments left out, :func:`coursekit.workspace.report.count_words`), whether
        they are within the course's 500–1000, and what the required sections lack.

    Example:
        >>> enhancement_check("no/such/ENHANCEMENT.md")["problems"][0][:32]
        'no/such/ENHANCEMENT.md does not '

    """
    from coursekit.workspace.report import MAX_WORDS, MIN_WORDS, count_words, section_problems

    file = Path(path)
    if not file.is_file():
        return {"path": str(file), "exists": False, "words": 0, "in_bounds": False,
                "problems": [f"{file} does not exist; write it from the template of "
                             "`coursekit workspace new`"]}  # fmt: skip
    text = file.read_text(encoding="utf-8")
    words = count_words(text)
    problems = section_problems(text)
    if not MIN_WORDS <= words <= MAX_WORDS:
        problems.insert(0, f"{words} words; the course asks for {MIN_WORDS}-{MAX_WORDS}")
    return {"path": str(file), "exists": True, "words": words,
            "in_bounds": MIN_WORDS <= words <= MAX_WORDS, "problems": problems}  # fmt: skip
