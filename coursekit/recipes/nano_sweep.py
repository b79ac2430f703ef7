r"""The nano sweep: short pretraining runs at one fixed CPU-time budget, compared per byte.

Which shape should nano have for a given CPU budget: wider or deeper, a smaller or larger
vocabulary, shorter or longer rows, a higher or lower learning rate? :func:`run_sweep`
answers it by measurement. Each variant changes some :class:`~coursekit.nano.config.NanoConfig`
fields of a base; its step time is probed first (:func:`seconds_per_step`, a few optimizer
steps on random tokens), and it is then built (:func:`coursekit.recipes.nano_build.build_nano`)
for as many steps as fit ``budget_seconds``, from one shared sample of the pretraining text.

Variants with different vocabularies see different token counts for the same text, so the
sweep compares **bits per byte** of held-out text, not perplexity per token:

    bpb = log2(perplexity) · T / B

where T / B is held-out tokens per byte under the variant's own tokenizer.
Each variant's ``result.json`` is written when it finishes; a sweep run again skips those
(resumable). ``table.md`` holds the comparison.

Guide: docs/nano.md.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from coursekit.corpus.pretrain_text import DOCUMENT_SEPARATOR, read_documents
from coursekit.io import atomic_open, write_json
from coursekit.nano.config import NanoConfig

V1_SHAPE: dict[str, Any] = {
    "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
    "intermediate_size": 768, "precision": "fp32",
}  # fmt: skip
"""The first nano's shape: the base the default sweep changes one thing of at a time."""
VARIANTS: dict[str, dict[str, Any]] = {
    "v1 shape: 4 x 256, V 8192, seq 512, lr 2e-3": {},
    "vocabulary 4096": {"vocab_size": 4096},
    "deeper: 8 x 192": {"num_hidden_layers": 8, "hidden_size": 192, "intermediate_size": 576},
    "wider: 2 x 384": {
        "num_hidden_layers": 2, "hidden_size": 384, "intermediate_size": 1152,
        "num_attention_heads": 6,
    },
    "rows of 256 (x 16)": {"seq_len": 256, "micro_batch_size": 16},
    "rows of 1024 (x 4)": {"seq_len": 1024, "micro_batch_size": 4},
    "lr 4e-3": {"learning_rate": 4e-3},
    "bf16 autocast": {"precision": "bf16"},
}  # fmt: skip
"""The default sweep: one change from the base at a time."""


def seconds_per_step(config: NanoConfig, repeats: int = 3) -> float:
    """Return the median seconds of one optimizer step of ``config``'s model on random rows.

    One step is a forward and backward pass over ``micro_batch_size`` × ``seq_len`` tokens (in
    bf16 autocast when ``config.precision`` says so) and an AdamW update, after one unmeasured
    warm-up step.
    """
    import torch
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(config.seed)
    model = Qwen2ForCausalLM(config.qwen2_config({"<|endoftext|>": config.vocab_size - 22}))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    ids = torch.randint(0, config.vocab_size, (config.micro_batch_size, config.seq_len))
    times = []
    for _ in range(repeats + 1):
        tick = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.precision == "bf16"):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - tick)
    return sorted(times[1:])[len(times[1:]) // 2]


def sample_documents(source: Path, out: Path, fraction: float, seed: int) -> int:
    """Write a seeded ``fraction`` of the documents of ``source`` to ``out``; return the count.

    Example:
        >>> sample_documents(Path("pretrain.rs"), Path("sample.rs"), 0.2, 0)  # doctest: +SKIP
        5310
    """
    documents = list(read_documents(source))
    keep = sorted(
        random.Random(seed).sample(range(len(documents)), round(len(documents) * fraction))
    )
    with atomic_open(out, "w") as handle:
        for i in keep:
            handle.write(documents[i] + DOCUMENT_SEPARATOR)
    return len(keep)


def bits_per_byte(perplexity: float, tokens: int, text_bytes: int) -> float:
    """Return ``log2(perplexity) · tokens / text_bytes`` (see the module docstring).

    Example:
        >>> round(bits_per_byte(16.0, 100, 400), 3)
        1.0
    """
    return math.log2(perplexity) * tokens / text_bytes


def run_sweep(
    corpus_dir: str | os.PathLike[str],
    text_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    budget_seconds: float,
    variants: Mapping[str, Mapping[str, Any]] = VARIANTS,
    base: NanoConfig | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Build every variant for ``budget_seconds`` of steps; write ``table.md``; return rows.

    Args:
        corpus_dir: the corpus (its val/test functions give the held-out signatures).
        text_dir: holds ``pretrain.rs`` and ``heldout.rs`` (the build's text stage output).
        out_dir: one folder per variant (``result.json``, the model, the work directory).
        budget_seconds: pretraining seconds each variant gets (its steps follow the probe).
        variants: name → NanoConfig fields changed from ``base``.
        base: the configuration the variants change (default: :class:`NanoConfig` with
            :data:`V1_SHAPE`, the base of the sweep in docs/nano.md).
        log: receives progress lines.

    Returns:
        One row per variant: its changes, parameters, steps, tokens, seconds, held-out
        perplexity and bits per byte.
    """
    from coursekit.recipes.nano_build import build_nano

    base = base or dataclasses.replace(NanoConfig(), **V1_SHAPE)
    text, out = Path(text_dir), Path(out_dir)
    rows = []
    for index, (name, changes) in enumerate(variants.items()):
        folder = out / f"{index:02d}"
        result_path = folder / "result.json"
        if result_path.is_file():
            rows.append(json.loads(result_path.read_text(encoding="utf-8")))
            log(f"sweep: {name}: done before, kept")
            continue
        config = dataclasses.replace(base, **changes)
        step = seconds_per_step(config)
        steps = max(20, int(budget_seconds / step))
        config = dataclasses.replace(
            config, steps=steps, warmup_steps=max(1, steps // 20), eval_every=0
        )
        log(f"sweep: {name}: {step:.2f} s/step probed, {steps} steps")
        work = folder / "work"
        work.mkdir(parents=True, exist_ok=True)
        for file in ("pretrain.rs", "heldout.rs"):
            if not (work / file).exists():
                os.link(text / file, work / file)
        report = build_nano(corpus_dir, folder / "model", config=config, work_dir=work,
                            resume=True, signatures=0, log=log)  # fmt: skip
        rows.append(_row(name, changes, config, step, report, work))
        write_json(result_path, rows[-1])
    _write_table(out / "table.md", rows, budget_seconds)
    return rows


def _row(
    name: str,
    changes: Mapping[str, Any],
    config: NanoConfig,
    step: float,
    report: Mapping[str, Any],
    work: Path,
) -> dict[str, Any]:
    """Return a variant's measured row."""
    documents = list(read_documents(work / "heldout.rs"))
    text_bytes = sum(len(d.encode("utf-8")) for d in documents)
    tokens = report["data"]["heldout_tokens"] - len(documents)  # less one <|endoftext|> each
    perplexity = report["evaluation"]["perplexity"]
    return {
        "variant": name,
        "changes": dict(changes),
        "parameters": config.parameter_count(),
        "probe_seconds_per_step": round(step, 3),
        "steps": config.steps,
        "target_tokens": report["pretrain"]["target_tokens"],
        "pretrain_seconds": report["seconds"]["pretrain"],
        "perplexity": perplexity,
        "bytes_per_token": round(text_bytes / tokens, 3),
        "bits_per_byte": round(bits_per_byte(perplexity, tokens, text_bytes), 4),
    }


def _write_table(path: Path, rows: list[dict[str, Any]], budget: float) -> None:
    """Write the sweep's markdown table, best bits per byte first."""
    lines = [
        f"Each variant pretrained for about {budget:.0f} s of steps (2 CPU threads);"
        " held-out bits per byte, lower is better.\n",
        "| variant | parameters | steps | tokens | seconds | perplexity | bytes/token "
        "| bits/byte |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: r["bits_per_byte"]):
        lines.append(
            f"| {r['variant']} | {r['parameters']:,} | {r['steps']} | {r['target_tokens']:,} | "
            f"{r['pretrain_seconds']:.0f} | {r['perplexity']:.2f} | {r['bytes_per_token']:.2f} | "
            f"**{r['bits_per_byte']:.3f}** |"
        )
    with atomic_open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
