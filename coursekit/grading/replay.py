"""The short deterministic re-run: the first N steps of a run, from its manifest, on the CPU.

``python -P -m coursekit.grading.replay REQUEST.json RESULT.json`` reads a request
``{"manifest": {...}, "data_dir": "...", "steps": N, "threads": T}`` and writes
``{"steps": [...], "loss": [...], "grad_norm": [...], "lr": [...]}`` (or ``{"error": "..."}``
with exit status 2). :func:`coursekit.grading.evidence.verify_run` starts it in a fresh
interpreter, so nothing of a learner's code runs in the grader's process, and the re-run uses
coursekit's own loader, adapters and trainer, never the learner's.

The re-run rebuilds what ``train_run`` started from, in the same order:

1. the training examples: the manifest's sample ids, looked up in the data's ``train``
   split and encoded with the model's tokenizer; their digest must equal the manifest's;
2. ``seed_everything(seed)``, the model, the adapters (the adapters' initial weights);
3. ``seed_everything(seed)`` again and the ``Trainer`` (data order, dropout);
4. ``train_step()`` N times; ``k`` processes are replayed as one process with ``k`` times the
   gradient accumulation, which draws the same rows and normalises by the same token count.

Guide: docs/grading.md ("What the re-run does").
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coursekit import codec
from coursekit.errors import CoursekitError
from coursekit.grading.manifest import examples_digest


def rebuild_examples(manifest: Mapping[str, Any], data_dir: str, tokenizer: Any, seq_len: int):
    """Return the run's training examples, encoded again from ``data_dir``'s train split.

    Raises:
        CoursekitError: an id is not in the split, or the examples' digest differs from the
            manifest's (another tokenizer, prompt format or data).
    """
    from coursekit.data.corpus import load_splits
    from coursekit.data.prompts import encode_example

    by_id = {sample.id: sample for sample in load_splits(data_dir)["train"]}
    ids = manifest["examples"]["train_ids"]
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise CoursekitError(
            f"training example {missing[0]!r} of the manifest is not in {data_dir}'s train "
            f"split ({len(missing)} missing); the run did not train on this data"
        )
    encoded = [encode_example(by_id[i], tokenizer, seq_len) for i in ids]
    examples = [e for e in encoded if e is not None and e.target_tokens > 0]
    if examples_digest(examples) != manifest["examples"]["train_sha256"]:
        raise CoursekitError(
            "the training examples encoded again differ from the manifest's digest (another "
            "tokenizer or prompt format than the run's): the re-run cannot start from the "
            "run's data"
        )
    return [by_id[e.sample_id] for e in examples], examples


def replay(manifest: Mapping[str, Any], data_dir: str, steps: int) -> dict[str, list[float]]:
    """Re-run the first ``steps`` optimizer steps of the manifest's run on the CPU.

    Args:
        manifest: the run's ``manifest.json`` content.
        data_dir: the directory holding the split files whose digest the manifest records.
        steps: how many steps (at most the run's total).

    Returns:
        ``{"steps", "loss", "grad_norm", "lr"}``: one entry per re-run step.

    Example:
        >>> replay(read_manifest("runs/demo"), "data/seed", 3)["loss"]  # doctest: +SKIP
        [2.31, 2.27, 2.18]
    """
    from coursekit.adapters import apply
    from coursekit.loading import load_model, load_tokenizer
    from coursekit.train.loop import Trainer, make_accelerator
    from coursekit.train.run import seed_everything
    from coursekit.train.spec import RunSpec

    spec = codec.from_dict(RunSpec, manifest["spec"])
    processes = int(manifest["environment"]["processes"])
    config = dataclasses.replace(
        spec.train, gradient_accumulation=spec.train.gradient_accumulation * processes
    )
    tokenizer = load_tokenizer(spec.model)
    samples, train = rebuild_examples(manifest, data_dir, tokenizer, config.seq_len)
    seed_everything(config.seed)
    model = load_model(spec.model)
    if spec.adapter_config is not None:
        apply(model, spec.adapter_config)
    else:
        model.requires_grad_(True)
    seed_everything(config.seed)
    trainer = Trainer(
        model, train, [], config, pad_id=tokenizer.pad_token_id,
        difficulties=_difficulties(config, samples), accelerator=make_accelerator(config, cpu=True),
    )  # fmt: skip
    rows = [trainer.train_step() for _ in range(min(steps, trainer.total_steps))]
    return {key: [row.get(key) for row in rows] for key in ("step", "loss", "grad_norm", "lr")}


def _difficulties(config: Any, samples: list[Any]) -> list[float] | None:
    if config.curriculum == "none":
        return None
    from coursekit.data.curriculum import difficulty_scores

    return list(difficulty_scores(samples).scores)


def main(argv: list[str] | None = None) -> int:
    """Run one request file into one result file; return the exit status (0, or 2 on error)."""
    request_path, result_path = argv if argv is not None else sys.argv[1:]
    request = json.loads(Path(request_path).read_text(encoding="utf-8"))
    import torch

    torch.set_num_threads(int(request["threads"]))
    try:
        result: dict[str, Any] = replay(request["manifest"], request["data_dir"], request["steps"])
        status = 0
    except (CoursekitError, ValueError, KeyError, OSError) as error:
        result, status = {"error": " ".join(f"{type(error).__name__}: {error}".split())}, 2
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
