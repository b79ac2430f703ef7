"""The nano build recipe: Qwen2.5-Coder-nano from the corpus manifest, end to end, seeded.

The recipe behind ``coursekit nano build``; the components are in :mod:`coursekit.nano`
(config, tokenizer, text rows, measurement, card) and :mod:`coursekit.train`.

Stages (each timed; with ``resume`` the finished ones are reused from ``work_dir``):

1. text: the pretraining text and the held-out (validation + test crates') source, fetched
   from the manifests (:mod:`coursekit.corpus.pretrain_text`): every permissive Debian crate
   of ``<corpus>/pretrain-manifest.txt`` but the val/test crates (else the training crates),
   then the training split's function → test pairs;
2. tokenizer: byte-level BPE trained on the training text (:mod:`coursekit.nano.tokenizer`);
3. encode: both texts tokenized and cut into rows of ``seq_len`` (:mod:`coursekit.nano.text`);
4. pretrain: a freshly initialised ``Qwen2ForCausalLM`` trained with coursekit's own trainer
   as a full fine-tune (every weight trainable; ``work_dir/pretrain`` is an ordinary run folder
   with checkpoints, so an interrupted build resumes);
5. evaluate + card: the saved model is reloaded through ``AutoModelForCausalLM``, its
   held-out perplexity, the unigram baseline and the syntax rate of 20 completions are
   measured, and the model card is written; the model directory is replaced atomically.

Guide: docs/nano.md.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coursekit import codec
from coursekit.corpus.manifest import read_manifest
from coursekit.corpus.pretrain_text import read_documents, write_heldout_text, write_pretrain_text
from coursekit.data.corpus import load_splits
from coursekit.errors import CoursekitError
from coursekit.io import atomic_directory, write_json
from coursekit.nano.config import NanoConfig
from coursekit.nano.measure import measure

SIGNATURES = 20
"""Held-out function signatures completed for the syntax rate."""


PRETRAIN_MANIFEST = "pretrain-manifest.txt"
"""In a corpus directory: the crates the pretraining text is drawn from, when present
(:mod:`coursekit.corpus.pretrain_manifest`); otherwise the corpus's training crates."""


def _text_stage(
    corpus: Path, work: Path, config: NanoConfig, resume: bool, cache_dir: Any
) -> dict[str, Any]:
    train, heldout = work / "pretrain.rs", work / "heldout.rs"
    if resume and train.is_file() and heldout.is_file():
        return {"reused": True}
    manifest = corpus / PRETRAIN_MANIFEST if (corpus / PRETRAIN_MANIFEST).is_file() else None
    return {
        "source": str(manifest.name) if manifest else "training crates",
        "train": write_pretrain_text(
            corpus, train, cache_dir=cache_dir, manifest=manifest, pairs=config.pairs
        ),
        "heldout": write_heldout_text(corpus, heldout, cache_dir=cache_dir, manifest=manifest),
    }


def _tokenizer_stage(work: Path, config: NanoConfig, resume: bool) -> dict[str, Any]:
    from coursekit.nano.tokenizer import train_tokenizer

    if resume and (work / "tokenizer" / "tokenizer.json").is_file():
        return {"reused": True}
    train_tokenizer(
        read_documents(work / "pretrain.rs"), work / "tokenizer", vocab_size=config.vocab_size
    )
    return {"vocab_size": config.vocab_size}


def _pretrain_stage(work: Path, config: NanoConfig, data: dict[str, Any], resume: bool) -> dict:
    import torch
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    from coursekit.train.run import prepare_output, seed_everything, train_run
    from coursekit.train.spec import RunSpec

    tokenizer = AutoTokenizer.from_pretrained(work / "tokenizer")
    special = {"<|endoftext|>": tokenizer.convert_tokens_to_ids("<|endoftext|>")}
    init = work / "init"
    if not (resume and (init / "config.json").is_file()):
        seed_everything(config.seed)
        with atomic_directory(init) as staging:
            Qwen2ForCausalLM(config.qwen2_config(special)).save_pretrained(staging)
            tokenizer.save_pretrained(staging)
    spec = RunSpec(model=str(init), data=str(work / "pretrain.rs"), method="full",
                   train=config.train_config())  # fmt: skip
    resume = resume and (work / "pretrain" / "config.yaml").is_file()  # else: not started yet
    out = prepare_output(work / "pretrain", spec, resume=resume)
    model = Qwen2ForCausalLM.from_pretrained(init, dtype=torch.float32)
    model.requires_grad_(True)
    summary = train_run(
        model, data["train_rows"], data["eval_rows"], spec.train, out,
        pad_id=tokenizer.pad_token_id, resume=resume, tokenizer=tokenizer,
    )  # fmt: skip
    names = ("steps", "train_seconds", "target_tokens", "val_loss", "resumed_from")
    kept = {k: summary[k] for k in names}
    if summary.get("already_finished"):  # train_run left the finished run as it was
        kept["resumed_from"] = f"step-{summary['steps']}"
    return {**kept, "parameters": sum(p.numel() for p in model.parameters())}


def build_nano(
    corpus_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    config: NanoConfig | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    cache_dir: str | Path | None = None,
    signatures: int = SIGNATURES,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build the nano model from ``corpus_dir``'s manifest into ``out_dir``; return the report.

    Args:
        corpus_dir: a corpus directory (splits and ``manifest.txt``), e.g. ``data/corpus``.
        out_dir: the model directory to write (replaced atomically at the end).
        config: sizes and pretraining settings (defaults: :class:`NanoConfig`).
        work_dir: texts, tokenizer and the pretraining run (default ``.<name>.work`` beside
            ``out_dir``; git ignores it).
        resume: reuse finished stages and continue the pretraining run from its checkpoint.
        cache_dir: the Debian crate cache.
        signatures: held-out signatures completed for the syntax rate (0: none).
        log: receives one line per stage.

    Returns:
        The report written to ``out_dir/build.json``: settings, counts, stage seconds,
        perplexities and the syntax rate.

    Raises:
        CoursekitError: ``work_dir`` holds a run and ``resume`` is False.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    config = config or NanoConfig()
    corpus, out = Path(corpus_dir), Path(out_dir)
    work = Path(work_dir) if work_dir is not None else out.with_name(f".{out.name}.work")
    _check_work(work, config, resume)
    report: dict[str, Any] = {"config": config.to_dict(), "machine": _machine(), "seconds": {}}

    def stage(name: str, run: Callable[[], Any]) -> Any:
        log(f"nano build: {name}...")
        tick = time.perf_counter()
        result = run()
        report["seconds"][name] = round(time.perf_counter() - tick, 1)
        log(f"nano build: {name} done in {report['seconds'][name]} s")
        return result

    report["text"] = stage("text", lambda: _text_stage(corpus, work, config, resume, cache_dir))
    report["tokenizer"] = stage("tokenizer", lambda: _tokenizer_stage(work, config, resume))
    data = stage("encode", lambda: _encode(work, config))
    splits = load_splits(corpus)
    licenses = Counter({s.crate: s.license for s in splits["train"]}.values())
    report["data"] = {**{k: v for k, v in data.items() if isinstance(v, int)},
                      "licenses": dict(sorted(licenses.items()))}  # fmt: skip
    # The crates whose source the model saw: a corpus build keeps them out of val and test.
    report["pretrained_crates"] = _pretrained_crates(corpus, splits)
    report["pretrain"] = stage("pretrain", lambda: _pretrain_stage(work, config, data, resume))
    report["evaluation"] = stage(
        "evaluate", lambda: measure(work, data, splits, config, signatures)
    )
    report["seconds"]["total"] = round(sum(report["seconds"].values()), 1)
    _save(work, out, report)
    log(f"nano build: wrote {out} ({report['seconds']['total']} s in all)")
    return report


def _encode(work: Path, config: NanoConfig) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from coursekit.nano.text import rows, sample_rows, token_stream

    tokenizer = AutoTokenizer.from_pretrained(work / "tokenizer")
    train_stream = token_stream(read_documents(work / "pretrain.rs"), tokenizer)
    heldout_stream = token_stream(read_documents(work / "heldout.rs"), tokenizer)
    train_rows = rows(train_stream, config.seq_len, prefix="train")
    heldout_rows = rows(heldout_stream, config.seq_len, prefix="heldout")
    if not train_rows or not heldout_rows:
        raise CoursekitError(
            f"{work}: the text gives {len(train_rows)} training and {len(heldout_rows)} held-out "
            f"rows of seq_len={config.seq_len}; lower seq_len or add crates"
        )
    return {
        "train_tokens": len(train_stream),
        "heldout_tokens": len(heldout_stream),
        "train_rows": train_rows,
        "eval_rows": sample_rows(heldout_rows, config.eval_rows, config.seed + 1),
        "heldout_rows": sample_rows(heldout_rows, config.heldout_rows, config.seed),
        "train_stream": train_stream,
    }


def _pretrained_crates(corpus: Path, splits: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (name, version) of every crate whose source or pairs the pretraining read."""
    crates = {(s.crate, s.version) for s in splits["train"]}
    if (corpus / PRETRAIN_MANIFEST).is_file():
        held = {s.crate for split in ("val", "test") for s in splits[split]}
        entries = read_manifest(corpus / PRETRAIN_MANIFEST)
        crates |= {(e.crate, e.version) for e in entries if e.crate not in held}
    return sorted(crates)


def _check_work(work: Path, config: NanoConfig, resume: bool) -> None:
    """Refuse to overwrite an earlier build, or to resume one made with other settings."""
    saved = work / "nano-config.json"
    if saved.exists() and not resume:
        raise CoursekitError(f"{work} holds an earlier build; pass --resume or remove it")
    if saved.exists():
        try:
            before = codec.from_dict(NanoConfig, json.loads(saved.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            raise CoursekitError(
                f"{saved} is not a readable build config ({error}); remove the work directory"
            ) from None
        differing = codec.differences(before, config)
        if differing:
            listed = ", ".join(f"{k}: {a!r} → {b!r}" for k, (a, b) in sorted(differing.items()))
            raise CoursekitError(
                f"{saved} was built with other settings ({listed}); resume with the original "
                "settings or remove the work directory"
            )
    work.mkdir(parents=True, exist_ok=True)
    write_json(saved, config.to_dict())


def _machine() -> str:
    import platform

    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    threads = torch.get_num_threads()
    return f"{os.cpu_count()} CPU cores, {threads} torch threads, {device}, {platform.machine()}"


def _save(work: Path, out: Path, report: dict[str, Any]) -> None:
    """Replace ``out`` with the model, tokenizer, card, loss curve and build.json at once."""
    from coursekit.nano.card import write_card

    with atomic_directory(out) as staging:
        for source in (work / "pretrain" / "model", work / "tokenizer"):
            for path in source.iterdir():
                shutil.copy2(path, staging / path.name)
                (staging / path.name).chmod(0o644)  # the run's files may be owner-only
        write_json(staging / "build.json", report)
        write_card(staging, work / "pretrain" / "metrics.jsonl", report)
