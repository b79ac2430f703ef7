"""``finetune``: the recipe behind ``coursekit train``, a run folder from a ``RunSpec``.

Check the output folder and write ``config.yaml`` before anything is loaded
(``prepare_output_once``; a resume writes nothing and a finished run is left as it is), load
the tokenizer, the data (encoded through the token cache) and
the seeded model with the spec's adapters (``load_for_training``), train (``train_run``) and
write ``metrics.jsonl``, checkpoints, ``adapter/`` (``model/`` for a full fine-tune) and
``summary.json``. A start that fails while loading removes what it created, so the same
command can be run again. The components are in :mod:`coursekit.train.run` and
:mod:`coursekit.train.folder`; errors, signals and exit statuses in
:mod:`coursekit.train.failures`.

Guide: docs/training.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from accelerate import PartialState

from coursekit.train.callbacks import Callback
from coursekit.train.failures import interruptible
from coursekit.train.folder import check_before_loading, finished_run, start_creates, undo_start
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

    Order matters for bad input: the spec is already valid, the folder and ``--data`` are
    checked and ``config.yaml`` written before the model or data is touched; if loading then
    fails, what this start created (the folder, ``checkpoints/``, ``config.yaml``) is removed.

    Args:
        spec: model, data, method, adapter and loop settings.
        output: the run folder, e.g. ``runs/lora-r8``.
        resume: continue an interrupted run in ``output`` from its newest checkpoint that
            fits; a finished run is left as it is (no file changes).
        callbacks: extra callbacks (dashboard, progress bar).
        cache: a ``coursekit.data.tokenized.TokenCache`` (the user cache dir when None).

    Returns:
        The trainer's summary (``steps``, ``val_loss``, ``tokens_per_s``,
        ``peak_memory_bytes``, ``skipped_steps``, ``output``...), also written to
        ``summary.json``; for a resumed run that had already finished, the saved summary with
        ``already_finished: True`` (not written).

    Raises:
        CoursekitError: ``output`` holds a run and ``resume`` is False, or is not writable;
            ``resume`` and there is no run, or its ``config.yaml`` is missing.
        ConfigMismatchError: ``resume`` with settings that differ from the saved ones, or
            checkpoints none of which fits the run.
        TrainingInterrupted: SIGINT/SIGTERM (a ``KeyboardInterrupt``); resume later.
        RunFailedError: the run started and failed (``NonFiniteError``, a full disk); the
            newest checkpoint is intact and named.

    Example:
        >>> spec = RunSpec(model="tiny", train=TrainConfig(max_steps=20))  # doctest: +SKIP
        >>> finetune(spec, "runs/demo")["val_loss"]  # doctest: +SKIP
        11.9
    """
    check_before_loading(spec)
    created = [] if resume else start_creates(output)
    out = prepare_output_once(output, spec, resume=resume)
    if resume and (done := finished_run(out, spec.train)) is not None:
        return {**done, "already_finished": True}  # nothing loaded, nothing written
    with interruptible():
        try:
            loaded = load_for_training(spec, cache=cache)
        except BaseException:
            if PartialState().is_main_process:
                undo_start(created)
            raise
        return train_run(
            loaded.model, loaded.train, loaded.val, spec.train, out, pad_id=loaded.pad_id,
            resume=resume, callbacks=callbacks, difficulties=loaded.difficulties,
            tokenizer=loaded.tokenizer,
        )  # fmt: skip
