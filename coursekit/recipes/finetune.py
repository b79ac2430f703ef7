"""``finetune``: the recipe behind ``coursekit train``, a run folder from a ``RunSpec``.

Check the output folder and write ``config.yaml`` before anything is loaded
(``prepare_output_once``), load the tokenizer, the data (encoded through the token cache) and
the seeded model with the spec's adapters (``load_for_training``), train (``train_run``) and
write ``metrics.jsonl``, checkpoints, ``adapter/`` (``model/`` for a full fine-tune) and
``summary.json``. The components are in :mod:`coursekit.train.run`.

Guide: docs/training.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from coursekit.train.callbacks import Callback
from coursekit.train.run import load_for_training, prepare_output_once, train_run
from coursekit.train.spec import RunSpec


def finetune(
    spec: RunSpec,
    output: str | os.PathLike[str],
    *,
    resume: bool = False,
    callbacks: Iterable[Callback] = (),
    cache: Any = None,
) -> dict[str, Any]:
    """Fine-tune ``spec.model`` on ``spec.data`` into the run folder ``output`` (CLI's recipe).

    Order matters for bad input: the spec is already valid, the folder is checked and
    ``config.yaml`` written before the model or data is touched.

    Args:
        spec: model, data, method, adapter and loop settings.
        output: the run folder, e.g. ``runs/lora-r8``.
        resume: continue an interrupted run in ``output``.
        callbacks: extra callbacks (dashboard, progress bar).
        cache: a ``coursekit.data.tokenized.TokenCache`` (the user cache dir when None).

    Returns:
        The trainer's summary (``steps``, ``val_loss``, ``tokens_per_s``,
        ``peak_memory_bytes``, ``output``...), also written to ``summary.json``.

    Raises:
        CoursekitError: ``output`` holds a run and ``resume`` is False, or is not writable.
        ConfigMismatchError: ``resume`` with settings that differ from the saved ones.

    Example:
        >>> spec = RunSpec(model="tiny", train=TrainConfig(max_steps=20))  # doctest: +SKIP
        >>> finetune(spec, "runs/demo")["val_loss"]  # doctest: +SKIP
        11.9
    """
    out = prepare_output_once(output, spec, resume=resume)
    loaded = load_for_training(spec, cache=cache)
    return train_run(
        loaded.model, loaded.train, loaded.val, spec.train, out, pad_id=loaded.pad_id,
        resume=resume, callbacks=callbacks, difficulties=loaded.difficulties,
        tokenizer=loaded.tokenizer,
    )  # fmt: skip
