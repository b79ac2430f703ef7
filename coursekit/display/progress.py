"""A progress bar with ETA for training runs, in terminals and notebooks alike.

ETA = (T − t) / r, where r is tqdm's exponentially smoothed rate of optimizer steps per
second; ``tqdm.auto`` draws a text bar in a terminal and a widget in Jupyter. The bar is a
training callback: the loop calls :meth:`ProgressBar.on_step` after each optimizer step with
the row it writes to ``metrics.jsonl``, :meth:`ProgressBar.on_eval` after each evaluation and
:meth:`ProgressBar.on_end` once at the end.

Example:
    >>> import io
    >>> bar = ProgressBar(total_steps=2, file=io.StringIO())
    >>> bar.on_step({"step": 1, "loss": 2.5, "lr": 1e-4, "tokens_per_s": 900.0})
    >>> bar.postfix()
    'loss=2.500, lr=1.00e-04, tok/s=900'
    >>> bar.on_end({})

Used by ``coursekit train``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

_FORMATS = {"loss": "{:.3f}", "val_loss": "{:.3f}", "lr": "{:.2e}", "tokens_per_s": "{:,.0f}"}
_LABELS = {"tokens_per_s": "tok/s", "val_loss": "val"}


def format_postfix(values: Mapping[str, Any]) -> str:
    """Return ``"loss=2.500, lr=1.00e-04, tok/s=900"``: the known metrics of a row, formatted.

    Example:
        >>> format_postfix({"val_loss": 2.0, "step": 3})
        'val=2.000'
    """
    return ", ".join(
        f"{_LABELS.get(key, key)}={template.format(values[key])}"
        for key, template in _FORMATS.items()
        if isinstance(values.get(key), int | float)
    )


class ProgressBar:
    """Training callback that advances a tqdm bar one step per ``on_step`` and shows metrics.

    Args:
        total_steps: T, the step count of the whole run.
        start_step: steps already done (a resumed run starts its bar there).
        description: the bar's label.
        file: where a terminal bar is written (default stderr); giving one forces the text bar.
        disable: draw nothing (e.g. on every process but the first).
    """

    def __init__(
        self,
        *,
        total_steps: int,
        start_step: int = 0,
        description: str = "train",
        file: TextIO | None = None,
        disable: bool = False,
    ) -> None:
        if total_steps < 1:
            raise ValueError(f"ProgressBar total_steps must be >= 1 (got {total_steps})")
        if not 0 <= start_step <= total_steps:
            raise ValueError(
                f"ProgressBar start_step must be in [0, total_steps={total_steps}] "
                f"(got {start_step})"
            )
        # imported here, not at the top: ``import coursekit.train`` stays fast for the CLI
        from tqdm.auto import tqdm
        from tqdm.std import tqdm as text_tqdm

        factory = tqdm if file is None else text_tqdm
        self._bar = factory(
            total=total_steps,
            initial=start_step,
            desc=description,
            unit="step",
            file=file,
            disable=disable,
            dynamic_ncols=True,
        )
        self._shown: dict[str, Any] = {}

    @property
    def steps_done(self) -> int:
        """Steps counted so far, the resumed ones included."""
        return int(self._bar.n)

    def postfix(self) -> str:
        """Return the metrics text shown after the bar."""
        return format_postfix(self._shown)

    def on_step(self, row: Mapping[str, Any]) -> None:
        """Advance one step and show the row's loss, lr and tokens/s."""
        self._shown.update({k: row[k] for k in ("loss", "lr", "tokens_per_s") if k in row})
        self._bar.set_postfix_str(self.postfix(), refresh=False)
        self._bar.update(1)

    def on_eval(self, row: Mapping[str, Any]) -> None:
        """Show the latest validation loss (kept until the next evaluation)."""
        if "val_loss" in row:
            self._shown["val_loss"] = row["val_loss"]
            self._bar.set_postfix_str(self.postfix())

    def on_end(self, summary: Mapping[str, Any]) -> None:
        """Close the bar (its final line stays on screen)."""
        self._bar.close()
