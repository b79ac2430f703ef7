"""``run_eval``: the recipe behind ``coursekit eval``: generate tests, judge them, summarise.

For each verified function of a split (the ones whose reference tests compile and pass, so
that a failure is the generated tests' own): decode ``k`` answers
(:func:`coursekit.evaluate.generate.generate`), judge each one
(:func:`coursekit.evaluate.judge.judge`: the funnel's stages, then a mutation score), and
write one JSON line per answer to ``samples.jsonl``. ``summary.json`` holds the funnel's
rates with Wilson 95% intervals, the summary score, for ``k > 1`` pass@k, and the mean line
coverage of the function under test where LLVM's tools allow it to be measured
(:mod:`coursekit.evaluate.coverage`; null otherwise); ``funnel.png`` draws the funnel.
With ``reference=True`` the corpus's own tests are judged the same way: the upper bound
every model figure is read against.

The run is resumable: answers already in ``samples.jsonl`` are kept and only the missing
ones are generated and judged (a half-written last line is dropped). Every number is
measured here; nothing the generated code prints is trusted.

Guide: docs/evaluation.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from coursekit import codec
from coursekit.data.corpus import SPLITS, Sample, default_corpus_dir, load_splits
from coursekit.data.prompts import assistant_message, prompt_text
from coursekit.errors import CoursekitError
from coursekit.evaluate.coverage import CoverageTools, find_tools
from coursekit.evaluate.funnel import Verdict, funnel, summary_score
from coursekit.evaluate.generate import Decoding, generate
from coursekit.evaluate.judge import Judgement, judge
from coursekit.evaluate.metrics import mean_pass_at_k
from coursekit.evaluate.parallel import parallel_runs
from coursekit.evaluate.rust import COMPILE_MEMORY_BYTES
from coursekit.io import atomic_open, write_json
from coursekit.loading import DEFAULT_MODEL


@dataclass(frozen=True, kw_only=True)
class EvalSpec:
    """What to evaluate and how; written to ``eval.yaml`` and compared on resume."""

    model: str = DEFAULT_MODEL
    """The model: ``nano``, a bundled name, a hub id or a directory."""
    adapter: str = ""
    """A saved adapter directory (peft format) to load onto the model; empty for none."""
    data: str = ""
    """Split directory with ``train/val/test.jsonl[.gz]``; empty: ``data/corpus``."""
    split: str = "test"
    """The split whose verified functions are evaluated: ``val`` or ``test`` (or ``train``)."""
    limit: int = 0
    """At most this many functions (the first in the split's order); 0 for all."""
    decoding: Decoding = dataclasses.field(default_factory=Decoding)
    """How answers are decoded (k, budget, stops, repetition control)."""
    mutants: int = 12
    """Mutants sampled per function for the mutation score (0: none)."""
    runs: int = 3
    """Runs of each test binary for the stability stage."""
    seed: int = 0
    """Seed of the mutant samples."""

    def __post_init__(self) -> None:
        codec.check_types(self)
        rules = [
            ("split", self.split in SPLITS, f"must be one of {list(SPLITS)}"),
            ("limit", self.limit >= 0, "must be >= 0 (0: every function)"),
            ("mutants", self.mutants >= 0, "must be >= 0"),
            ("runs", self.runs >= 1, "must be >= 1"),
        ]
        codec.check_rules(self, rules)


def functions(spec: EvalSpec) -> list[Sample]:
    """Return the verified functions of ``spec.split``, the first ``spec.limit`` of them.

    Raises:
        CoursekitError: the split holds no verified function.
    """
    directory = Path(spec.data) if spec.data else default_corpus_dir()
    verified = [s for s in load_splits(directory)[spec.split] if s.verified]
    if not verified:
        raise CoursekitError(
            f"{directory}: the {spec.split} split holds no verified function (none whose "
            "reference tests compile and pass); build the corpus with verification"
        )
    return verified[: spec.limit] if spec.limit else verified


def run_eval(
    spec: EvalSpec,
    output: str | os.PathLike[str],
    *,
    reference: bool = False,
    on_sample: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``spec`` into ``output`` (``samples.jsonl``, ``summary.json``, ``funnel.png``).

    Args:
        spec: the model, split and settings.
        output: the evaluation folder; a run with the same spec there is resumed.
        reference: judge the corpus's reference tests instead of generating (upper bound).
        on_sample: called as ``on_sample(done, total)`` after each judged answer (progress).

    Returns:
        The summary (also written to ``summary.json``).
    """
    out = Path(output)
    _prepare(out, spec, reference)
    samples = functions(spec)
    rows = _read_rows(out / "samples.jsonl")
    todo = [s for s in samples if s.id not in rows]
    answers = _answers(spec, todo, reference)
    total, done = len(samples) * (1 if reference else spec.decoding.k), sum(map(len, rows.values()))
    workers = parallel_runs(os.cpu_count() or 1, COMPILE_MEMORY_BYTES)
    pairs = [(sample, answer) for sample in todo for answer in answers[sample.id]]
    tools = find_tools() if pairs else None
    with (
        (out / "samples.jsonl").open("a", encoding="utf-8") as log,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        # judged in parallel, written in order: a sample's rows land together, so a resumed
        # run finds each sample whole or not at all
        pending: list[dict[str, Any]] = []
        for (sample, answer), judged in zip(
            pairs, pool.map(lambda pair: _judge(spec, tools, *pair), pairs), strict=True
        ):
            pending.append(_row(sample, answer, judged))
            done += 1
            if len(pending) == len(answers[sample.id]):
                log.write("".join(json.dumps(row) + "\n" for row in pending))
                log.flush()
                rows[sample.id], pending = pending, []
            if on_sample is not None:
                on_sample(done, total)
    summary = summarise(spec, [rows[s.id] for s in samples], reference)
    write_json(out / "summary.json", summary)
    _plot(out / "funnel.png", summary)
    return summary


def _prepare(out: Path, spec: EvalSpec, reference: bool) -> None:
    saved = out / "eval.yaml"
    settings = {"spec": codec.to_dict(spec), "reference": reference}
    if saved.exists():
        before = yaml.safe_load(saved.read_text(encoding="utf-8"))
        if before != settings:
            raise CoursekitError(
                f"{saved} holds an evaluation with other settings; choose a new --output"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(saved) as handle:
        handle.write(yaml.safe_dump(settings, sort_keys=False))


def _read_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Return {sample id: its rows} from ``samples.jsonl``, dropping a half-written last line."""
    rows: dict[str, list[dict[str, Any]]] = {}
    if not path.exists():
        return rows
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    complete = [line for line in lines if line.endswith("\n")]
    if len(complete) != len(lines):
        path.write_text("".join(complete), encoding="utf-8")
    for line in complete:
        row = json.loads(line)
        rows.setdefault(row["id"], []).append(row)
    return rows


def _answers(spec: EvalSpec, todo: Sequence[Sample], reference: bool) -> dict[str, list[str]]:
    if reference or not todo:
        return {s.id: [assistant_message(s)] for s in todo}
    from coursekit.adapters import load_adapter
    from coursekit.loading import load_model, load_tokenizer

    model, tokenizer = load_model(spec.model), load_tokenizer(spec.model)
    if spec.adapter:
        load_adapter(model, spec.adapter)
    prompts = [prompt_text(s, tokenizer) for s in todo]
    generated = generate(model, tokenizer, prompts, spec.decoding)
    over = sum(gens[0].over_context for gens in generated)
    if over:
        print(
            f"coursekit eval: {over} prompt(s) longer than the model's context less "
            f"max_new_tokens were not decoded; their empty answers count as failures",
            file=sys.stderr,
        )
    return {s.id: [g.text for g in gens] for s, gens in zip(todo, generated, strict=True)}


def _judge(spec: EvalSpec, tools: CoverageTools | None, sample: Sample, answer: str) -> Judgement:
    return judge(
        sample, answer, runs=spec.runs, max_mutants=spec.mutants, seed=spec.seed,
        coverage_tools=tools,
    )  # fmt: skip


def _row(sample: Sample, answer: str, judged: Judgement) -> dict[str, Any]:
    verdict = dataclasses.asdict(judged.verdict)
    return {
        "id": sample.id,
        "answer": answer,
        **{k: v for k, v in verdict.items() if k != "sample_id"},
        "stages": judged.verdict.stages(),
        "output": judged.output[-2000:],
        "mutants": judged.mutants,
        "schema_used": judged.schema_used,
        "coverage": judged.coverage,
    }


def summarise(
    spec: EvalSpec, rows_per_sample: Sequence[Sequence[dict[str, Any]]], reference: bool
) -> dict[str, Any]:
    """Return the summary of judged rows: funnel rates, score, pass@k, mutants, coverage.

    ``coverage`` is the mean line coverage over the answers where it was measured (rows
    written before coverage existed count as not measured).
    """
    fields = {f.name for f in dataclasses.fields(Verdict)} - {"sample_id"}
    verdicts = [
        Verdict(sample_id=row["id"], **{k: row[k] for k in fields})
        for rows in rows_per_sample
        for row in rows
    ]
    rates = funnel(verdicts)
    totals = {key: sum(r["mutants"][key] for rows in rows_per_sample for r in rows)
              for key in ("caught", "missed", "unviable", "timeout")}  # fmt: skip
    k = 1 if reference else spec.decoding.k
    counts = [(len(rows), sum(r["stages"]["passes"] for r in rows)) for rows in rows_per_sample]
    return {
        "model": "reference tests" if reference else spec.model,
        "adapter": spec.adapter or None,
        "split": spec.split,
        "functions": len(rows_per_sample),
        "answers": len(verdicts),
        "funnel": {stage: _rate(rate) for stage, rate in rates.items()},
        "summary_score": summary_score(verdicts),
        "pass_at_k": {str(k): mean_pass_at_k(counts, k)} if counts else {},
        "mutants": totals,
        "mutation_score": totals["caught"] / max(1, totals["caught"] + totals["missed"]),
        "coverage": _coverage(rows_per_sample),
    }


def _coverage(rows_per_sample: Sequence[Sequence[dict[str, Any]]]) -> dict[str, Any]:
    measured = [
        r["coverage"] for rows in rows_per_sample for r in rows if r.get("coverage") is not None
    ]
    mean = sum(measured) / len(measured) if measured else None
    return {"mean": mean, "measured": len(measured)}


def _rate(rate: Any) -> dict[str, Any]:
    low, high = rate.interval
    return {"passed": rate.successes, "total": rate.total, "rate": rate.value,
            "low": low, "high": high}  # fmt: skip


def _plot(path: Path, summary: dict[str, Any]) -> None:
    from coursekit.display.plots import funnel_figure

    with atomic_open(path, "wb") as handle:
        funnel_figure(summary).savefig(handle, format="png", dpi=110)


def compare(
    model: str,
    adapter: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    data: str = "",
    split: str = "test",
    limit: int = 8,
    mutants: int = 4,
    decoding: Decoding | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate the references, the base model and the adapted model side by side.

    The corpus's reference tests are the upper bound and the base model without the adapter
    the lower bound; the adapted model is read between them. Each goes into its own folder
    under ``output`` (``reference``, ``base``, ``adapter``), made afresh on every call: a
    rerun after a new fine-tune must not resume answers of the old adapter.

    Returns:
        {"reference tests", "base model", "fine-tuned"}: each one's summary.
    """
    out = Path(output)
    base = EvalSpec(
        model=model, data=data, split=split, limit=limit, mutants=mutants,
        decoding=decoding or Decoding(max_new_tokens=96),
    )  # fmt: skip
    runs = {
        "reference tests": (base, "reference", True),
        "base model": (base, "base", False),
        "fine-tuned": (dataclasses.replace(base, adapter=str(adapter)), "adapter", False),
    }
    summaries = {}
    for label, (spec, folder, reference) in runs.items():
        if (out / folder / "eval.yaml").is_file():
            shutil.rmtree(out / folder)
        summaries[label] = run_eval(spec, out / folder, reference=reference)
    return summaries
