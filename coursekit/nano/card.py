"""The nano model's card (README.md) and loss curve (loss.png), from a build's report.

Every number in the card is read from the report ``build_nano`` measured and from the
pretraining run's ``metrics.jsonl``; nothing is typed in by hand.

Guide: docs/nano.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from coursekit.display.plots import figure_png, plot_losses
from coursekit.io import atomic_open
from coursekit.train.callbacks import read_metrics


def loss_table(
    rows: Sequence[Mapping[str, Any]], points: int = 9
) -> list[tuple[int, float | None, float | None]]:
    """Return (step, train loss, validation loss) at each evaluation step after 0.

    Without evaluations, at about ``points`` evenly spaced steps. Train loss is the mean of
    the logged steps since the previous row.

    Example:
        >>> loss_table([{"step": 1, "loss": 4.0}, {"step": 2, "loss": 2.0, "val_loss": 3.0}])
        [(2, 3.0, 3.0)]
    """
    last = max((int(r["step"]) for r in rows), default=0)
    marks = sorted({int(r["step"]) for r in rows if "val_loss" in r} - {0}) or sorted(
        {round(last * (i + 1) / points) for i in range(points)} - {0}
    )
    table, previous = [], 0
    for mark in marks:
        losses = [r["loss"] for r in rows if "loss" in r and previous < r["step"] <= mark]
        vals = [r["val_loss"] for r in rows if "val_loss" in r and r["step"] == mark]
        mean = sum(losses) / len(losses) if losses else None
        table.append((mark, mean, vals[-1] if vals else None))
        previous = mark
    return table


def write_card(directory: Path, metrics: Path, report: Mapping[str, Any]) -> Path:
    """Write ``README.md`` and ``loss.png`` into the model ``directory``; return the card's path."""
    rows = read_metrics(metrics)
    renamed = {"loss": "train_loss", "val_loss": "val_loss"}
    history = [{"step": r["step"], **{renamed[k]: r[k] for k in renamed if k in r}} for r in rows]
    png = figure_png(plot_losses(history, title="Qwen2.5-Coder-nano pretraining"))
    with atomic_open(directory / "loss.png", "wb") as handle:
        handle.write(png)
    parts = (_front(report), _architecture(report), _data(report), _training(report, rows),
             _evaluation(report), _reproduce(report))  # fmt: skip
    card = "\n".join(line for part in parts for line in part)
    with atomic_open(directory / "README.md", "w") as handle:
        handle.write(card + "\n")
    (directory / "README.md").chmod(0o644)
    (directory / "loss.png").chmod(0o644)
    return directory / "README.md"


def _front(report: Mapping[str, Any]) -> list[str]:
    return [
        "---", "license: apache-2.0", "library_name: transformers", "pipeline_tag: text-generation",
        "tags: [qwen2, rust, code, coursekit]", "---", "",
        "# Qwen2.5-Coder-nano-base", "",
        "A small `Qwen2ForCausalLM` pretrained from scratch on Rust source by `coursekit nano "
        "build`, bundled so that the course runs offline and on a CPU through exactly the code "
        "path of Qwen2.5-Coder (`AutoModelForCausalLM` / `AutoTokenizer`). This is the "
        "pretrained model (`nano-base`); the default model `nano` "
        "(`data/models/qwen2.5-coder-nano`) is this one after the instruct stage. It is a "
        "teaching model: it knows Rust's surface syntax and common idioms, not how to write "
        "correct programs. Every number below was measured by the build that wrote this "
        "directory (`build.json` holds them all).", "",
    ]  # fmt: skip


def _architecture(report: Mapping[str, Any]) -> list[str]:
    c = report["config"]
    params = report["pretrain"]["parameters"]
    return [
        "## Architecture", "",
        "| | |", "|---|---|",
        f"| parameters | {params:,} ({params * 4 / 1e6:.1f} MB in fp32, safetensors) |",
        f"| layers × width | {c['num_hidden_layers']} × {c['hidden_size']} |",
        f"| attention | {c['num_attention_heads']} query heads, {c['num_key_value_heads']} "
        "key/value heads (grouped-query), q/k/v bias |",
        f"| MLP | SwiGLU, {c['intermediate_size']} |",
        f"| position | RoPE θ = {c['rope_theta']:,.0f}, max {c['max_position_embeddings']} |",
        "| norm | RMSNorm, ε = 1e-6 |",
        "| embeddings | tied input/output |",
        f"| tokenizer | byte-level BPE, {c['vocab_size']:,} ids (Qwen2 split regex, Qwen2.5's "
        "22 added tokens at the end, ChatML chat template) |", "",
    ]  # fmt: skip


def _data(report: Mapping[str, Any]) -> list[str]:
    text, data = report["text"], report["data"]
    lines = ["## Data", ""]
    if "train" in text:
        train, held = text["train"], text["heldout"]
        source = (
            f"{train['crates']:,} permissively licensed Debian crates of "
            "`data/corpus/pretrain-manifest.txt` less the corpus's validation and test crates"
            if text.get("source") == "pretrain-manifest.txt"
            else f"the corpus's {train['crates']} training crates"
        )
        pairs = (
            f", then the training split's {train['pairs']:,} function → test pairs"
            if train.get("pairs")
            else ""
        )
        lines += [
            f"Pretraining: the `src/` Rust files of {source} ({train['files']:,} files after "
            f"removing {train['duplicates']} duplicates{pairs}; {train['bytes'] / 1e6:.1f} MB in "
            f"all). Held out: the {held['crates']} validation and test "
            f"crates ({held['files']:,} files, {held['bytes'] / 1e6:.1f} MB; {held['excluded']} "
            "files that also occur in training crates were dropped). No validation or test crate "
            "code is in the pretraining text.", "",
        ]  # fmt: skip
    lines += [
        f"Tokens: {data['train_tokens']:,} training, {data['heldout_tokens']:,} held out.", "",
        "Licenses of the corpus's training crates (each crate's own, from its Cargo.toml; only "
        "permissive licenses are in the corpus and the pretraining manifest):", "",
        "| license | crates |", "|---|---|",
        *[f"| {name} | {n} |" for name, n in sorted(data["licenses"].items(), key=lambda x: -x[1])],
        "",
    ]  # fmt: skip
    return lines


def _training(report: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    c, p = report["config"], report["pretrain"]
    table = [f"| {s} | {t:.3f} | {'' if v is None else f'{v:.3f}'} |"
             for s, t, v in loss_table(rows) if t is not None]  # fmt: skip
    return [
        "## Pretraining", "",
        f"coursekit's trainer, full fine-tune of every weight from a seeded random "
        f"initialisation (seed {c['seed']}): {p['steps']:,} steps × {c['micro_batch_size']} rows "
        f"× {c['seq_len']} tokens = {p['target_tokens']:,} target tokens, AdamW (lr "
        f"{c['learning_rate']:g}, {c['warmup_steps']} warm-up steps, cosine decay, weight decay "
        f"{c['weight_decay']:g}), {_precision(c)}, in {p['train_seconds'] / 60:.1f} minutes of "
        "training.", "",
        "![loss curve](loss.png)", "",
        f"Validation loss: {c['eval_rows']} rows of held-out text.", "",
        "| step | train loss (mean since previous row) | validation loss |", "|---|---|---|",
        *table, "",
    ]  # fmt: skip


def _precision(config: Mapping[str, Any]) -> str:
    """Return how the pretraining computed (older reports have no precision: fp32)."""
    if config.get("precision", "fp32") == "bf16":
        return "bf16 autocast with fp32 weights"
    return "fp32"


def _evaluation(report: Mapping[str, Any]) -> list[str]:
    e = report["evaluation"]
    shown = [c for c in e["completions"] if c["parses"]][:2] + [
        c for c in e["completions"] if not c["parses"]][:1]  # fmt: skip
    examples = []
    for c in shown:
        verdict = "parses" if c["parses"] else "does not parse"
        lines = (c["prompt"] + c["completion"]).splitlines()
        cut = (
            ["// … (the rest is cut in this card; build.json has it all)"]
            if len(lines) > 16
            else []
        )
        examples += [f"Completion ({verdict}):", "", "```rust", *lines[:16], *cut, "```", ""]
    n = len(e["completions"])
    return [
        "## Evaluation", "",
        f"Held-out perplexity on {e['heldout_rows']} rows ({e['heldout_target_tokens']:,} "
        "next-token targets, a seeded sample of the validation and test crates' source):", "",
        "| model | perplexity | bits per byte |", "|---|---|---|",
        f"| Qwen2.5-Coder-nano-base | {e['perplexity']:.2f} | {_bpb(e, 'bits_per_byte')} |",
        f"| unigram baseline (training-text token frequencies, add-one) | "
        f"{e['perplexity_unigram']:.2f} | {_bpb(e, 'bits_per_byte_unigram')} |",
        f"| the same network at initialisation | {e['perplexity_initial']:.2f} | |", "",
        "Bits per byte = log2(perplexity) × targets / bytes of the text they decode to: it "
        "compares models whose tokenizers differ.", "",
        f"Syntax: greedy completions of {n} held-out function signatures (192 new tokens at "
        f"most, cut where the body's braces balance) close the body in "
        f"{e['closed_rate']:.0%} and parse without a tree-sitter error in {e['syntax_rate']:.0%} "
        "of cases.", "",
        *examples,
    ]  # fmt: skip


def _bpb(evaluation: Mapping[str, Any], key: str) -> str:
    """Return a bits-per-byte entry (older reports have none)."""
    return f"{evaluation[key]:.3f}" if key in evaluation else "—"


def _reproduce(report: Mapping[str, Any]) -> list[str]:
    seconds = report["seconds"]
    stages = ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items() if k != "total")
    resumed = report["pretrain"].get("resumed_from")
    note = (
        f" It resumed the pretraining from {resumed}, so these times leave out the earlier runs;"
        f" the pretraining's training time over all runs is "
        f"{report['pretrain']['train_seconds'] / 60:.1f} minutes."
        if resumed
        else ""
    )
    return [
        "## Reproduce", "",
        "```bash",
        "coursekit nano build   # data/corpus → data/models/qwen2.5-coder-nano-base, then the",
        "                       # instruct stage → data/models/qwen2.5-coder-nano",
        "```", "",
        f"This pretraining build took {seconds['total'] / 60:.1f} minutes ({stages}) on the "
        f"machine it ran on ({report['machine']}).{note}",
    ]  # fmt: skip


def decoding_line(report: Mapping[str, Any]) -> str:
    """Return the card's sentence on the decoding defaults of an instruct ``build.json``.

    A ``decoding`` entry (written by ``set_decoding`` after the build) wins over the build's
    own ``config.no_repeat_ngram_size``.

    Example:
        >>> decoding_line({"config": {"no_repeat_ngram_size": 0}})
        'No decoding defaults are set.'
    """
    chosen = report.get("decoding")
    size = chosen["settings"]["no_repeat_ngram_size"] if chosen else None
    size = size if chosen else report["config"].get("no_repeat_ngram_size")
    if not size:
        return "No decoding defaults are set."
    when = " after the build" if chosen else ""
    return (
        f"`generation_config.json` sets `no_repeat_ngram_size: {size}`, the decoding chosen on "
        f"the validation split{when} (docs/nano.md); `coursekit eval` and "
        "`coursekit.evaluate.generate` use it unless told otherwise."
    )


def write_instruct_card(directory: Path, metrics: Path, report: Mapping[str, Any]) -> Path:
    """Write the instruct model's ``README.md`` from its build report and run metrics.

    Every number comes from ``report`` (``instruct_nano``'s ``build.json``) and the run's
    ``metrics.jsonl``; the evaluation funnel's numbers are not the build's, so the card points
    to docs/nano.md for them.
    """
    rows = read_metrics(metrics)
    vals = [(int(r["step"]), r["val_loss"]) for r in rows if "val_loss" in r]
    c, summary = report["config"], report["summary"]
    curve = f"validation loss {vals[0][1]:.3f} → {vals[-1][1]:.3f}" if vals else "no validation"
    decoding = decoding_line(report)
    lines = [
        "---", "license: apache-2.0", "library_name: transformers", "pipeline_tag: text-generation",
        "tags: [qwen2, rust, code, coursekit]", "---", "",
        "# Qwen2.5-Coder-nano", "",
        f"The course's default model (`nano`): `{report['base']}` (`nano-base`) after an instruct "
        f"stage, as Qwen2.5-Coder-0.5B-Instruct is its base after one. Every weight was "
        f"fine-tuned for {summary['steps']} steps on the corpus's training split in the course's "
        f"ChatML format ({c['micro_batch_size']} packed rows of {c['seq_len']} tokens per step, "
        f"AdamW, lr {c['learning_rate']:g}, {c['warmup_steps']} warm-up steps, cosine decay, "
        f"{_precision(c)}, loss on the answer only): {curve}, "
        f"{report['seconds'] / 60:.1f} minutes.", "",
        decoding, "",
        f"`build.json` lists the {len(report['pretrained_crates']):,} crates the model saw "
        "(pretraining and instruct stage); none is in the corpus's validation or test split. "
        "What it scores on the evaluation funnel: docs/nano.md.", "",
        "```bash",
        "coursekit nano build   # both stages; or, from nano-base:",
        f"coursekit nano instruct --base nano-base --out {report.get('out', 'DIR')}",
        "```", "",
        "Load it as `load_model(\"nano\")` or `--model nano`; the pretrained model is `nano-base`.",
    ]  # fmt: skip
    with atomic_open(directory / "README.md", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    (directory / "README.md").chmod(0o644)
    return directory / "README.md"
