"""The short fine-tune the Bonus tiers start from, fresh output folders, and child processes.

Guide: docs/course.md (Phase 3, Bonus tiers). Used in notebooks/phase3_bonus.ipynb.
"""

from __future__ import annotations

import datetime
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import coursekit
from coursekit.adapters import AdapterConfig
from coursekit.data.corpus import seed_dir
from coursekit.loading import repo_root
from coursekit.train import RunSpec, TrainConfig


def bonus_spec(
    *,
    model: str = "nano",
    data: str = "",
    steps: int = 20,
    batch_size: int = 2,
    seq_len: int = 256,
    lr: float = 2e-3,
    seed: int = 0,
    eval_every: int = 5,
    save_every: int = 0,
    dropout: float = 0.0,
) -> RunSpec:
    """Return a LoRA (r = 8, α = 16, q/v) fine-tune of ``model`` for ``steps`` steps.

    Args:
        model: a model name (``nano``, ``tiny``, a directory...).
        data: a split directory; ``""`` = the bundled seed set (42 pairs: fast).
        steps: optimizer steps.
        batch_size: micro-batch size (one step = one micro-batch).
        seq_len: longest example kept, in tokens.
        lr: peak learning rate of the cosine schedule.
        seed: seeds the adapters' initialisation, the data order and dropout.
        eval_every: steps between validation losses.
        save_every: steps between checkpoints (0 = none).
        dropout: LoRA dropout (> 0 makes the global RNG part of what resuming must restore).

    Example:
        >>> spec = bonus_spec(steps=4)
        >>> spec.train.max_steps, spec.adapter.rank, Path(spec.data).name
        (4, 8, 'seed')
    """
    return RunSpec(
        model=model,
        data=data or str(seed_dir()),
        adapter=AdapterConfig(rank=8, alpha=16.0, dropout=dropout, targets="qv"),
        train=TrainConfig(
            max_steps=steps,
            micro_batch_size=batch_size,
            seq_len=seq_len,
            learning_rate=lr,
            seed=seed,
            eval_every=eval_every,
            save_every=save_every,
            packing=False,
        ),
    )


def new_output(
    output_dir: str | os.PathLike[str] = "", *, now: datetime.datetime | None = None
) -> Path:
    """Return and create a fresh folder for one execution of the Bonus notebook.

    ``""``: ``<repository>/runs/phase3-bonus/<UTC time>/`` (``-2``, ``-3``... when two start
    in one second); a given folder is used when it is empty or missing.

    Raises:
        coursekit.errors.CoursekitError: ``output_dir`` exists and is not empty.

    Example:
        >>> import tempfile
        >>> new_output(Path(tempfile.mkdtemp()) / "bonus").name
        'bonus'
    """
    from coursekit.errors import CoursekitError

    if output_dir:
        folder = Path(output_dir)
        if folder.exists() and any(folder.iterdir()):
            raise CoursekitError(
                f'{folder} is not empty: set output_dir to a new folder, or to "" for a '
                "fresh one under runs/phase3-bonus/"
            )
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%d-%H%M%S")
    root = repo_root() / "runs" / "phase3-bonus"
    folder, n = root / stamp, 1
    while folder.exists():
        n += 1
        folder = root / f"{stamp}-{n}"
    folder.mkdir(parents=True)
    return folder


def child_env() -> dict[str, str]:
    """Return the environment of a child process that imports this very ``coursekit``.

    Example:
        >>> str(Path(coursekit.__file__).parent.parent) in child_env()["PYTHONPATH"]
        True
    """
    root = str(Path(coursekit.__file__).resolve().parent.parent)
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def rows_table(rows: Sequence[Mapping[str, Any]]) -> str:
    r"""Return an HTML table of dict rows (the first row's keys are the columns), left-aligned.

    Example:
        >>> table = rows_table([{"step": 1, "loss": 2.0}])
        >>> table.count("<tr>"), "<td style=\"text-align:left\">2</td>" in table
        (2, True)
    """
    if not rows:
        return "<p>(no rows)</p>"
    columns = list(rows[0])
    style = ' style="text-align:left"'
    head = "".join(f"<th{style}>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td{style}>{_cell(row.get(c))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
